import { allocArray } from './dtype.js';
import { fail } from './errors.js';
import type { Graph, Value, ValueId } from './graph.js';
import { genericDef, genericNodes } from './generic-node.js';
import { type Shape, numel, shapeToString, splitSymbolic } from './shape.js';
import type { Tensor } from './tensor.js';
import { formatType } from './text-format.js';

export interface InterpretOptions {
  // Value names to return besides the graph outputs (kept alive instead of freed); 'all' keeps every
  // graph input and node output.
  readonly keep?: readonly string[] | 'all';
}

// The reference executor: runs each node's reference semantics in order on concrete tensors.
// Returns the graph outputs (and any kept values) keyed by value name. Intermediates are dropped
// after their last use so large models do not hold every activation.
export function interpret(g: Graph, inputs: Readonly<Record<string, Tensor>>, opts: InterpretOptions = {}): Record<string, Tensor> {
  const bindings = new Map<string, { size: number; from: string }>();
  const env = new Map<ValueId, Tensor>();
  const valueOf = (id: ValueId): Value => g.values.get(id) ?? fail('VERIFY', `value #${id} is not defined in graph '${g.name}'`);

  bindInputs(g, inputs, bindings, env, valueOf);
  for (const [id, t] of g.constants) env.set(id, t);

  const keepAll = opts.keep === 'all';
  const keep = new Set<ValueId>(g.outputs);
  if (Array.isArray(opts.keep)) {
    const byName = new Map([...g.values.values()].map((v) => [v.name, v.id]));
    for (const name of opts.keep) keep.add(byName.get(name) ?? fail('USAGE', `interpret: no value named '${name}' in graph '${g.name}'`));
  }
  const lastUse = new Map<ValueId, number>();
  genericNodes(g).forEach((n, i) => {
    for (const id of n.inputs) if (id !== null) lastUse.set(id, i);
  });
  const release = (id: ValueId, i: number): void => {
    if (!keepAll && !keep.has(id) && !g.constants.has(id) && (lastUse.get(id) ?? -1) <= i) env.delete(id);
  };

  genericNodes(g).forEach((node, i) => {
    const where = `node '${node.name}' (${node.op})`;
    const args = node.inputs.map((id, k) => {
      if (id === null) return null;
      return env.get(id) ?? fail('VERIFY', `${where}: input ${k} %${valueOf(id).name} has no value (used before it is defined?)`);
    });
    const def = genericDef(node.op) ?? fail('VERIFY', `${where}: op is not registered`);
    const results = def.evaluate(node.attrs, args, where, node.outputs.length);
    if (results.length < node.outputs.length) {
      fail('VERIFY', `${where}: evaluate produced ${results.length} outputs, the node has ${node.outputs.length}`);
    }
    node.outputs.forEach((id, k) => {
      const v = valueOf(id);
      const t = results[k]!;
      checkAgainst(v.type.shape, t, v, `${where}: output ${k}`, 'VERIFY', bindings);
      env.set(id, t);
      release(id, i);
    });
    for (const id of node.inputs) if (id !== null) release(id, i);
  });

  const out: Record<string, Tensor> = {};
  const emit = (id: ValueId): void => {
    const t = env.get(id) ?? fail('VERIFY', `graph output %${valueOf(id).name} was never computed`);
    out[valueOf(id).name] = t;
  };
  if (keepAll) for (const id of env.keys()) if (!g.constants.has(id)) emit(id);
  for (const id of keep) emit(id);
  return out;
}

// Every value a run computes (graph inputs and node outputs), by name; for debugging.
export function interpretAll(g: Graph, inputs: Readonly<Record<string, Tensor>>): Record<string, Tensor> {
  return interpret(g, inputs, { keep: 'all' });
}

function bindInputs(
  g: Graph,
  inputs: Readonly<Record<string, Tensor>>,
  bindings: Map<string, { size: number; from: string }>,
  env: Map<ValueId, Tensor>,
  valueOf: (id: ValueId) => Value,
): void {
  const expected = new Set<string>();
  for (const id of g.inputs) {
    const v = valueOf(id);
    expected.add(v.name);
    const t = inputs[v.name];
    if (t === undefined) fail('EVAL', `input %${v.name} (${formatType(v.type)}) is missing`);
    if (t.data.length !== numel(t.shape) || t.data.constructor !== allocArray(t.dtype, 0).constructor) {
      fail('EVAL', `input %${v.name}: tensor ${t.dtype}${shapeToString(t.shape)} has malformed data (${t.data.constructor.name} of ${t.data.length} elements)`);
    }
    checkAgainst(v.type.shape, t, v, 'input', 'EVAL', bindings);
    env.set(id, t);
  }
  for (const name of Object.keys(inputs)) {
    if (!expected.has(name)) fail('EVAL', `input '${name}' is not an input of graph '${g.name}' (inputs: ${[...expected].join(', ')})`);
  }
}

// Tensor against its declared type: dtype, rank, concrete dims, and each symbol one size throughout the run.
function checkAgainst(
  declared: Shape,
  t: Tensor,
  v: Value,
  what: string,
  code: 'EVAL' | 'VERIFY',
  bindings: Map<string, { size: number; from: string }>,
): void {
  const got = `${t.dtype}${shapeToString(t.shape)}`;
  const mismatch = (detail: string): never => fail(code, `${what} %${v.name}: expected ${formatType(v.type)}, got ${got}${detail ? ` (${detail})` : ''}`);
  if (t.dtype !== v.type.dtype || t.shape.length !== declared.length) mismatch('');
  declared.forEach((d, i) => {
    const n = t.shape[i]!;
    if (typeof d === 'number') {
      if (d !== n) mismatch(`dim ${i}`);
      return;
    }
    // a scaled symbol 'N*16' binds (and checks) N itself
    const { sym, k } = splitSymbolic(d);
    const b = bindings.get(sym);
    if (b === undefined) {
      if (n % k !== 0) mismatch(`dim ${i}: ${n} is not a multiple of ${k}`);
      bindings.set(sym, { size: n / k, from: `${what} %${v.name}` });
    } else if (b.size * k !== n) mismatch(`dim ${i}: ${sym} is ${b.size} from ${b.from}`);
  });
}
