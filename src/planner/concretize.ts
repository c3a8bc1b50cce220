// Makes a tenant's graph concrete: the batch symbol becomes maxBatch rows, constant folding then removes
// every shape sub-graph, and recurrent ops are lowered to GEMMs + elementwise. A model exported with a fixed
// batch of 1 gets its leading input dim rebound to a symbol first, so maxBatch rows can share its weights.
import type { DType } from '../../ir/dtype.js';
import { GraphBuilder } from '../../ir/builder.js';
import { fail, isLoomError } from '../../ir/errors.js';
import type { Graph, ValueId } from '../../ir/graph.js';
import { constantFold } from '../../ir/passes/constant-fold.js';
import { eliminateDeadCode } from '../../ir/passes/dead-code.js';
import { type Dim, isStatic, shapeToString, splitSymbolic } from '../../ir/shape.js';
import type { TensorType } from '../../ir/tensor.js';
import { type CanonicalizeOptions, lowerForPlanner } from '../../ir/passes/index.js';
import type { TenantInput } from '../../ir/contract/plan.js';

export interface ConcreteIO {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly batchAxis: number | null;
}

export interface ConcreteTenant {
  readonly graph: Graph;
  readonly inputs: readonly ConcreteIO[];
  readonly outputs: readonly ConcreteIO[];
}

const BATCH = 'N';

// Replays g into a fresh builder with new input types, re-running every shape rule.
export function rebuildWithInputs(g: Graph, types: ReadonlyMap<ValueId, TensorType>, symbols: readonly string[]): Graph {
  const b = new GraphBuilder(g.name);
  const map = new Map<ValueId, ValueId>();
  for (const i of g.inputs) {
    const v = g.values.get(i)!;
    map.set(i, b.addInput(v.name, types.get(i) ?? v.type));
  }
  const get = (v: ValueId): ValueId => {
    const m = map.get(v);
    if (m !== undefined) return m;
    const c = g.constants.get(v);
    if (c === undefined) fail('VERIFY', `graph '${g.name}': value #${v} is used before it is defined`);
    const id = b.addConstant(g.values.get(v)!.name, c);
    map.set(v, id);
    return id;
  };
  for (const n of g.nodes) {
    const outs = b.addNode(
      n.op,
      n.name,
      n.inputs.map((v) => (v === null ? null : get(v))),
      n.attrs as never,
      n.outputs.map((o) => g.values.get(o)!.name),
    );
    n.outputs.forEach((o, k) => map.set(o, outs[k]!));
  }
  b.setOutputs(g.outputs.map(get));
  return b.build(symbols);
}

// A fixed-batch model (leading input dims 1) made batchable: every input's leading 1 becomes the symbol.
function rebindFixedBatch(t: TenantInput): Graph {
  const g = t.graph;
  const hint = `set maxBatch 1 for tenant '${t.id}'`;
  const types = new Map<ValueId, TensorType>();
  for (const i of g.inputs) {
    const v = g.values.get(i)!;
    if (v.type.shape.length === 0 || v.type.shape[0] !== 1) {
      fail(
        'UNSUPPORTED_FEATURE',
        `tenant '${t.id}': input '${v.name}' ${shapeToString(v.type.shape)} has no batch dim of 1 to batch maxBatch ${t.maxBatch} rows along; ${hint}`,
      );
    }
    types.set(i, { dtype: v.type.dtype, shape: [BATCH, ...v.type.shape.slice(1)] });
  }
  let out: Graph;
  try {
    out = rebuildWithInputs(g, types, [BATCH]);
  } catch (e) {
    if (!isLoomError(e)) throw e;
    fail('UNSUPPORTED_FEATURE', `tenant '${t.id}': the model fixes its batch at 1 and does not accept ${t.maxBatch} rows (${e.message}); ${hint}`);
  }
  for (const o of out.outputs) {
    const v = out.values.get(o)!;
    if (v.type.shape[0] !== BATCH || v.type.shape.slice(1).some((d) => typeof d !== 'number')) {
      fail(
        'UNSUPPORTED_FEATURE',
        `tenant '${t.id}': the model fixes its batch at 1; with the batch rebound, output '${v.name}' is ${shapeToString(v.type.shape)} and does not carry the rows on axis 0; ${hint}`,
      );
    }
  }
  return out;
}

function ioOf(g: Graph, ids: readonly ValueId[], sym: string | null, concrete: Graph, concreteIds: readonly ValueId[], where: string): ConcreteIO[] {
  return ids.map((id, j) => {
    const v = g.values.get(id)!;
    const c = concrete.values.get(concreteIds[j]!)!;
    let batchAxis: number | null = null;
    v.type.shape.forEach((d, i) => {
      if (typeof d !== 'string') return;
      if (d !== sym || batchAxis !== null)
        fail('UNSUPPORTED_FEATURE', `${where}: '${v.name}' ${shapeToString(v.type.shape)} must carry the batch symbol once, as a plain dim`);
      batchAxis = i;
    });
    if (!isStatic(c.type.shape)) fail('VERIFY', `${where}: '${c.name}' is still symbolic after concretization`);
    return { name: v.name, dtype: c.type.dtype, shape: c.type.shape, batchAxis };
  });
}

// `opts.onPass` sees the graph after each lowering pass (`loom compile --dump-after`).
export function concretizeTenant(t: TenantInput, opts: Pick<CanonicalizeOptions, 'onPass'> = {}): ConcreteTenant {
  const where = `tenant '${t.id}'`;
  if (!Number.isInteger(t.maxBatch) || t.maxBatch < 1) fail('USAGE', `${where}: maxBatch must be a positive integer, got ${t.maxBatch}`);
  let g = t.graph;
  if (g.symbols.length > 1)
    fail('UNSUPPORTED_FEATURE', `${where}: symbolic dims ${g.symbols.join(', ')}; only the batch dim may stay symbolic (bind the others at import)`);
  if (g.symbols.length === 0 && t.maxBatch > 1) g = rebindFixedBatch(t);
  const sym = g.symbols[0] ?? null;
  const rows = (d: Dim): number => {
    if (typeof d === 'number') return d;
    const s = splitSymbolic(d);
    if (s.sym !== sym) fail('UNSUPPORTED_FEATURE', `${where}: unknown symbolic dim '${d}'`);
    return s.k * t.maxBatch;
  };
  const types = new Map<ValueId, TensorType>();
  for (const i of g.inputs) {
    const v = g.values.get(i)!;
    types.set(i, { dtype: v.type.dtype, shape: v.type.shape.map(rows) });
  }
  let c = rebuildWithInputs(g, types, []);
  c = eliminateDeadCode(constantFold(c));
  c = lowerForPlanner(c, opts);
  c = eliminateDeadCode(constantFold(c));
  return { graph: c, inputs: ioOf(g, g.inputs, sym, c, c.inputs, where), outputs: ioOf(g, g.outputs, sym, c, c.outputs, where) };
}
