// Elementwise nodes → postfix programs (launch.ts EltInstr). A node whose only use is another elementwise
// node is not emitted: its program is inlined into the consumer's, so a chain becomes one kernel step.
import { type DType, isFloat, isInteger } from '../../ir/dtype.js';
import { fail } from '../../ir/errors.js';
import type { Node, ValueId } from '../../ir/graph.js';
import type { Activation } from '../../ir/ops/activation.js';
import { numel } from '../../ir/shape.js';
import { fromNumbers, toNumbers } from '../../ir/tensor.js';
import type { EltBinary, EltInstr, EltUnary } from '../../ir/contract/launch.js';
import type { Loc, TenantLowering } from './lower-context.js';

type Leaf = ValueId | Loc;

// A program over its leaves ('in' i reads leaves[i]).
export interface Expr {
  readonly program: readonly EltInstr[];
  readonly leaves: readonly Leaf[];
  readonly allFloat: boolean; // every intermediate is a float (then the kernel computes in f32)
}

// A deferred program (in `pending`) as lowerEltwise built it, with its numeric leaves' index. Such a program
// re-emits into an empty one unchanged (numeric leaves are unique and indexed in first-use order, each Loc
// leaf is read once, scalar constants are already immediates), so a consumer that starts with it adopts its
// arrays instead of copying them: a chain of n fused nodes costs O(n), not O(n^2).
interface PendingExpr extends Expr {
  readonly program: EltInstr[];
  readonly leaves: Leaf[];
  readonly leafIndex: Map<ValueId, number>;
}

const UNARY: Partial<Record<string, EltUnary>> = {
  Neg: 'neg',
  Abs: 'abs',
  Reciprocal: 'recip',
  Sqrt: 'sqrt',
  Exp: 'exp',
  Log: 'log',
  Erf: 'erf',
  Tanh: 'tanh',
  Sigmoid: 'sigmoid',
  Relu: 'relu',
  Floor: 'floor',
  Ceil: 'ceil',
  Round: 'round',
  Sin: 'sin',
  Cos: 'cos',
  Not: 'not',
  Sign: 'sign',
  Softplus: 'softplus',
  Softsign: 'softsign',
  IsNaN: 'isnan',
};

const BINARY: Partial<Record<string, EltBinary>> = {
  Add: 'add',
  Sub: 'sub',
  Mul: 'mul',
  Div: 'div',
  Pow: 'pow',
  Equal: 'eq',
  Less: 'lt',
  Greater: 'gt',
  LessOrEqual: 'le',
  GreaterOrEqual: 'ge',
  And: 'and',
  Or: 'or',
  Xor: 'xor',
};

const OTHER = new Set([
  'LeakyRelu',
  'HardSigmoid',
  'HardSwish',
  'Gelu',
  'Elu',
  'Selu',
  'Celu',
  'Mish',
  'ThresholdedRelu',
  'IsInf',
  'Max',
  'Min',
  'Sum',
  'Mean',
  'Mod',
  'Where',
  'Cast',
  'CastLike',
  'Clip',
  'PRelu',
  'BatchNormalization',
]);

export function isEltwiseOp(op: string): boolean {
  return UNARY[op] !== undefined || BINARY[op] !== undefined || OTHER.has(op);
}

const inp = (i: number): EltInstr => ({ op: 'in', i });
const k = (v: number): EltInstr => ({ op: 'const', v });
const u = (op: EltUnary): EltInstr => ({ op });
const b = (op: EltBinary): EltInstr => ({ op });

