import { type DType, isInteger } from '../dtype.js';
import { fail } from '../errors.js';
import { type AttrReader, type InferArg, type InferResult, type OpDef, defineOp, noAttrs, requireInput } from '../op.js';
import { type Dim, broadcastShapes, numel, scaledSymbol, splitSymbolic } from '../shape.js';
import { type Tensor, fromNumbers, makeTensor } from '../tensor.js';
import {
  ALL_TYPES,
  FLOATS,
  NUMERIC,
  SIGNED_INTS,
  binaryLoop,
  broadcastIndex,
  readNumbers,
  requireSameDType,
  requireTypeIn,
  requireUnidirectional,
  zipDims,
} from './ew-util.js';

// Numpy-broadcasting ops over inputs of one dtype: arithmetic (variadic where ONNX allows it),
// comparisons, logic, Where, PRelu. Floats compute in float64; i64 computes in BigInt so shape
// arithmetic stays exact; i32 multiplication wraps like C.

type DimsOp = 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min';

// Shape-plumbing arithmetic on known contents; a symbol survives only where the result is that symbol.
function foldDim(op: DimsOp, x: Dim, y: Dim, isInt: boolean): Dim | undefined {
  if (typeof x === 'number' && typeof y === 'number') {
    switch (op) {
      case 'add':
        return x + y;
      case 'sub':
        return x - y;
      case 'mul':
        return x * y;
      case 'div':
        return y === 0 ? undefined : isInt ? Math.trunc(x / y) : x / y;
      case 'max':
        return Math.max(x, y);
      case 'min':
        return Math.min(x, y);
      default: {
        const never: never = op;
        throw new Error(`unknown dims op ${String(never)}`);
      }
    }
  }
  switch (op) {
    case 'add':
      return y === 0 ? x : x === 0 ? y : undefined;
    case 'sub':
      return y === 0 ? x : x === y ? 0 : undefined;
    case 'mul':
      // a symbol times a whole number stays a (scaled) symbol: N*16 for a flattened [N,16]
      if (typeof x === 'string') return isCount(y) ? scaledSymbol(x, y as number) : undefined;
      return isCount(x) ? scaledSymbol(y as string, x) : undefined;
    case 'div': {
      if (y === 1) return x;
      if (typeof x !== 'string' || typeof y !== 'number' || !Number.isInteger(y) || y <= 0) return undefined;
      const { sym, k } = splitSymbolic(x);
      return k % y === 0 ? scaledSymbol(sym, k / y) : undefined;
    }
    case 'max':
    case 'min':
      return x === y ? x : undefined;
    default: {
      const never: never = op;
      throw new Error(`unknown dims op ${String(never)}`);
    }
  }
}

function isCount(d: Dim): boolean {
  return typeof d === 'number' && Number.isInteger(d) && d >= 0;
}

function foldDims(op: DimsOp, args: readonly InferArg[], dtype: DType): Dim[] | undefined {
  let acc: readonly Dim[] | undefined = args[0]!.dims;
  for (let k = 1; k < args.length && acc !== undefined; k++) {
    acc = zipDims([acc, args[k]!.dims], ([x, y]) => foldDim(op, x!, y!, isInteger(dtype)));
  }
  return acc === undefined ? undefined : [...acc];
}

function concreteShape(ts: readonly Tensor[], where: string): number[] {
  return broadcastShapes(
    ts.map((t) => t.shape),
    where,
  ) as number[];
}

function allInputs(inputs: ReadonlyArray<Tensor | null>, where: string): Tensor[] {
  return inputs.map((_, i) => requireInput(inputs, i, where));
}

function allArgs(inputs: ReadonlyArray<InferArg | null>, where: string): InferArg[] {
  return inputs.map((_, i) => requireInput(inputs, i, where));
}

interface ArithSpec<A> {
  readonly name: string;
  readonly inputs: readonly [number, number];
  readonly types: readonly DType[];
  readonly attrs: (r: AttrReader) => A;
  readonly num: (attrs: A, dtype: DType, where: string) => (x: number, y: number) => number;
  readonly big?: (attrs: A, where: string) => (x: bigint, y: bigint) => bigint;
  readonly dims?: DimsOp;
  readonly check?: (attrs: A, dtype: DType, where: string) => void;
  readonly divideByCount?: boolean; // Mean
}

