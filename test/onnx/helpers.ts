import type { DType } from '../../ir/dtype.js';
import type { Graph, ValueId } from '../../ir/graph.js';
import { type OpName, opDef } from '../../ir/ops/index.js';
import { type Tensor, fromNumbers } from '../../ir/tensor.js';
import { rng } from '../support/tensors.js';

// Values in [-10, 10] with two decimals.
export function randomTensor(shape: readonly number[], seed: number, dtype: DType = 'f32'): Tensor {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return fromNumbers(
    dtype,
    shape,
    Array.from({ length: n }, () => Math.round((r() * 2 - 1) * 1000) / 100),
  );
}

// Straight-line reference evaluation of an imported graph with the ops' own `evaluate`.
export function evaluateGraph(g: Graph, feeds: Readonly<Record<string, Tensor>>): Tensor[] {
  const env = new Map<ValueId, Tensor>(g.constants);
  for (const id of g.inputs) {
    const name = g.values.get(id)!.name;
    const t = feeds[name];
    if (!t) throw new Error(`no feed for input ${name}`);
    env.set(id, t);
  }
  for (const n of g.nodes) {
    const def = opDef(n.op as OpName);
    const ins = n.inputs.map((v) => (v === null ? null : env.get(v)!));
    const outs = def.evaluate(n.attrs as never, ins, n.name, n.outputs.length);
    n.outputs.forEach((o, i) => env.set(o, outs[i]!));
  }
  return g.outputs.map((o) => env.get(o)!);
}

export function valueNamed(g: Graph, name: string): ValueId {
  for (const v of g.values.values()) if (v.name === name) return v.id;
  throw new Error(`no value named ${name}`);
}
