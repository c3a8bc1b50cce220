import type { Graph, Node, ValueId } from '../graph.js';
import { type Tensor, fromNumbers, toNumbers } from '../tensor.js';
import { numAttr, hasActivation } from './match.js';
import { type ReplayContext, replayGraph } from './rewrite.js';

// Inference BatchNormalization is a per-channel affine map y = x*s + t with s = scale/sqrt(var+eps) and
// t = bias - mean*s; after a Conv/Gemm/MatMul with constant weights it folds into those weights and bias,
// so the planner sees one GEMM instead of a GEMM and a norm. BN after anything else stays as it is.
export function foldBatchNorm(g: Graph): Graph {
  return replayGraph(g, (n, ctx) => {
    if (n.op !== 'Conv' && n.op !== 'Gemm' && n.op !== 'MatMul') return false;
    if (n.outputs.length !== 1 || hasActivation(n)) return false;
    const bn = ctx.old.soleConsumer(n.outputs[0]!);
    if (bn === undefined || bn.op !== 'BatchNormalization' || bn.inputs[0] !== n.outputs[0] || bn.outputs.length !== 1) return false;
    if ((bn.attrs as { training_mode?: unknown }).training_mode) return false;
    const affine = bnAffine(bn, ctx);
    if (affine === undefined) return false;
    const fused = n.op === 'Conv' ? foldIntoConv(n, affine, ctx) : n.op === 'Gemm' ? foldIntoGemm(n, affine, ctx) : foldIntoMatMul(n, affine, ctx);
    if (fused === undefined) return false;
    const out = ctx.emit(n, { inputs: fused.inputs, attrs: fused.attrs, outputNames: [ctx.old.value(bn.outputs[0]!).name] })[0]!;
    ctx.alias(bn.outputs[0]!, out);
    ctx.skip(bn);
    return true;
  });
}

interface Affine {
  readonly s: Float64Array;
  readonly t: Float64Array;
}

interface Fused {
  readonly inputs: ReadonlyArray<ValueId | null>;
  readonly attrs: unknown;
}

function bnAffine(bn: Node, ctx: ReplayContext): Affine | undefined {
  const params = bn.inputs.slice(1, 5).map((v) => (v === null ? undefined : ctx.old.constant(v)));
  if (params.length !== 4 || params.some((p) => p === undefined)) return undefined;
  const [scale, bias, mean, variance] = params.map((p) => toNumbers(p!));
  const c = scale!.length;
  if (bias!.length !== c || mean!.length !== c || variance!.length !== c) return undefined;
  const eps = numAttr(bn, 'epsilon', 1e-5);
  const s = new Float64Array(c);
  const t = new Float64Array(c);
  for (let i = 0; i < c; i++) {
    s[i] = scale![i]! / Math.sqrt(variance![i]! + eps);
    t[i] = bias![i]! - mean![i]! * s[i]!;
  }
  return { s, t };
}

// Per-channel bias after the fold: b*s + t (b = 0 when the producer had no bias).
function foldedBias(name: string, b: Tensor | undefined, dtype: Tensor['dtype'], a: Affine, ctx: ReplayContext, scaleB = 1): ValueId {
  const c = a.s.length;
  const old = b === undefined ? new Float64Array(c) : toNumbers(b);
  const out = new Float64Array(c);
  for (let i = 0; i < c; i++) out[i] = scaleB * old[old.length === 1 ? 0 : i]! * a.s[i]! + a.t[i]!;
  return ctx.b.addConstant(name, fromNumbers(dtype, [c], out));
}

// A bias input that is absent or a constant holding one value per channel (or one for all).
function channelBias(v: ValueId | null | undefined, c: number, ctx: ReplayContext): Tensor | undefined | null {
  if (v === null || v === undefined) return undefined;
  const t = ctx.old.constant(v);
  if (t === undefined) return null;
  const n = t.data.length;
  if ((n !== c && n !== 1) || t.shape.filter((d) => d !== 1).length > 1) return null;
  if (n === c && t.shape.length > 0 && t.shape[t.shape.length - 1] !== c) return null;
  return t;
}

function foldIntoConv(n: Node, a: Affine, ctx: ReplayContext): Fused | undefined {
  const w = n.inputs[1] == null ? undefined : ctx.old.constant(n.inputs[1]);
  const c = a.s.length;
  if (w === undefined || w.shape[0] !== c) return undefined;
  const b = channelBias(n.inputs[2], c, ctx);
  if (b === null || (b !== undefined && b.data.length !== c)) return undefined;
  const wv = toNumbers(w);
  const per = wv.length / c;
  for (let m = 0; m < c; m++) for (let j = 0; j < per; j++) wv[m * per + j] *= a.s[m]!;
  const wId = ctx.b.addConstant(`${n.name}_W_bn`, fromNumbers(w.dtype, w.shape, wv));
  const bId = foldedBias(`${n.name}_B_bn`, b, w.dtype, a, ctx);
  return { inputs: [ctx.map(n.inputs[0]!), wId, bId], attrs: n.attrs };
}

// Gemm's output is [M, N]; BN's channel axis is N, the columns of op(B).
function foldIntoGemm(n: Node, a: Affine, ctx: ReplayContext): Fused | undefined {
  const w = n.inputs[1] == null ? undefined : ctx.old.constant(n.inputs[1]);
  const c = a.s.length;
  if (w === undefined || w.shape.length !== 2) return undefined;
  const transB = numAttr(n, 'transB', 0) !== 0;
  if ((transB ? w.shape[0] : w.shape[1]) !== c) return undefined;
  const b = channelBias(n.inputs[2], c, ctx);
  if (b === null) return undefined;
  const beta = numAttr(n, 'beta', 1);
  const wv = scaleColumns(toNumbers(w), w.shape[0]!, w.shape[1]!, a.s, transB);
  const wId = ctx.b.addConstant(`${n.name}_B_bn`, fromNumbers(w.dtype, w.shape, wv));
  const cId = foldedBias(`${n.name}_C_bn`, b, w.dtype, a, ctx, beta);
  return { inputs: [ctx.map(n.inputs[0]!), wId, cId], attrs: { ...(n.attrs as object), beta: 1 } };
}

// MatMul folds only as a 2-D GEMM with a constant [K, N] weight: then BN's channel axis is N.
function foldIntoMatMul(n: Node, a: Affine, ctx: ReplayContext): Fused | undefined {
  const w = n.inputs[1] == null ? undefined : ctx.old.constant(n.inputs[1]);
  const c = a.s.length;
  if (w === undefined || w.shape.length !== 2 || w.shape[1] !== c) return undefined;
  if (ctx.old.value(n.outputs[0]!).type.shape.length !== 2) return undefined;
  const b = channelBias(n.inputs[2], c, ctx);
  if (b === null) return undefined;
  const wv = scaleColumns(toNumbers(w), w.shape[0]!, w.shape[1]!, a.s, false);
  const wId = ctx.b.addConstant(`${n.name}_W_bn`, fromNumbers(w.dtype, w.shape, wv));
  const bId = foldedBias(`${n.name}_bias_bn`, b, w.dtype, a, ctx);
  return { inputs: [ctx.map(n.inputs[0]!), wId, bId], attrs: n.attrs };
}

// Scales the output columns of a [rows, cols] matrix used as op(B) (transposed: the rows).
function scaleColumns(v: Float64Array, rows: number, cols: number, s: Float64Array, transposed: boolean): Float64Array {
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < cols; k++) v[r * cols + k] *= transposed ? s[r]! : s[k]!;
  }
  return v;
}