// Left fold over the inputs: out = f(f(x0, x1), x2) ..., each broadcast to the common shape.
function arithOp<A>(s: ArithSpec<A>): OpDef<A> {
  return defineOp<A>({
    name: s.name,
    inputs: s.inputs,
    outputs: [1, 1],
    attrs: s.attrs,
    infer: (attrs, inputs, where) => {
      const args = allArgs(inputs, where);
      const dtype = requireSameDType(
        args.map((a) => a.type),
        where,
      );
      requireTypeIn(dtype, s.types, where, 'input 0');
      s.check?.(attrs, dtype, where);
      const shape = broadcastShapes(
        args.map((a) => a.type.shape),
        where,
      );
      const dims = s.dims ? foldDims(s.dims, args, dtype) : undefined;
      return [dims ? { type: { dtype, shape }, dims } : { type: { dtype, shape } }];
    },
    evaluate: (attrs, inputs, where) => {
      const ts = allInputs(inputs, where);
      const dtype = requireSameDType(ts, where);
      s.check?.(attrs, dtype, where);
      const shape = concreteShape(ts, where);
      const n = numel(shape);
      if (dtype === 'i64' && s.big) {
        const f = s.big(attrs, where);
        const out = new BigInt64Array(n);
        const first = ts[0]!.data as BigInt64Array;
        const i0 = broadcastIndex(ts[0]!.shape, shape);
        for (let i = 0; i < n; i++) out[i] = first[i0 ? i0[i]! : i]!;
        for (const t of ts.slice(1)) binaryLoop(out, null, t.data as BigInt64Array, broadcastIndex(t.shape, shape), out, (x, y) => BigInt.asIntN(64, f(x, y)));
        return [makeTensor('i64', shape, out)];
      }
      const f = s.num(attrs, dtype, where);
      const out = new Float64Array(n);
      if (ts.length === 1) out.set(readNumbers(ts[0]!));
      else binaryLoop(readNumbers(ts[0]!), broadcastIndex(ts[0]!.shape, shape), readNumbers(ts[1]!), broadcastIndex(ts[1]!.shape, shape), out, f);
      for (const t of ts.slice(2)) binaryLoop(out, null, readNumbers(t), broadcastIndex(t.shape, shape), out, f);
      if (s.divideByCount) for (let i = 0; i < n; i++) out[i] = out[i]! / ts.length;
      return [fromNumbers(dtype, shape, out)];
    },
  });
}

function divByZero(where: string): never {
  fail('EVAL', `${where}: integer division by zero`);
}

const add = (x: number, y: number): number => x + y;
const addBig = (x: bigint, y: bigint): bigint => x + y;
const nanMax = (x: number, y: number): number => (x > y || Number.isNaN(x) ? x : y);
const nanMin = (x: number, y: number): number => (x < y || Number.isNaN(x) ? x : y);

interface ModAttrs {
  readonly fmod: boolean;
}

function modFn(a: ModAttrs, dtype: DType, where: string): (x: number, y: number) => number {
  if (!isInteger(dtype) || a.fmod) {
    // JS % is C fmod: the result takes the dividend's sign.
    return isInteger(dtype) ? (x, y) => (y === 0 ? divByZero(where) : x % y) : (x, y) => x % y;
  }
  return (x, y) => {
    if (y === 0) divByZero(where);
    const r = x % y;
    return r !== 0 && r < 0 !== y < 0 ? r + y : r;
  };
}

function modBig(a: ModAttrs, where: string): (x: bigint, y: bigint) => bigint {
  return (x, y) => {
    if (y === 0n) divByZero(where);
    const r = x % y;
    return !a.fmod && r !== 0n && r < 0n !== y < 0n ? r + y : r;
  };
}

const none = noAttrs;

const arithmeticOps = {
  Add: arithOp({ name: 'Add', inputs: [2, 2], types: NUMERIC, attrs: none, num: () => add, big: () => addBig, dims: 'add' }),
  Sub: arithOp({ name: 'Sub', inputs: [2, 2], types: NUMERIC, attrs: none, num: () => (x, y) => x - y, big: () => (x, y) => x - y, dims: 'sub' }),
  Mul: arithOp({
    name: 'Mul',
    inputs: [2, 2],
    types: NUMERIC,
    attrs: none,
    num: (_a, dtype) => (dtype === 'i32' ? Math.imul : (x, y) => x * y),
    big: () => (x, y) => x * y,
    dims: 'mul',
  }),
  Div: arithOp({
    name: 'Div',
    inputs: [2, 2],
    types: NUMERIC,
    attrs: none,
    num: (_a, dtype, where) => (isInteger(dtype) ? (x, y) => (y === 0 ? divByZero(where) : Math.trunc(x / y)) : (x, y) => x / y),
    big: (_a, where) => (x, y) => (y === 0n ? divByZero(where) : x / y),
    dims: 'div',
  }),
  Mod: arithOp({
    name: 'Mod',
    inputs: [2, 2],
    types: NUMERIC,
    attrs: (r) => ({ fmod: r.int('fmod', 0) !== 0 }),
    check: (a, dtype, where) => {
      if (!isInteger(dtype) && !a.fmod) fail('MODEL_INVALID', `${where}: attribute fmod must be 1 for floating-point inputs (dtype ${dtype})`);
    },
    num: modFn,
    big: modBig,
  }),
  Max: arithOp({ name: 'Max', inputs: [1, Infinity], types: NUMERIC, attrs: none, num: () => nanMax, big: () => (x, y) => (x > y ? x : y), dims: 'max' }),
  Min: arithOp({ name: 'Min', inputs: [1, Infinity], types: NUMERIC, attrs: none, num: () => nanMin, big: () => (x, y) => (x < y ? x : y), dims: 'min' }),
  Sum: arithOp({ name: 'Sum', inputs: [1, Infinity], types: FLOATS, attrs: none, num: () => add }),
  Mean: arithOp({ name: 'Mean', inputs: [1, Infinity], types: FLOATS, attrs: none, num: () => add, divideByCount: true }),
} as const;

