import type { Graph, Node, NodeId, ValueId } from '../graph.js';
import { toNumbers } from '../tensor.js';
import { replayGraph } from './rewrite.js';

// Removes every node no graph output depends on, the constants only they used, and the no-ops of
// inference (Identity, Dropout): their users read the input directly. Graph output names stay the same
// (the replay renames the value that now carries an output, or keeps one Identity where it must).
export function eliminateDeadCode(g: Graph): Graph {
  const used = new Set<ValueId>(g.outputs);
  for (const n of g.nodes) for (const i of n.inputs) if (i !== null) used.add(i);
  const passThrough = new Set<NodeId>(g.nodes.filter((n) => isNoOp(n, g, used)).map((n) => n.id));
  const live = liveNodes(g);
  return replayGraph(g, (n, ctx) => {
    if (!live.has(n.id)) return true;
    if (!passThrough.has(n.id)) return false;
    ctx.alias(n.outputs[0]!, ctx.map(n.inputs[0]!));
    return true;
  });
}

// Identity, and Dropout whose mask is unused and which does not train (inference is its identity).
function isNoOp(n: Node, g: Graph, used: ReadonlySet<ValueId>): boolean {
  if (n.op === 'Identity') return true;
  if (n.op !== 'Dropout') return false;
  const mask = n.outputs[1];
  if (mask !== undefined && used.has(mask)) return false;
  const training = n.inputs[2];
  if (training === null || training === undefined) return true;
  const t = g.constants.get(training);
  return t !== undefined && toNumbers(t).every((v) => v === 0);
}

function liveNodes(g: Graph): Set<NodeId> {
  const producer = new Map<ValueId, Node>();
  for (const n of g.nodes) for (const o of n.outputs) producer.set(o, n);
  const live = new Set<NodeId>();
  const stack = [...g.outputs];
  const seen = new Set<ValueId>();
  while (stack.length > 0) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    const p = producer.get(v);
    if (p === undefined || live.has(p.id)) continue;
    live.add(p.id);
    for (const i of p.inputs) if (i !== null) stack.push(i);
  }
  return live;
}
