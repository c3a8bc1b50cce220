import type { Graph, Node, ValueId } from '../graph.js';
import type { Activation } from '../ops/activation.js';
import { type Tensor, fromNumbers, toNumbers } from '../tensor.js';
import { hasActivation, matchActivation, numAttr } from './match.js';
import { type GraphIndex, type ReplayContext, replayGraph } from './rewrite.js';

// Attaches the bias Add and the activation that follow a MatMul/Gemm/Conv to it as an epilogue, so the
// planner emits one GEMM launch per layer instead of a GEMM and two elementwise launches. The fused
// values must have no other use: only then does nothing else need the intermediate tensors.
export function fuseEpilogue(g: Graph): Graph {
  return replayGraph(g, (n, ctx) => {
    if (n.op !== 'MatMul' && n.op !== 'Gemm' && n.op !== 'Conv') return false;
    if (n.outputs.length !== 1 || hasActivation(n)) return false;
    const bias = matchBias(n, ctx);
    const cur = bias?.out ?? n.outputs[0]!;
    const act = matchActivation(ctx.old, cur);
    if (bias === undefined && act === undefined) return false;

    const out = act?.out ?? cur;
    const activation: Activation | null = act?.activation ?? null;
    const inputs = bias?.inputs ?? n.inputs.map((v) => ctx.mapOpt(v));
    const attrs = { ...(n.attrs as object), ...(bias?.attrs ?? {}), activation };
    const fused = ctx.emit(n, { inputs, attrs, outputNames: [ctx.old.value(out).name] })[0]!;
    ctx.alias(out, fused);
    for (const m of [...(bias ? [bias.add] : []), ...(act?.nodes ?? [])]) ctx.skip(m);
    return true;
  });
}

interface BiasMatch {
  readonly add: Node;
  readonly out: ValueId;
  readonly inputs: ReadonlyArray<ValueId | null>;
  readonly attrs?: Record<string, unknown>;
}

// Add(y, c) right after the producer, with c a constant holding one value per output channel
// (the last axis for MatMul/Gemm, axis 1 for Conv) and broadcasting to nothing else.
function matchBias(n: Node, ctx: ReplayContext): BiasMatch | undefined {
  const { old } = ctx;
  const y = n.outputs[0]!;
  const add = old.soleConsumer(y);
  if (add === undefined || add.op !== 'Add' || add.outputs.length !== 1) return undefined;
  const cId = add.inputs[0] === y ? add.inputs[1] : add.inputs[1] === y ? add.inputs[0] : null;
  const c = cId == null ? undefined : old.constant(cId);
  const yType = old.value(y).type;
  if (c === undefined || c.dtype !== yType.dtype || c.shape.length > yType.shape.length) return undefined;
  const axis = n.op === 'Conv' ? 1 : yType.shape.length - 1;
  const channels = yType.shape[axis];
  if (typeof channels !== 'number' || !perChannel(c, yType.shape.length, axis, channels)) return undefined;
  const x = ctx.map(n.inputs[0]!);
  const name = `${n.name}_bias`;

  if (n.op === 'Gemm') {
    const prev = biasVector(old, n.inputs[2], channels);
    if (prev === null) return undefined;
    const beta = numAttr(n, 'beta', 1);
    const b = ctx.b.addConstant(name, sumBias(c.dtype, channels, c, prev, beta));
    return { add, out: add.outputs[0]!, inputs: [x, ctx.map(n.inputs[1]!), b], attrs: { beta: 1 } };
  }
  // MatMul takes a bias only with a constant 2-D weight (a dense layer), as the IR extension defines it.
  if (n.op === 'MatMul') {
    const w = n.inputs[1] == null ? undefined : old.constant(n.inputs[1]);
    if (w === undefined || w.shape.length !== 2) return undefined;
  }
  const prev = biasVector(old, n.inputs[2], channels);
  if (prev === null) return undefined;
  const b = ctx.b.addConstant(name, sumBias(c.dtype, channels, c, prev, 1));
  return { add, out: add.outputs[0]!, inputs: [x, ctx.map(n.inputs[1]!), b] };
}

// c (right-aligned against a rank-`rank` output) has size `channels` at `axis` and 1 everywhere else.
function perChannel(c: Tensor, rank: number, axis: number, channels: number): boolean {
  if (c.data.length === 1) return true; // one bias for every channel
  if (c.data.length !== channels) return false;
  const off = rank - c.shape.length;
  if (off > axis && channels !== 1) return false;
  return c.shape.every((d, i) => (i + off === axis ? d === channels : d === 1));
}

// An existing bias input: absent (undefined), a constant per channel or single value, or unusable (null).
function biasVector(old: GraphIndex, v: ValueId | null | undefined, channels: number): Tensor | undefined | null {
  if (v === null || v === undefined) return undefined;
  const t = old.constant(v);
  if (t === undefined || (t.data.length !== channels && t.data.length !== 1)) return null;
  if (t.shape.filter((d) => d !== 1).length > 1) return null;
  if (t.data.length === channels && channels !== 1 && t.shape[t.shape.length - 1] !== channels) return null;
  return t;
}

function sumBias(dtype: Tensor['dtype'], channels: number, add: Tensor, prev: Tensor | undefined, prevScale: number): Tensor {
  const a = toNumbers(add);
  const p = prev === undefined ? undefined : toNumbers(prev);
  const out = new Float64Array(channels);
  for (let i = 0; i < channels; i++) out[i] = a[a.length === 1 ? 0 : i]! + (p === undefined ? 0 : prevScale * p[p.length === 1 ? 0 : i]!);
  return fromNumbers(dtype, [channels], out);
}
