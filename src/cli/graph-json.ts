import { createHash } from 'node:crypto';
import type { Graph } from '../../ir/graph.js';
import { tensorBytes } from '../../ir/tensor.js';

// A JSON view of the IR for tools (`loom import --emit json`). Constants are summarized by size and hash.
export function graphToJson(g: Graph): unknown {
  const name = (id: number) => g.values.get(id as never)?.name ?? `#${id}`;
  return {
    name: g.name,
    symbols: g.symbols,
    inputs: g.inputs.map((id) => ({ name: name(id), ...g.values.get(id)!.type })),
    outputs: g.outputs.map((id) => ({ name: name(id), ...g.values.get(id)!.type })),
    constants: [...g.constants].map(([id, t]) => ({
      name: name(id),
      dtype: t.dtype,
      shape: t.shape,
      sha256: createHash('sha256').update(tensorBytes(t)).digest('hex').slice(0, 16),
    })),
    nodes: g.nodes.map((n) => ({
      name: n.name,
      op: n.op,
      inputs: n.inputs.map((i) => (i === null ? null : name(i))),
      outputs: n.outputs.map((o) => ({ name: name(o), ...g.values.get(o)!.type })),
      attrs: n.attrs,
    })),
  };
}
