// Which values of a tenant's concrete graph keep its request rows apart with the rows outermost, so a GEMM
// whose A is such a value may run only the rows a tick carries (LaunchPlan problem.rowsUnit, FORMAT.md "gemm").
//
// A value is `row` when its flat layout is [maxBatch, u] with block b (elements [b·u, (b+1)·u)) computed from
// request row b alone, and its dim 0 is a multiple of maxBatch (so block b is dims-0 rows [b·k, (b+1)·k)).
// `free` values do not depend on the request at all (constants, inputs without a batch axis). Anything else is
// `unknown`: a value whose rows sit on another axis (a time-major LSTM), or an op that mixes rows (a reduction
// or softmax over dim 0, a transpose moving dim 0) or that this table does not know.
//
// The tenant scales only when EVERY value is row or free: then rows past a tenant's count (stale in a tick that
// skipped them) stay in their own blocks through every op and can never reach a row that is returned. One
// unknown value and the tenant's GEMMs all run every row. Rules stay conservative: unsure means unknown.
import type { Graph, Node, ValueId } from '../../ir/graph.js';
import { toNumbers } from '../../ir/tensor.js';
import type { ConcreteTenant } from './concretize.js';
import { isReduceOp } from './lower-norm.js';

type Tag = 'row' | 'free' | 'unknown';

// Ops that act on each element (with numpy broadcasting between their inputs), as the planner lowers them.
// biome-ignore format: a word list
const ELEMENTWISE = new Set([
  'Relu', 'Sigmoid', 'Tanh', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Neg', 'Abs', 'Sign', 'Floor', 'Ceil', 'Round', 'Erf', 'Sin', 'Cos',
  'Not', 'Softplus', 'Softsign', 'Mish', 'HardSwish', 'Selu', 'Elu', 'Celu', 'LeakyRelu', 'ThresholdedRelu', 'HardSigmoid', 'Gelu',
  'IsNaN', 'IsInf', 'Clip', 'Add', 'Sub', 'Mul', 'Div', 'Mod', 'Max', 'Min', 'Sum', 'Mean', 'Equal', 'Less', 'Greater', 'LessOrEqual',
  'GreaterOrEqual', 'And', 'Or', 'Xor', 'Pow', 'PRelu', 'Where', 'Cast', 'CastLike', 'Expand',
]);

// Flat-preserving views: the bytes stay, only the shape changes.
const VIEWS = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Dropout']);

