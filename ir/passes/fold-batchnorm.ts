import type { DType } from '../dtype.js';
import type { Graph, Node, ValueId } from '../graph.js';
import { type Tensor, fromNumbers, makeTensor, takeConsumable, toNumbers } from '../tensor.js';
import { existingBias, hasActivation, numAttr, perChannel } from './match.js';
import { type GraphIndex, type ReplayContext, replayGraph } from './rewrite.js';

// Inference BatchNormalization is a per-channel affine map y = x*s + t with s = scale/sqrt(var+eps) and
// t = bias - mean*s; so are Mul/Add/Sub by a per-channel constant (PP-OCRv4's "learnable affine blocks"
// write Conv → Mul(w0) → Add(w1)). A chain of them after a Conv/Gemm/MatMul with constant weights folds
// into those weights and bias, so the planner sees one GEMM instead of a GEMM and a norm. BN after
// anything else stays as it is.
export function foldBatchNorm(g: Graph): Graph {
  const shared = sharedData(g);
  return replayGraph(g, (n, ctx) => {
    if (n.op !== 'Conv' && n.op !== 'Gemm' && n.op !== 'MatMul') return false;
    if (n.outputs.length !== 1 || hasActivation(n)) return false;
    const chain = affineChain(n, ctx.old);
    if (chain === undefined) return false;
    const { affine } = chain;
    const fused = n.op === 'Conv' ? foldIntoConv(n, affine, ctx, shared) : n.op === 'Gemm' ? foldIntoGemm(n, affine, ctx) : foldIntoMatMul(n, affine, ctx);
    if (fused === undefined) return false;
    const out = ctx.emit(n, { inputs: fused.inputs, attrs: fused.attrs, outputNames: [ctx.old.value(chain.out).name] })[0]!;
    ctx.alias(chain.out, out);
    for (const m of chain.nodes) ctx.skip(m);
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

interface AffineChain {
  readonly affine: Affine;
  readonly nodes: readonly Node[];
  readonly out: ValueId;
}

// The longest run of per-channel affine nodes after n, each the only use of the previous value.
function affineChain(n: Node, old: GraphIndex): AffineChain | undefined {
  const y = old.value(n.outputs[0]!).type;
  const rank = y.shape.length;
  const axis = n.op === 'Conv' ? 1 : rank - 1;
  const c = y.shape[axis];
  if (typeof c !== 'number' || rank < 2) return undefined;
  const s = new Float64Array(c).fill(1);
  const t = new Float64Array(c);
  const nodes: Node[] = [];
  let cur = n.outputs[0]!;
  for (;;) {
    const m = old.soleConsumer(cur);
    const step = m === undefined || m.outputs.length !== 1 ? undefined : affineStep(m, cur, old, y.dtype, rank, axis, c);
    if (step === undefined) break;
    for (let i = 0; i < c; i++) {
      s[i] = s[i]! * step.s[i]!;
      t[i] = t[i]! * step.s[i]! + step.t[i]!;
    }
    nodes.push(m!);
    cur = m!.outputs[0]!;
  }
  return nodes.length === 0 ? undefined : { affine: { s, t }, nodes, out: cur };
}

// One node as y = x*s + t per channel, when it is BN (on axis 1), or Mul/Add/Sub by a per-channel constant.
function affineStep(m: Node, x: ValueId, old: GraphIndex, dtype: DType, rank: number, axis: number, c: number): Affine | undefined {
  if (m.op === 'BatchNormalization') return m.inputs[0] === x && axis === 1 ? bnAffine(m, old) : undefined;
  if (m.op !== 'Mul' && m.op !== 'Add' && m.op !== 'Sub') return undefined;
  const other = m.inputs[0] === x ? m.inputs[1] : m.inputs[1] === x ? m.inputs[0] : undefined;
  if (other == null || (m.op === 'Sub' && m.inputs[0] !== x)) return undefined;
  const k = old.constant(other);
  if (k === undefined || k.dtype !== dtype || k.shape.length > rank || !perChannel(k, rank, axis, c)) return undefined;
  const kv = toNumbers(k);
  const at = (i: number): number => kv[kv.length === 1 ? 0 : i]!;
  const s = new Float64Array(c).fill(1);
  const t = new Float64Array(c);
  for (let i = 0; i < c; i++) {
    if (m.op === 'Mul') s[i] = at(i);
    else t[i] = m.op === 'Add' ? at(i) : -at(i);
  }
  return { s, t };
}

function bnAffine(bn: Node, old: GraphIndex): Affine | undefined {
  const params = bn.inputs.slice(1, 5).map((v) => (v === null ? undefined : old.constant(v)));
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

// Data arrays held by more than one constant (never overwritten in place).
function sharedData(g: Graph): ReadonlySet<Tensor['data']> {
  const seen = new Set<Tensor['data']>();
  const shared = new Set<Tensor['data']>();
  for (const t of g.constants.values()) (seen.has(t.data) ? shared : seen).add(t.data);
  return shared;
}

function foldIntoConv(n: Node, a: Affine, ctx: ReplayContext, shared: ReadonlySet<Tensor['data']>): Fused | undefined {
  const w = n.inputs[1] == null ? undefined : ctx.old.constant(n.inputs[1]);
  const c = a.s.length;
  if (w === undefined || w.shape[0] !== c) return undefined;
  const b = existingBias(ctx.old, n.inputs[2], c);
  if (b === null) return undefined;
  // Scaled in place when nothing else uses the imported weight: a fresh copy per conv was most of the pass.
  const sole = ctx.old.consumers(n.inputs[1]!).length === 1 && !ctx.old.isGraphOutput(n.inputs[1]!) && !shared.has(w.data);
  const wId = ctx.b.addConstant(`${n.name}_W_bn`, scaleOutputChannels(w, a.s, sole && takeConsumable(w)));
  const bId = foldedBias(`${n.name}_B_bn`, b, w.dtype, a, ctx);
  return { inputs: [ctx.map(n.inputs[0]!), wId, bId], attrs: n.attrs };
}

// Conv weights [C_out, ...] times their output channel's scale. f32 (every real model) goes straight from
// Float32Array to Float32Array: the same f64 product rounded once, without two full f64 copies per weight.
// inPlace: w's data is ours to overwrite (takeConsumable); the result then shares it.
function scaleOutputChannels(w: Tensor, s: Float64Array, inPlace: boolean): Tensor {
  const c = s.length;
  const per = Math.floor(w.data.length / c);
  if (w.dtype !== 'f32') {
    const wv = toNumbers(w);
    for (let m = 0; m < c; m++) for (let j = 0; j < per; j++) wv[m * per + j] *= s[m]!;
    return fromNumbers(w.dtype, w.shape, wv);
  }
  const src = w.data as Float32Array;
  const out = inPlace ? src : new Float32Array(src.length);
  for (let m = 0; m < c; m++) {
    const k = s[m]!;
    const end = (m + 1) * per;
    for (let i = m * per; i < end; i++) out[i] = src[i]! * k;
  }
  return makeTensor(w.dtype, w.shape, out);
}

// Gemm's output is [M, N]; BN's channel axis is N, the columns of op(B).
function foldIntoGemm(n: Node, a: Affine, ctx: ReplayContext): Fused | undefined {
  const w = n.inputs[1] == null ? undefined : ctx.old.constant(n.inputs[1]);
  const c = a.s.length;
  if (w === undefined || w.shape.length !== 2) return undefined;
  const transB = numAttr(n, 'transB', 0) !== 0;
  if ((transB ? w.shape[0] : w.shape[1]) !== c) return undefined;
  const b = existingBias(ctx.old, n.inputs[2], c);
  if (b === null) return undefined;
  const beta = numAttr(n, 'beta', 1);
  const wv = scaleColumns(toNumbers(w), w.shape[0]!, w.shape[1]!, a.s, transB);
  const wId = ctx.b.addConstant(`${n.name}_B_bn`, fromNumbers(w.dtype, w.shape, wv));
  const cId = foldedBias(`${n.name}_C_bn`, b, w.dtype, a, ctx, beta);
  return { inputs: [ctx.map(n.inputs[0]!), wId, cId], attrs: { ...(n.attrs as object), beta: 1 } };
}

// MatMul folds with a constant [K, N] weight: the channel axis is N, the last (BN only reaches it at rank 2).
function foldIntoMatMul(n: Node, a: Affine, ctx: ReplayContext): Fused | undefined {
  const w = n.inputs[1] == null ? undefined : ctx.old.constant(n.inputs[1]);
  const c = a.s.length;
  if (w === undefined || w.shape.length !== 2 || w.shape[1] !== c) return undefined;
  const b = existingBias(ctx.old, n.inputs[2], c);
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