// The node's program over its own inputs (leaf i = input i), before fusion.
function nodeExpr(cx: TenantLowering, n: Node): Expr {
  const where = cx.where();
  const ins = n.inputs;
  const leaves: Leaf[] = ins.map((v) => v!);
  const attrs = n.attrs as Record<string, unknown>;
  const out = (program: EltInstr[], ls: Leaf[] = leaves): Expr => ({ program, leaves: ls, allFloat: true });
  const un = UNARY[n.op];
  if (un) return out([inp(0), u(un)]);
  const bin = BINARY[n.op];
  if (bin) {
    const intDiv = n.op === 'Div' && isInteger(cx.dtypeOf(ins[0]!));
    return out([inp(0), inp(1), b(intDiv ? 'idiv' : bin)]);
  }
  const act = (a: Activation): Expr => out([inp(0), { op: 'act', act: a }]);
  const num = (name: string): number => attrs[name] as number;
  switch (n.op) {
    case 'LeakyRelu':
      return act({ kind: 'leaky_relu', alpha: num('alpha') });
    case 'HardSigmoid':
      return act({ kind: 'hard_sigmoid', alpha: num('alpha'), beta: num('beta') });
    case 'HardSwish':
      return act({ kind: 'hard_swish' });
    case 'Gelu':
      return act({ kind: attrs.approximate === 'tanh' ? 'gelu_tanh' : 'gelu_erf' });
    case 'Elu':
      return out([inp(0), k(0), b('ge'), inp(0), inp(0), u('exp'), k(1), b('sub'), k(num('alpha')), b('mul'), { op: 'where' }]);
    case 'Selu': {
      const [al, ga] = [num('alpha'), num('gamma')];
      return out([inp(0), k(0), b('gt'), inp(0), k(ga), b('mul'), inp(0), u('exp'), k(1), b('sub'), k(al * ga), b('mul'), { op: 'where' }]);
    }
    case 'Celu': {
      const al = num('alpha');
      return out([inp(0), k(0), b('max'), k(0), inp(0), k(al), b('div'), u('exp'), k(1), b('sub'), k(al), b('mul'), b('min'), b('add')]);
    }
    case 'Mish':
      return out([inp(0), inp(0), u('softplus'), u('tanh'), b('mul')]);
    case 'ThresholdedRelu':
      return out([inp(0), k(num('alpha')), b('gt'), inp(0), k(0), { op: 'where' }]);
    case 'IsInf':
      if (!attrs.detectNegative || !attrs.detectPositive) fail('UNSUPPORTED_OP', `${where}: IsInf detecting one sign only is not supported by the planner`);
      return out([inp(0), u('isinf')]);
    case 'Max':
    case 'Min':
    case 'Sum':
    case 'Mean': {
      const op: EltBinary = n.op === 'Max' ? 'max' : n.op === 'Min' ? 'min' : 'add';
      const p: EltInstr[] = [inp(0)];
      for (let i = 1; i < ins.length; i++) p.push(inp(i), b(op));
      if (n.op === 'Mean') p.push(k(ins.length), b('div'));
      return out(p);
    }
    case 'Mod':
      return out([inp(0), inp(1), b(attrs.fmod ? 'fmod' : 'mod')]);
    case 'Where':
      return out([inp(0), inp(1), inp(2), { op: 'where' }]);
    case 'Cast':
    case 'CastLike':
      return out([inp(0)], [leaves[0]!]);
    case 'Clip': {
      const lo = scalarConst(cx, ins[1]);
      const hi = scalarConst(cx, ins[2]);
      if ((ins[1] == null || lo !== undefined) && (ins[2] == null || hi !== undefined)) {
        return out([inp(0), { op: 'clip', min: lo ?? -Number.MAX_VALUE, max: hi ?? Number.MAX_VALUE }], [leaves[0]!]);
      }
      const p: EltInstr[] = [inp(0)];
      if (ins[1] != null) p.push(inp(1), b('max'));
      if (ins[2] != null) p.push(inp(2), b('min'));
      return out(p);
    }
    case 'PRelu':
      return out([inp(0), k(0), b('lt'), inp(1), inp(0), b('mul'), inp(0), { op: 'where' }]);
    case 'BatchNormalization':
      return batchNormExpr(cx, n);
    default:
      return fail('UNSUPPORTED_OP', `${where}: not an elementwise op`);
  }
}

function scalarConst(cx: TenantLowering, v: ValueId | null | undefined): number | undefined {
  const c = cx.scalarConstantOf(v);
  if (c === undefined) return undefined;
  const x = toNumbers(c)[0]!;
  return Number.isFinite(x) ? x : undefined;
}

