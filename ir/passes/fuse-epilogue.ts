import type { Graph, Node, ValueId } from '../graph.js';
import type { Activation } from '../ops/activation.js';
import { type Tensor, fromNumbers, toNumbers } from '../tensor.js';
import { existingBias, hasActivation, matchActivation, numAttr, perChannel } from './match.js';
import { type ReplayContext, replayGraph } from './rewrite.js';

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
    const prev = existingBias(old, n.inputs[2], channels);
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
  const prev = existingBias(old, n.inputs[2], channels);
  if (prev === null) return undefined;
  const b = ctx.b.addConstant(name, sumBias(c.dtype, channels, c, prev, 1));
  return { add, out: add.outputs[0]!, inputs: [x, ctx.map(n.inputs[1]!), b] };
}

function sumBias(dtype: Tensor['dtype'], channels: number, add: Tensor, prev: Tensor | undefined, prevScale: number): Tensor {
  const a = toNumbers(add);
  const p = prev === undefined ? undefined : toNumbers(prev);
  const out = new Float64Array(channels);
  for (let i = 0; i < channels; i++) out[i] = a[a.length === 1 ? 0 : i]! + (p === undefined ? 0 : prevScale * p[p.length === 1 ? 0 : i]!);
  return fromNumbers(dtype, [channels], out);
}