interface CompareSpec {
  readonly name: string;
  readonly types: readonly DType[];
  readonly cmp: <T extends number | bigint>(x: T, y: T) => boolean;
  readonly foldsDims?: boolean;
}

// Decidable pairs: two numbers, two multiples of one symbol ('N' vs 'N*16'), or a symbol against a
// number below its least value: a symbol stands for a positive size, so N*k >= k and TorchScript's
// `Equal(shape, -1)` is false on a batch dim.
function compareDims(cmp: CompareSpec['cmp'], x: Dim, y: Dim): Dim | undefined {
  if (typeof x === 'number' && typeof y === 'number') return cmp(x, y) ? 1 : 0;
  if (typeof x === 'string' && typeof y === 'string') {
    const [a, b] = [splitSymbolic(x), splitSymbolic(y)];
    return a.sym === b.sym ? (cmp(a.k, b.k) ? 1 : 0) : undefined;
  }
  // the number lies below every value the symbol can take, so its least value decides for all
  if (typeof x === 'number') {
    const least = splitSymbolic(y as string).k;
    return x < least ? (cmp(x, least) ? 1 : 0) : undefined;
  }
  const least = splitSymbolic(x).k;
  return (y as number) < least ? (cmp(least, y as number) ? 1 : 0) : undefined;
}

function compareOp(s: CompareSpec): OpDef<Record<string, never>> {
  return defineOp({
    name: s.name,
    inputs: [2, 2],
    outputs: [1, 1],
    attrs: noAttrs,
    infer: (_a, inputs, where): InferResult[] => {
      const [a, b] = allArgs(inputs, where) as [InferArg, InferArg];
      const dtype = requireSameDType([a.type, b.type], where);
      requireTypeIn(dtype, s.types, where, 'input 0 (A)');
      const type = { dtype: 'bool' as const, shape: broadcastShapes([a.type.shape, b.type.shape], where) };
      const dims = s.foldsDims ? zipDims([a.dims, b.dims], ([x, y]) => compareDims(s.cmp, x!, y!)) : undefined;
      return [dims ? { type, dims } : { type }];
    },
    evaluate: (_a, inputs, where) => {
      const ts = allInputs(inputs, where);
      const dtype = requireSameDType(ts, where);
      const shape = concreteShape(ts, where);
      const out = new Uint8Array(numel(shape));
      const [a, b] = ts as [Tensor, Tensor];
      const ia = broadcastIndex(a.shape, shape);
      const ib = broadcastIndex(b.shape, shape);
      if (dtype === 'i64') binaryLoop(a.data as BigInt64Array, ia, b.data as BigInt64Array, ib, out, (x, y) => (s.cmp(x, y) ? 1 : 0));
      else binaryLoop(readNumbers(a), ia, readNumbers(b), ib, out, (x, y) => (s.cmp(x, y) ? 1 : 0));
      return [makeTensor('bool', shape, out)];
    },
  });
}

const comparisonOps = {
  Equal: compareOp({ name: 'Equal', types: ALL_TYPES, cmp: (x, y) => x === y, foldsDims: true }),
  Less: compareOp({ name: 'Less', types: NUMERIC, cmp: (x, y) => x < y, foldsDims: true }),
  Greater: compareOp({ name: 'Greater', types: NUMERIC, cmp: (x, y) => x > y, foldsDims: true }),
  LessOrEqual: compareOp({ name: 'LessOrEqual', types: NUMERIC, cmp: (x, y) => x <= y, foldsDims: true }),
  GreaterOrEqual: compareOp({ name: 'GreaterOrEqual', types: NUMERIC, cmp: (x, y) => x >= y, foldsDims: true }),
  And: compareOp({ name: 'And', types: ['bool'], cmp: (x, y) => !!x && !!y }),
  Or: compareOp({ name: 'Or', types: ['bool'], cmp: (x, y) => !!x || !!y }),
  Xor: compareOp({ name: 'Xor', types: ['bool'], cmp: (x, y) => !!x !== !!y }),
} as const;