// Per-sample ops on [N, C, ...]: pools and per-sample normalizations.
const PER_SAMPLE = new Set(['MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'InstanceNormalization', 'GroupNormalization']);

// The values of `c` that are `row` for a tenant of `maxBatch` rows, or null when the tenant must run every row
// (maxBatch 1, or some value is not traced as row-local).
export function rowLocalValues(c: ConcreteTenant, maxBatch: number): ReadonlySet<ValueId> | null {
  if (maxBatch <= 1) return null;
  const g = c.graph;
  const tags = new Map<ValueId, Tag>();
  const shape = (v: ValueId): readonly number[] => g.values.get(v)!.type.shape as readonly number[];
  const tagOf = (v: ValueId | null): Tag => (v === null ? 'free' : (tags.get(v) ?? (g.constants.has(v) ? 'free' : 'unknown')));
  const rowShaped = (v: ValueId): boolean => shape(v).length > 0 && shape(v)[0]! % maxBatch === 0;
  g.inputs.forEach((v, i) => {
    const io = c.inputs[i]!;
    tags.set(v, io.batchAxis === null ? 'free' : io.batchAxis === 0 && rowShaped(v) ? 'row' : 'unknown');
  });
  for (const n of g.nodes) {
    const ins = n.inputs.map(tagOf);
    let out: Tag;
    if (ins.every((t) => t === 'free')) out = 'free';
    else if (ins.includes('unknown')) out = 'unknown';
    else out = nodeTag(g, n, ins, shape, rowShaped);
    for (const o of n.outputs) {
      if (out === 'row' && !rowShaped(o)) return null;
      tags.set(o, out);
    }
    if (out === 'unknown') return null;
  }
  return new Set([...tags].filter(([, t]) => t === 'row').map(([v]) => v));
}

const norm = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis);

// The output tag of a node with at least one row input and no unknown one.
function nodeTag(g: Graph, n: Node, ins: readonly Tag[], shape: (v: ValueId) => readonly number[], rowShaped: (v: ValueId) => boolean): Tag {
  const out0 = n.outputs[0]!;
  const x = n.inputs[0] ?? null;
  const onlyFirstRow = ins.every((t, i) => i === 0 || t === 'free') && ins[0] === 'row';
  const a = n.attrs as Record<string, unknown>;
  const rank = x === null ? 0 : shape(x).length;
  if (ELEMENTWISE.has(n.op) || n.op === 'BatchNormalization') {
    // every row input keeps its dim 0 in place: same rank as the output and the same dim 0 (no broadcast on it)
    const o = shape(out0);
    const ok = n.inputs.every((v, i) => ins[i] !== 'row' || (shape(v!).length === o.length && shape(v!)[0] === o[0]));
    return ok ? 'row' : 'unknown';
  }
  if (VIEWS.has(n.op)) return onlyFirstRow && rowShaped(out0) ? 'row' : 'unknown';
  if (PER_SAMPLE.has(n.op)) return onlyFirstRow ? 'row' : 'unknown';
  switch (n.op) {
    case 'Transpose': {
      const perm = a.perm as readonly number[] | null;
      return onlyFirstRow && perm !== null && perm[0] === 0 ? 'row' : 'unknown';
    }
    case 'Softmax':
    case 'LogSoftmax':
    case 'LayerNormalization':
    case 'ArgMax':
    case 'ArgMin':
      return onlyFirstRow && typeof a.axis === 'number' && norm(a.axis, rank) > 0 ? 'row' : 'unknown';
    case 'Split':
    case 'Concat': {
      // along another axis than 0; Concat's free inputs share dim 0 with the row ones (Concat requires it)
      const ok = typeof a.axis === 'number' && norm(a.axis, rank) > 0 && (n.op === 'Concat' || onlyFirstRow);
      return ok ? 'row' : 'unknown';
    }
    case 'Gather': {
      const axis = typeof a.axis === 'number' ? norm(a.axis, rank) : -1;
      if (onlyFirstRow && axis > 0) return 'row'; // picks along an inner axis of row data
      // an embedding lookup: free table, row indices (rank >= 1) → out = indices' shape + the table's rows. Only
      // indices the caller gives (a graph input, zero-padded past its rows): computed ones could hold stale
      // values past a tick's rows, and an index out of range fails the tick
      const idx = n.inputs[1] ?? null;
      const given = idx !== null && g.inputs.includes(idx) && shape(idx).length > 0;
      if (axis === 0 && ins[0] === 'free' && ins[1] === 'row' && given) return 'row';
      return 'unknown';
    }
    case 'Gemm':
      // Y = op(A)·op(B) + C: A's rows become Y's rows only untransposed; B and C must not depend on the request
      return onlyFirstRow && a.transA !== true ? 'row' : 'unknown';
    case 'MatMul':
      return matMulTag(n, ins, shape);
    case 'Conv':
    case 'ConvTranspose':
      return onlyFirstRow ? 'row' : 'unknown';
    default:
      if (isReduceOp(n.op)) return onlyFirstRow && reduceKeepsRows(g, n, rank) ? 'row' : 'unknown';
      return 'unknown';
  }
}

// A·B (numpy matmul): A's dim 0 stays the output's dim 0 when A has at least B's rank and rank >= 2 (dim 0 is a
// batch dim or A's rows, never the contracted one); a row B must be a batch-aligned stack (rank >= 3, as high
// as the output) with A free or row and aligned the same way. A fused bias must be free.
function matMulTag(n: Node, ins: readonly Tag[], shape: (v: ValueId) => readonly number[]): Tag {
  if (ins.slice(2).some((t) => t !== 'free')) return 'unknown';
  const ra = shape(n.inputs[0]!).length;
  const rb = shape(n.inputs[1]!).length;
  const ro = shape(n.outputs[0]!).length;
  const aOk = ins[0] === 'free' || (ra >= 2 && ra === ro && shape(n.inputs[0]!)[0] === shape(n.outputs[0]!)[0]);
  const bOk = ins[1] === 'free' || (rb >= 3 && rb === ro && shape(n.inputs[1]!)[0] === shape(n.outputs[0]!)[0]);
  return aOk && bOk ? 'row' : 'unknown';
}

// A reduction keeps rows apart when it reduces neither dim 0 nor everything (axes from the attribute or a
// constant second input).
function reduceKeepsRows(g: Graph, n: Node, rank: number): boolean {
  const a = n.attrs as { axes?: readonly number[] | null; noopWithEmptyAxes?: boolean };
  let axes: readonly number[] | null = a.axes ?? null;
  const axesInput = n.inputs[1] ?? null;
  if (axes === null && axesInput !== null) {
    const t = g.constants.get(axesInput);
    if (t === undefined) return false;
    axes = [...toNumbers(t)];
  }
  if (axes === null || axes.length === 0) return a.noopWithEmptyAxes === true;
  return axes.every((x) => norm(x, rank) > 0);
}