// Inference BatchNormalization as x * s + t with per-channel constants folded at compile time.
function batchNormExpr(cx: TenantLowering, n: Node): Expr {
  const where = cx.where();
  const [x, sc, bi, mean, vr] = n.inputs;
  const cs = [sc, bi, mean, vr].map((v) => cx.constantOf(v));
  if (cs.some((c) => c === undefined)) fail('UNSUPPORTED_OP', `${where}: BatchNormalization with runtime statistics is not supported`);
  if (n.outputs.length > 1) fail('UNSUPPORTED_OP', `${where}: training-mode BatchNormalization is not supported`);
  const [s, bb, m, v] = cs.map((c) => toNumbers(c!));
  const eps = (n.attrs as { epsilon: number }).epsilon;
  const shape = cx.shapeOf(x!);
  const C = shape[1] ?? 1;
  const scale = new Float64Array(C);
  const shift = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    scale[c] = s![c]! / Math.sqrt(v![c]! + eps);
    shift[c] = bb![c]! - m![c]! * scale[c]!;
  }
  const pshape = [C, ...new Array<number>(Math.max(0, shape.length - 2)).fill(1)];
  const dt = cx.dtypeOf(x!);
  const sl = cx.weight(`${n.name}_scale`, fromNumbers(dt, pshape, scale));
  const tl = cx.weight(`${n.name}_shift`, fromNumbers(dt, pshape, shift));
  return { program: [inp(0), inp(1), b('mul'), inp(2), b('add')], leaves: [x!, sl, tl], allFloat: true };
}

// Lowers elementwise node n, or defers it when its only use is an elementwise consumer (then that
// consumer inlines it). `pending` holds deferred programs by the value they would have produced.
export function lowerEltwise(cx: TenantLowering, n: Node, pending: Map<ValueId, Expr>, fuseInto: boolean): void {
  const own = nodeExpr(cx, n);
  const outV = n.outputs[0]!;
  const outDType = cx.dtypeOf(outV);
  // inline pending producers and scalar constants; collect final leaves
  let leaves: Leaf[] = [];
  let leafIndex = new Map<ValueId, number>();
  let allFloat = isFloat(outDType);
  let program: EltInstr[] = [];
  const emit = (e: Expr): void => {
    for (const ins of e.program) {
      if (ins.op !== 'in') {
        program.push(ins);
        continue;
      }
      const leaf = e.leaves[ins.i]!;
      if (typeof leaf === 'number') {
        const p = pending.get(leaf);
        if (p !== undefined) {
          pending.delete(leaf);
          if (program.length === 0 && leaves.length === 0 && 'leafIndex' in p) {
            const q = p as PendingExpr; // consumed: nothing else reads it, so its arrays are ours now
            program = q.program;
            leaves = q.leaves;
            leafIndex = q.leafIndex;
            if (!q.allFloat) allFloat = false;
          } else emit(p);
          if (!isFloat(cx.dtypeOf(leaf))) allFloat = false;
          continue;
        }
        const c = cx.scalarConstantOf(leaf);
        if (c !== undefined) {
          const v = toNumbers(c)[0]!;
          if (Number.isFinite(v)) {
            program.push(k(v));
            if (!isFloat(c.dtype)) allFloat = false;
            continue;
          }
        }
        if (!isFloat(cx.dtypeOf(leaf))) allFloat = false;
        let i = leafIndex.get(leaf);
        if (i === undefined) {
          i = leaves.length;
          leaves.push(leaf);
          leafIndex.set(leaf, i);
        }
        program.push(inp(i));
      } else {
        if (!isFloat(leaf.dtype)) allFloat = false;
        program.push(inp(leaves.length));
        leaves.push(leaf);
      }
    }
    if (!e.allFloat) allFloat = false;
  };
  emit(own);
  if (fuseInto) {
    const deferred: PendingExpr = { program, leaves, allFloat, leafIndex };
    pending.set(outV, deferred);
    return;
  }
  const expr: Expr = { program, leaves, allFloat };
  const Y = cx.newValue(outV);
  emitProgram(cx, expr, Y, outDType);
}

export function emitProgram(cx: TenantLowering, e: Expr, Y: Loc, outDType: DType): void {
  const shape = Y.shape;
  if (numel(shape) === 0) return;
  const inputs = e.leaves.map((leaf) => {
    const l = typeof leaf === 'number' ? cx.loc(leaf) : leaf;
    return { ref: l.ref, dtype: l.dtype, strides: broadcastStrides(l.shape, shape) };
  });
  cx.kernel({ op: 'eltwise', program: e.program, computeF32: e.allFloat }, [{ shape, inputs, out: Y.ref, outDType }]);
}

// Element strides of a tensor of shape `own` read at every index of `shape` (numpy broadcasting).
export function broadcastStrides(own: readonly number[], shape: readonly number[]): number[] {
  const r = shape.length;
  const st = new Array<number>(r).fill(0);
  let acc = 1;
  for (let i = own.length - 1; i >= 0; i--) {
    const d = r - own.length + i;
    if (d >= 0) st[d] = own[i] === 1 ? 0 : acc;
    acc *= own[i]!;
  }
  return st;
}
