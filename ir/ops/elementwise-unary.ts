import type { DType } from '../dtype.js';
import { fail } from '../errors.js';
import { type AttrReader, type OpDef, defineOp, noAttrs, requireInput } from '../op.js';
import { type Tensor, fromNumbers, makeTensor, toNumbers } from '../tensor.js';
import { erf } from './activation.js';
import { FLOATS, NUMERIC, SIGNED_INTS, allNumbers, readNumbers, requireTypeIn } from './ew-util.js';

// One-input, shape-preserving ops. Each declares its dtypes and scalar function; float math runs in
// float64 and is rounded back into the input dtype.

interface UnarySpec<A> {
  readonly name: string;
  readonly types: readonly DType[];
  readonly attrs: (r: AttrReader) => A;
  readonly fn: (attrs: A) => (x: number) => number;
  readonly big?: (x: bigint) => bigint; // exact i64 path (values past 2^53)
  readonly boolOut?: boolean; // IsNaN / IsInf
  readonly foldsDims?: boolean; // apply fn to known numeric contents (shape arithmetic)
}

function unaryOp<A>(s: UnarySpec<A>): OpDef<A> {
  return defineOp<A>({
    name: s.name,
    inputs: [1, 1],
    outputs: [1, 1],
    attrs: s.attrs,
    infer: (attrs, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (X)');
      requireTypeIn(x.type.dtype, s.types, where, 'input 0 (X)');
      const type = { dtype: s.boolOut ? ('bool' as const) : x.type.dtype, shape: x.type.shape };
      if (s.foldsDims && allNumbers(x.dims)) {
        const f = s.fn(attrs);
        return [{ type, dims: x.dims.map((v) => f(v)) }];
      }
      return [{ type }];
    },
    evaluate: (attrs, inputs, where) => {
      const t = requireInput(inputs, 0, where, 'input 0 (X)');
      requireTypeIn(t.dtype, s.types, where, 'input 0 (X)');
      const n = t.data.length;
      if (t.dtype === 'i64' && s.big) {
        const src = t.data as BigInt64Array;
        const out = new BigInt64Array(n);
        for (let i = 0; i < n; i++) out[i] = BigInt.asIntN(64, s.big(src[i]!));
        return [makeTensor('i64', t.shape, out)];
      }
      const f = s.fn(attrs);
      const x = readNumbers(t);
      if (s.boolOut) {
        const out = new Uint8Array(n);
        for (let i = 0; i < n; i++) out[i] = f(x[i]!) ? 1 : 0;
        return [makeTensor('bool', t.shape, out)];
      }
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = f(x[i]!);
      return [fromNumbers(t.dtype, t.shape, out)];
    },
  });
}

const floatUnary = (name: string, f: (x: number) => number): OpDef<Record<string, never>> => unaryOp({ name, types: FLOATS, attrs: noAttrs, fn: () => f });

// Round half to even, as ONNX Round (and numpy) do.
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  const r = d < 0.5 ? f : d > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;
  return r === 0 && x < 0 ? -0 : r; // -0.4 rounds to -0, as in C and onnxruntime
}

function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

const SELU_ALPHA = 1.67326319217681884765625;
const SELU_GAMMA = 1.05070102214813232421875;

