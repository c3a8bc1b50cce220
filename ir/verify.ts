import { GraphBuilder } from './builder.js';
import { fail, isLoomError } from './errors.js';
import type { Graph, ValueId } from './graph.js';
import { genericDef, genericNodes } from './generic-node.js';
import type { AttrsOf, OpName } from './ops/index.js';
import { numel, shapeToString, shapesEqual, splitSymbolic } from './shape.js';
import { formatType } from './text-format.js';

const MAX_REPORTED = 10;

// Checks the IR invariants every stage relies on; throws VERIFY listing the first problems.
// Tests run it after every pass. Types are re-derived by replaying the graph into a GraphBuilder,
// which recomputes the dims side table exactly as the builder that made the graph did.
export function verifyGraph(g: Graph): void {
  const problems: string[] = [];
  const report = (msg: string): void => {
    problems.push(msg);
  };
  const label = (id: ValueId | null): string => {
    const v = id === null ? undefined : g.values.get(id);
    return v === undefined ? `value #${String(id)}` : `%${v.name}`;
  };

  checkValues(g, report);

  // Definitions, in program order: inputs and constants first, then node outputs.
  const defined = new Set<ValueId>();
  const define = (id: ValueId, what: string): void => {
    if (!g.values.has(id)) report(`${what} value #${id} is not in the value table`);
    if (defined.has(id)) report(`${label(id)} is defined more than once (again as ${what})`);
    defined.add(id);
  };
  for (const id of g.inputs) define(id, 'graph input');
  for (const [id, t] of g.constants) {
    define(id, 'constant');
    const v = g.values.get(id);
    if (v === undefined) continue;
    if (t.dtype !== v.type.dtype || !shapesEqual(t.shape, v.type.shape)) {
      report(`constant %${v.name} holds ${t.dtype}${shapeToString(t.shape)} but its value type is ${formatType(v.type)}`);
    } else if (t.data.length !== numel(t.shape)) {
      report(`constant %${v.name} has ${t.data.length} elements for shape ${shapeToString(t.shape)}`);
    }
  }
  const nodeIds = new Set<number>();
  const nodeNames = new Set<string>();
  for (const node of genericNodes(g)) {
    const where = `node '${node.name}' (${node.op})`;
    if (nodeIds.has(node.id)) report(`${where}: node id #${node.id} is used twice`);
    if (nodeNames.has(node.name)) report(`${where}: node name is used twice`);
    nodeIds.add(node.id);
    nodeNames.add(node.name);
    node.inputs.forEach((id, i) => {
      if (id === null) return;
      if (!g.values.has(id)) report(`${where}: input ${i} is value #${id}, which is not in the value table`);
      else if (!defined.has(id)) report(`${where}: input ${i} ${label(id)} is used before it is defined`);
    });
    const def = genericDef(node.op);
    if (def !== undefined) {
      const [minIn, maxIn] = def.inputs;
      const [minOut, maxOut] = def.outputs;
      const nIn = node.inputs.length;
      if (nIn < minIn || nIn > maxIn) report(`${where}: has ${nIn} inputs; the op takes ${range(minIn, maxIn)}`);
      if (nIn > 0 && node.inputs[nIn - 1] === null) report(`${where}: trailing omitted inputs must be dropped, not stored as null`);
      const nOut = node.outputs.length;
      if (nOut < minOut || nOut > maxOut) report(`${where}: has ${nOut} outputs; the op produces ${range(minOut, maxOut)}`);
    } else {
      report(`${where}: op '${node.op}' is not registered`);
    }
    for (const id of node.outputs) define(id, `output of ${where}`);
  }
  for (const id of g.values.keys()) if (!defined.has(id)) report(`${label(id)} is never defined`);
  g.outputs.forEach((id, i) => {
    if (!g.values.has(id)) report(`graph output ${i} is value #${id}, which is not in the value table`);
    else if (!defined.has(id)) report(`graph output ${i} ${label(id)} is never defined`);
  });

  if (problems.length === 0) checkTypes(g, report);
  if (problems.length > 0) {
    const more = problems.length > MAX_REPORTED ? `\n  ... and ${problems.length - MAX_REPORTED} more` : '';
    fail('VERIFY', `graph '${g.name}' is invalid:\n  ${problems.slice(0, MAX_REPORTED).join('\n  ')}${more}`);
  }
}

function range(lo: number, hi: number): string {
  return lo === hi ? String(lo) : hi === Infinity ? `at least ${lo}` : `${lo}..${hi}`;
}

function checkValues(g: Graph, report: (msg: string) => void): void {
  const names = new Set<string>();
  const symbols = new Set(g.symbols);
  for (const [id, v] of g.values) {
    if (v.id !== id) report(`value table entry #${id} holds %${v.name} with id #${v.id}`);
    if (names.has(v.name)) report(`value name %${v.name} is used twice`);
    names.add(v.name);
    for (const d of v.type.shape) {
      if (typeof d === 'string') {
        if (!symbols.has(splitSymbolic(d).sym))
          report(`%${v.name}: ${formatType(v.type)} uses symbol '${d}', which is not among the graph's symbols [${g.symbols.join(', ')}]`);
      } else if (!Number.isInteger(d) || d < 0) {
        report(`%${v.name}: ${formatType(v.type)} has an invalid dimension ${d}`);
      }
    }
  }
}

// Replays the graph through the builder so every shape rule runs again on the stored input types
// (with constants and known dims), and compares its answers with the stored output types.
function checkTypes(g: Graph, report: (msg: string) => void): void {
  const b = new GraphBuilder(g.name);
  const map = new Map<ValueId, ValueId>();
  for (const id of g.inputs) {
    const v = g.values.get(id)!;
    map.set(id, b.addInput(v.name, v.type));
  }
  for (const [id, t] of g.constants) map.set(id, b.addConstant(g.values.get(id)!.name, t));
  for (const node of genericNodes(g)) {
    const where = `node '${node.name}' (${node.op})`;
    let outs: ValueId[];
    try {
      const inputs = node.inputs.map((i) => (i === null ? null : map.get(i)!));
      const names = node.outputs.map((o) => g.values.get(o)!.name);
      outs = b.addNode(node.op as OpName, node.name, inputs, node.attrs as AttrsOf<OpName>, names);
    } catch (e) {
      report(`${where}: shape rule fails on the stored input types: ${isLoomError(e) ? e.message : String(e)}`);
      return; // later types all depend on this one
    }
    node.outputs.forEach((o, k) => {
      const stored = g.values.get(o)!;
      const inferred = b.value(outs[k]!).type;
      if (stored.type.dtype !== inferred.dtype || !shapesEqual(stored.type.shape, inferred.shape)) {
        report(`${where}: output ${k} %${stored.name} is stored as ${formatType(stored.type)} but the shape rule gives ${formatType(inferred)}`);
      }
      map.set(o, outs[k]!);
    });
  }
}
