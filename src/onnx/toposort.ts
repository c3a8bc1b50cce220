import { fail } from '../../ir/errors.js';

// ONNX requires nodes in topological order, but exporters slip; sort anyway (stable: an already sorted
// graph keeps its order). Iterative DFS, so deep graphs cannot overflow the stack.

export interface SortNode {
  readonly label: string; // "node 'x' (Op)"
  readonly inputs: readonly string[]; // '' = optional input left out
  readonly outputs: readonly string[];
}

export function topoSort(nodes: readonly SortNode[], available: ReadonlySet<string>): number[] {
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => {
    for (const o of n.outputs) {
      if (o === '') continue;
      if (available.has(o)) fail('MODEL_INVALID', `${n.label} writes value '${o}', which is already a graph input or initializer`);
      const prev = producer.get(o);
      if (prev !== undefined) fail('MODEL_INVALID', `value '${o}' is produced twice: by ${nodes[prev]!.label} and by ${n.label}`);
      producer.set(o, i);
    }
  });
  const deps = nodes.map((n) => {
    const d: number[] = [];
    for (const name of n.inputs) {
      if (name === '' || available.has(name)) continue;
      const p = producer.get(name);
      if (p === undefined)
        fail(
          'MODEL_INVALID',
          `${n.label} reads value '${name}', which no node produces and which is neither a graph input nor an initializer (a missing initializer?)`,
        );
      d.push(p);
    }
    return d;
  });

  const WHITE = 0,
    GRAY = 1,
    BLACK = 2;
  const color = new Uint8Array(nodes.length);
  const order: number[] = [];
  const stack: { node: number; next: number }[] = [];
  for (let root = 0; root < nodes.length; root++) {
    if (color[root] !== WHITE) continue;
    stack.push({ node: root, next: 0 });
    color[root] = GRAY;
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const d = deps[top.node]!;
      if (top.next < d.length) {
        const child = d[top.next++]!;
        if (color[child] === WHITE) {
          color[child] = GRAY;
          stack.push({ node: child, next: 0 });
        } else if (color[child] === GRAY) {
          const from = stack.findIndex((f) => f.node === child);
          const cycle = stack.slice(from).map((f) => nodes[f.node]!.label);
          fail('MODEL_INVALID', `the graph has a cycle (each node reads an output of the next): ${cycle.join(' -> ')} -> ${nodes[child]!.label}`);
        }
      } else {
        color[top.node] = BLACK;
        order.push(top.node);
        stack.pop();
      }
    }
  }
  return order;
}