export const unaryOps = {
  Relu: unaryOp({
    name: 'Relu',
    types: [...FLOATS, ...SIGNED_INTS],
    attrs: noAttrs,
    fn: () => (x) => (x > 0 ? x : 0),
    big: (x) => (x > 0n ? x : 0n),
    foldsDims: true,
  }),
  Sigmoid: floatUnary('Sigmoid', (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)))),
  Tanh: floatUnary('Tanh', Math.tanh),
  Exp: floatUnary('Exp', Math.exp),
  Log: floatUnary('Log', Math.log),
  Sqrt: floatUnary('Sqrt', Math.sqrt),
  Reciprocal: floatUnary('Reciprocal', (x) => 1 / x),
  Neg: unaryOp({ name: 'Neg', types: [...FLOATS, ...SIGNED_INTS], attrs: noAttrs, fn: () => (x) => -x, big: (x) => -x, foldsDims: true }),
  Abs: unaryOp({ name: 'Abs', types: NUMERIC, attrs: noAttrs, fn: () => Math.abs, big: (x) => (x < 0n ? -x : x), foldsDims: true }),
  Sign: unaryOp({
    name: 'Sign',
    types: NUMERIC,
    attrs: noAttrs,
    fn: () => (x) => (x > 0 ? 1 : x < 0 ? -1 : x),
    big: (x) => (x > 0n ? 1n : x < 0n ? -1n : 0n),
    foldsDims: true,
  }),
  Floor: unaryOp({ name: 'Floor', types: FLOATS, attrs: noAttrs, fn: () => Math.floor, foldsDims: true }),
  Ceil: unaryOp({ name: 'Ceil', types: FLOATS, attrs: noAttrs, fn: () => Math.ceil, foldsDims: true }),
  Round: unaryOp({ name: 'Round', types: FLOATS, attrs: noAttrs, fn: () => roundHalfEven, foldsDims: true }),
  Erf: floatUnary('Erf', erf),
  Sin: floatUnary('Sin', Math.sin),
  Cos: floatUnary('Cos', Math.cos),
  Not: unaryOp({ name: 'Not', types: ['bool'], attrs: noAttrs, fn: () => (x) => (x ? 0 : 1) }),
  Softplus: floatUnary('Softplus', softplus),
  Softsign: floatUnary('Softsign', (x) => x / (1 + Math.abs(x))),
  Mish: floatUnary('Mish', (x) => x * Math.tanh(softplus(x))),
  HardSwish: floatUnary('HardSwish', (x) => x * Math.max(0, Math.min(1, x / 6 + 0.5))),
  Selu: unaryOp({
    name: 'Selu',
    types: FLOATS,
    attrs: (r) => ({ alpha: r.float('alpha', SELU_ALPHA), gamma: r.float('gamma', SELU_GAMMA) }),
    fn: (a) => (x) => (x > 0 ? a.gamma * x : a.gamma * (a.alpha * Math.exp(x) - a.alpha)),
  }),
  Elu: unaryOp({
    name: 'Elu',
    types: FLOATS,
    attrs: (r) => ({ alpha: r.float('alpha', 1) }),
    fn: (a) => (x) => (x >= 0 ? x : a.alpha * Math.expm1(x)),
  }),
  Celu: unaryOp({
    name: 'Celu',
    types: FLOATS,
    attrs: (r) => ({ alpha: r.float('alpha', 1) }),
    fn: (a) => (x) => Math.max(0, x) + Math.min(0, a.alpha * Math.expm1(x / a.alpha)),
  }),
  LeakyRelu: unaryOp({
    name: 'LeakyRelu',
    types: FLOATS,
    attrs: (r) => ({ alpha: r.float('alpha', 0.01) }),
    fn: (a) => (x) => (x >= 0 ? x : a.alpha * x),
  }),
  ThresholdedRelu: unaryOp({
    name: 'ThresholdedRelu',
    types: FLOATS,
    attrs: (r) => ({ alpha: r.float('alpha', 1) }),
    fn: (a) => (x) => (x > a.alpha ? x : 0),
  }),
  HardSigmoid: unaryOp({
    name: 'HardSigmoid',
    types: FLOATS,
    attrs: (r) => ({ alpha: r.float('alpha', 0.2), beta: r.float('beta', 0.5) }),
    fn: (a) => (x) => Math.max(0, Math.min(1, a.alpha * x + a.beta)),
  }),
  Gelu: unaryOp({
    name: 'Gelu',
    types: FLOATS,
    attrs: (r) => {
      const approximate = r.string('approximate', 'none');
      if (approximate !== 'none' && approximate !== 'tanh') r.unsupported('approximate', `'${approximate}' (expected 'none' or 'tanh')`);
      return { approximate: approximate as 'none' | 'tanh' };
    },
    fn: (a) =>
      a.approximate === 'tanh'
        ? (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)))
        : (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  }),
  IsNaN: unaryOp({ name: 'IsNaN', types: FLOATS, attrs: noAttrs, fn: () => (x) => (Number.isNaN(x) ? 1 : 0), boolOut: true }),
  IsInf: unaryOp({
    name: 'IsInf',
    types: FLOATS,
    attrs: (r) => ({ detectNegative: r.int('detect_negative', 1) !== 0, detectPositive: r.int('detect_positive', 1) !== 0 }),
    fn: (a) => (x) => ((x === Infinity && a.detectPositive) || (x === -Infinity && a.detectNegative) ? 1 : 0),
    boolOut: true,
  }),

  // Modern Clip: min and max are optional scalar inputs (opset 11+); the importer turns attributes into inputs.
  Clip: defineOp({
    name: 'Clip',
    inputs: [1, 3],
    outputs: [1, 1],
    attrs: noAttrs,
    infer: (_a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (input)');
      requireTypeIn(x.type.dtype, NUMERIC, where, 'input 0 (input)');
      for (const [i, what] of [
        [1, 'min'],
        [2, 'max'],
      ] as const) {
        const b = inputs[i];
        if (!b) continue;
        if (b.type.dtype !== x.type.dtype)
          fail('SHAPE', `${where}: input ${i} (${what}) has dtype ${b.type.dtype} but input 0 has ${x.type.dtype}; the op requires equal element types`);
        if (b.type.shape.length > 1 || (b.type.shape.length === 1 && b.type.shape[0] !== 1)) {
          fail('SHAPE', `${where}: input ${i} (${what}) must be a scalar, got shape [${b.type.shape.join(',')}]`);
        }
      }
      return [{ type: x.type }];
    },
    evaluate: (_a, inputs, where) => {
      const t = requireInput(inputs, 0, where, 'input 0 (input)');
      const bound = (b: Tensor | null | undefined, dflt: number): number => (b ? (toNumbers(b)[0] ?? dflt) : dflt);
      const lo = bound(inputs[1], -Infinity);
      const hi = bound(inputs[2], Infinity);
      const x = readNumbers(t);
      const n = t.data.length;
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const v = x[i]!;
        out[i] = v < lo ? lo : v > hi ? hi : v;
      }
      // min > max: ONNX sets every value to max.
      if (lo > hi) out.fill(hi);
      return [fromNumbers(t.dtype, t.shape, out)];
    },
  }),
} as const;