export const binaryOps = {
  ...arithmeticOps,
  ...comparisonOps,

  // The exponent may have a different dtype; the result has the base's.
  Pow: defineOp({
    name: 'Pow',
    inputs: [2, 2],
    outputs: [1, 1],
    attrs: noAttrs,
    infer: (_a, inputs, where) => {
      const [x, y] = allArgs(inputs, where) as [InferArg, InferArg];
      requireTypeIn(x.type.dtype, NUMERIC, where, 'input 0 (X)');
      requireTypeIn(y.type.dtype, NUMERIC, where, 'input 1 (Y)');
      return [{ type: { dtype: x.type.dtype, shape: broadcastShapes([x.type.shape, y.type.shape], where) } }];
    },
    evaluate: (_a, inputs, where) => {
      const [x, y] = allInputs(inputs, where) as [Tensor, Tensor];
      const shape = concreteShape([x, y], where);
      const out = new Float64Array(numel(shape));
      binaryLoop(readNumbers(x), broadcastIndex(x.shape, shape), readNumbers(y), broadcastIndex(y.shape, shape), out, Math.pow);
      return [fromNumbers(x.dtype, shape, out)];
    },
  }),

  // Slope broadcasts unidirectionally to X: the output always has X's shape.
  PRelu: defineOp({
    name: 'PRelu',
    inputs: [2, 2],
    outputs: [1, 1],
    attrs: noAttrs,
    infer: (_a, inputs, where) => {
      const [x, slope] = allArgs(inputs, where) as [InferArg, InferArg];
      const dtype = requireSameDType([x.type, slope.type], where, ['X', 'slope']);
      requireTypeIn(dtype, [...FLOATS, ...SIGNED_INTS, 'u8'], where, 'input 0 (X)');
      requireUnidirectional(x.type.shape, slope.type.shape, where, 'input 1 (slope)');
      return [{ type: x.type }];
    },
    evaluate: (_a, inputs, where) => {
      const [x, slope] = allInputs(inputs, where) as [Tensor, Tensor];
      requireSameDType([x, slope], where, ['X', 'slope']);
      requireUnidirectional(x.shape, slope.shape, where, 'input 1 (slope)');
      const out = new Float64Array(x.data.length);
      binaryLoop(readNumbers(x), null, readNumbers(slope), broadcastIndex(slope.shape, x.shape), out, (v, a) => (v < 0 ? a * v : v));
      return [fromNumbers(x.dtype, x.shape, out)];
    },
  }),

  // Where copies raw elements, so it works for every dtype (f16 bits, BigInts) without conversion.
  Where: defineOp({
    name: 'Where',
    inputs: [3, 3],
    outputs: [1, 1],
    attrs: noAttrs,
    infer: (_a, inputs, where) => {
      const [c, x, y] = allArgs(inputs, where) as [InferArg, InferArg, InferArg];
      if (c.type.dtype !== 'bool') fail('SHAPE', `${where}: input 0 (condition) has dtype ${c.type.dtype}; expected bool`);
      const dtype = requireSameDType([null, x.type, y.type], where, ['condition', 'X', 'Y']);
      const type = { dtype, shape: broadcastShapes([c.type.shape, x.type.shape, y.type.shape], where) };
      const dims = zipDims([c.dims, x.dims, y.dims], ([cv, xv, yv]) => (typeof cv === 'number' ? (cv ? xv : yv) : undefined));
      return [dims ? { type, dims } : { type }];
    },
    evaluate: (_a, inputs, where) => {
      const [c, x, y] = allInputs(inputs, where) as [Tensor, Tensor, Tensor];
      if (c.dtype !== 'bool') fail('SHAPE', `${where}: input 0 (condition) has dtype ${c.dtype}; expected bool`);
      const dtype = requireSameDType([null, x, y], where, ['condition', 'X', 'Y']);
      const shape = concreteShape([c, x, y], where);
      const n = numel(shape);
      const ic = broadcastIndex(c.shape, shape);
      const ix = broadcastIndex(x.shape, shape);
      const iy = broadcastIndex(y.shape, shape);
      const cd = c.data as Uint8Array;
      const xd = x.data as Float64Array; // any typed array: only copied
      const yd = y.data as Float64Array;
      const out = makeTensor(dtype, shape);
      const od = out.data as Float64Array;
      for (let i = 0; i < n; i++) od[i] = cd[ic ? ic[i]! : i] ? xd[ix ? ix[i]! : i]! : yd[iy ? iy[i]! : i]!;
      return [out];
    },
  }),
} as const;
