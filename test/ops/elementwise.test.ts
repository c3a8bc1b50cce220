import { describe, expect, it } from 'vitest';
import type { OpName } from '../../ir/ops/index.js';
import { fromNumbers, makeTensor, toNumbers } from '../../ir/tensor.js';
import { expectLoomError } from '../support/errors.js';
import { type Attrs, evalOp, inferOp, typeArg } from '../support/one-node.js';
import { i64, tensor } from '../support/tensors.js';
import { checkOp, rand } from './helpers-ew.js';

describe('unary float ops match onnxruntime', () => {
  const cases: ReadonlyArray<[OpName, Attrs, { lo?: number; hi?: number; opset?: number }]> = [
    ['Relu', {}, {}],
    ['Sigmoid', {}, { lo: -20, hi: 20 }],
    ['Tanh', {}, {}],
    ['Exp', {}, {}],
    ['Log', {}, { lo: 0.01, hi: 10 }],
    ['Sqrt', {}, { lo: 0, hi: 10 }],
    ['Reciprocal', {}, { lo: 0.1, hi: 5 }],
    ['Neg', {}, {}],
    ['Abs', {}, {}],
    ['Floor', {}, {}],
    ['Ceil', {}, {}],
    ['Erf', {}, { lo: -4, hi: 4 }],
    ['Sin', {}, {}],
    ['Cos', {}, {}],
    ['Sign', {}, {}],
    ['Softplus', {}, { lo: -30, hi: 30 }],
    ['Softsign', {}, {}],
    ['Elu', {}, {}],
    ['Elu', { alpha: 0.7 }, {}],
    ['Selu', {}, {}],
    ['Selu', { alpha: 1.5, gamma: 1.2 }, {}],
    ['LeakyRelu', {}, {}],
    ['LeakyRelu', { alpha: 0.3 }, {}],
    ['HardSigmoid', {}, {}],
    ['HardSigmoid', { alpha: 0.25, beta: 0.4 }, {}],
    ['HardSwish', {}, { lo: -5, hi: 5 }],
    ['Celu', { alpha: 1.3 }, {}],
    ['ThresholdedRelu', { alpha: 0.5 }, {}],
    ['Mish', {}, { opset: 18 }],
    ['Gelu', {}, { opset: 20 }],
    ['Gelu', { approximate: 'tanh' }, { opset: 20 }],
  ];
  for (const [op, attrs, o] of cases) {
    it(`${op} ${JSON.stringify(attrs)}`, async () => {
      const x = rand([3, 4, 5], { ...(o.lo !== undefined ? { lo: o.lo } : {}), ...(o.hi !== undefined ? { hi: o.hi } : {}) });
      await checkOp(op, [x], attrs, o.opset !== undefined ? { opset: o.opset } : {});
    });
  }

  it('Round is half-to-even', async () => {
    const x = tensor('f32', [8], [0.5, 1.5, 2.5, -0.5, -1.5, 2.4, -2.6, 3]);
    const [y] = await checkOp('Round', [x]);
    expect(Array.from(toNumbers(y!))).toEqual([0, 2, 2, -0, -2, 2, -3, 3]);
    expect(Object.is(toNumbers(evalOp('Round', [tensor('f32', [1], [-0.4])])[0]!)[0], -0)).toBe(true);
  });

  it('f16 and f64 inputs round-trip through float64 math', async () => {
    await checkOp('Sigmoid', [rand([4, 6], { dtype: 'f16' })]);
    await checkOp('Tanh', [rand([4, 6], { dtype: 'f64' })]);
    const [y] = evalOp('Relu', [rand([2, 3], { dtype: 'bf16' })]);
    expect(y!.dtype).toBe('bf16');
    expect(Math.min(...toNumbers(y!))).toBe(0);
  });

  it('Relu, Neg, Abs, Sign on integers', async () => {
    for (const dtype of ['i32', 'i64'] as const) {
      const x = rand([3, 7], { dtype, lo: -50, hi: 50, int: true });
      for (const op of ['Neg', 'Abs', 'Sign'] as const) await checkOp(op, [x]);
      // onnxruntime's CPU provider has no integer Relu kernel: check against max(x, 0) directly.
      const [y] = evalOp('Relu', [x]);
      expect(y!.dtype).toBe(dtype);
      expect(Array.from(toNumbers(y!))).toEqual(Array.from(toNumbers(x), (v) => Math.max(v, 0)));
    }
  });

  it('Not, IsNaN, IsInf', async () => {
    await checkOp('Not', [tensor('bool', [4], [1, 0, 0, 1])]);
    const x = tensor('f32', [6], [1, NaN, Infinity, -Infinity, 0, -2]);
    await checkOp('IsNaN', [x]);
    await checkOp('IsInf', [x]);
    await checkOp('IsInf', [x], { detect_negative: 0 });
    await checkOp('IsInf', [x], { detect_positive: 0 });
  });

  it('Gelu rejects an unknown approximation', () => {
    expectLoomError(() => evalOp('Gelu', [rand([2])], { approximate: 'fast' }), 'UNSUPPORTED_FEATURE', /approximate.*'fast'/);
  });
});

describe('Clip and PRelu', () => {
  it('Clip with both, one or no bounds', async () => {
    const x = rand([4, 5]);
    await checkOp('Clip', [x, tensor('f32', [], [-1]), tensor('f32', [], [0.5])]);
    await checkOp('Clip', [x, tensor('f32', [], [-1])]);
    await checkOp('Clip', [x, null, tensor('f32', [], [0.5])]);
    await checkOp('Clip', [x]);
    await checkOp('Clip', [x, tensor('f32', [], [1]), tensor('f32', [], [0])]);
    await checkOp('Clip', [rand([9], { dtype: 'i32', lo: -20, hi: 20, int: true }), tensor('i32', [], [-5]), tensor('i32', [], [7])]);
  });

  it('Clip rejects a bound of another dtype', () => {
    expectLoomError(() => inferOp('Clip', [typeArg('f32', [2]), typeArg('f64', [])]), 'SHAPE', /input 1 \(min\) has dtype f64/);
  });

  it('PRelu slope broadcasts unidirectionally', async () => {
    const x = rand([2, 3, 4, 4]);
    await checkOp('PRelu', [x, rand([3, 1, 1])]);
    await checkOp('PRelu', [x, rand([4])]);
    await checkOp('PRelu', [x, tensor('f32', [1], [0.25])]);
    expectLoomError(() => inferOp('PRelu', [typeArg('f32', [3, 1]), typeArg('f32', [3, 4])]), 'SHAPE', /slope.*does not broadcast to \[3,1\]/);
  });
});

describe('binary and variadic ops match onnxruntime', () => {
  const shapes: ReadonlyArray<[number[], number[]]> = [
    [
      [2, 3, 4],
      [2, 3, 4],
    ],
    [
      [2, 3, 4],
      [3, 1],
    ],
    [[2, 3, 4], [4]],
    [
      [2, 1, 4],
      [1, 3, 1],
    ],
    [[], [3, 2]],
    [[5], []],
  ];
  for (const op of ['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'Sum', 'Mean'] as const) {
    it(`${op} f32 with broadcasting`, async () => {
      for (const [sa, sb] of shapes) await checkOp(op, [rand(sa), rand(sb, { lo: 0.5, hi: 4 })]);
    });
  }

  it('Pow with float and integer exponents', async () => {
    await checkOp('Pow', [rand([3, 4], { lo: 0.1, hi: 3 }), rand([4], { lo: -2, hi: 2 })]);
    await checkOp('Pow', [rand([3, 4]), i64([0, 1, 2, 3])]);
    await checkOp('Pow', [rand([3, 4], { dtype: 'i64', lo: -5, hi: 5, int: true }), i64([0, 1, 2, 3])]);
  });

  it('integer arithmetic: Div truncates toward zero, i32 Mul wraps', async () => {
    for (const dtype of ['i32', 'i64'] as const) {
      const a = tensor(dtype, [8], [7, -7, 7, -7, 0, 100, -100, 9]);
      const b = tensor(dtype, [8], [2, 2, -2, -2, 3, 7, 7, -4]);
      const [q] = await checkOp('Div', [a, b]);
      expect(Array.from(toNumbers(q!))).toEqual([3, -3, -3, 3, 0, 14, -14, -2]);
      for (const op of ['Add', 'Sub', 'Mul', 'Max', 'Min'] as const) await checkOp(op, [a, b]);
    }
    await checkOp('Mul', [tensor('i32', [2], [123456789, -98765]), tensor('i32', [2], [1000, 77777])]);
    expectLoomError(() => evalOp('Div', [i64([1]), i64([0])]), 'EVAL', /division by zero/);
  });

  it('i64 arithmetic is exact beyond 2^53', () => {
    const big = fromNumbers('i64', [1], [0]);
    (big.data as BigInt64Array)[0] = 2n ** 60n + 1n;
    const [y] = evalOp('Add', [big, i64([2])]);
    expect((y!.data as BigInt64Array)[0]).toBe(2n ** 60n + 3n);
    const [q] = evalOp('Div', [big, i64([3])]);
    expect((q!.data as BigInt64Array)[0]).toBe((2n ** 60n + 1n) / 3n);
  });

  it('Mod with fmod 0 (sign of divisor) and 1 (sign of dividend)', async () => {
    const a = tensor('i32', [6], [7, -7, 7, -7, 6, 0]);
    const b = tensor('i32', [6], [3, 3, -3, -3, 3, 5]);
    const [m] = await checkOp('Mod', [a, b]);
    expect(Array.from(toNumbers(m!))).toEqual([1, 2, -2, -1, 0, 0]);
    await checkOp('Mod', [a, b], { fmod: 1 });
    await checkOp('Mod', [tensor('i64', [3], [-9, 9, 10]), i64([4])]);
    await checkOp('Mod', [rand([3, 4]), rand([4], { lo: 0.5, hi: 2 })], { fmod: 1 });
    expectLoomError(() => inferOp('Mod', [typeArg('f32', [2]), typeArg('f32', [2])]), 'MODEL_INVALID', /fmod must be 1/);
  });

  it('variadic Max, Min, Sum, Mean over 1 and 3 inputs', async () => {
    for (const op of ['Max', 'Min', 'Sum', 'Mean'] as const) {
      await checkOp(op, [rand([2, 3])]);
      await checkOp(op, [rand([2, 1, 4]), rand([3, 1]), rand([4])]);
    }
  });

  it('comparisons output bool', async () => {
    const a = rand([3, 4], { lo: -3, hi: 3, int: true });
    const b = rand([4], { lo: -3, hi: 3, int: true });
    for (const op of ['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual'] as const) {
      await checkOp(op, [a, b]);
      await checkOp(op, [rand([3, 4], { dtype: 'i64', lo: -3, hi: 3, int: true }), rand([3, 1], { dtype: 'i64', lo: -3, hi: 3, int: true })]);
    }
    await checkOp('Equal', [tensor('bool', [4], [1, 0, 1, 0]), tensor('bool', [4], [1, 1, 0, 0])]);
  });

  it('And, Or, Xor', async () => {
    const a = tensor('bool', [2, 4], [1, 0, 1, 0, 1, 1, 0, 0]);
    const b = tensor('bool', [4], [1, 1, 0, 0]);
    for (const op of ['And', 'Or', 'Xor'] as const) await checkOp(op, [a, b]);
  });

  it('Where broadcasts three ways for any dtype', async () => {
    const c = tensor('bool', [3, 1], [1, 0, 1]);
    await checkOp('Where', [c, rand([1, 4]), rand([2, 3, 4])]);
    await checkOp('Where', [tensor('bool', [4], [1, 0, 0, 1]), rand([3, 1], { dtype: 'i64', int: true }), i64([7])]);
    await checkOp('Where', [c, rand([3, 2], { dtype: 'f16' }), rand([2], { dtype: 'f16' })]);
  });

  it('f16 arithmetic', async () => {
    await checkOp('Add', [rand([4, 5], { dtype: 'f16' }), rand([5], { dtype: 'f16' })]);
    await checkOp('Mul', [rand([4, 5], { dtype: 'f16' }), rand([4, 1], { dtype: 'f16' })]);
  });

  it('1M-element Add is fast (whole-array loops)', () => {
    const a = rand([1000, 1000]);
    const b = rand([1000]);
    evalOp('Add', [a, b]);
    const t0 = performance.now();
    const [y] = evalOp('Add', [a, b]);
    const ms = performance.now() - t0;
    expect(y!.shape).toEqual([1000, 1000]);
    expect((y!.data as Float32Array)[1234]).toBeCloseTo((a.data as Float32Array)[1234]! + (b.data as Float32Array)[234]!, 5);
    // Generous bound: this guards against per-element allocation, not machine speed.
    expect(ms).toBeLessThan(250);
  });
});

describe('Cast, CastLike, Identity, Dropout', () => {
  const ONNX = { f32: 1, u8: 2, i8: 3, i32: 6, i64: 7, bool: 9, f16: 10, f64: 11 } as const;
  it('Cast between float, integer and bool types', async () => {
    const x = tensor('f32', [8], [1.7, -1.7, 0, 3.5, -0.2, 100.9, -100.9, 2]);
    for (const to of ['i32', 'i64', 'i8', 'bool', 'f16', 'f64'] as const) await checkOp('Cast', [x], { to: ONNX[to] });
    const n = tensor('i64', [5], [-3, 0, 7, 300, -300]);
    for (const to of ['f32', 'i32', 'u8', 'i8', 'bool', 'f64'] as const) await checkOp('Cast', [n], { to: ONNX[to] });
    await checkOp('Cast', [tensor('bool', [3], [1, 0, 1])], { to: ONNX.f32 });
    await checkOp('Cast', [rand([5], { dtype: 'f16' })], { to: ONNX.f32 });
    await checkOp('Cast', [rand([5], { dtype: 'f64' })], { to: ONNX.f32 });
  });

  it('Cast rejects unsupported element types', () => {
    expectLoomError(() => evalOp('Cast', [rand([2])], { to: 8 }), 'UNSUPPORTED_FEATURE', /STRING/);
  });

  it('CastLike takes the target dtype from its second input', async () => {
    await checkOp('CastLike', [rand([3, 2]), i64([0])], {}, { opset: 15 });
  });

  it('Identity and Dropout (inference) pass data through', async () => {
    const x = rand([2, 3]);
    await checkOp('Identity', [x]);
    const [y, mask] = await checkOp('Dropout', [x], {}, { nOut: 2 });
    expect(y!.data).toEqual(x.data);
    expect(Array.from(mask!.data as Uint8Array)).toEqual([1, 1, 1, 1, 1, 1]);
    await checkOp('Dropout', [x, tensor('f32', [], [0.3])]);
    expectLoomError(
      () => inferOp('Dropout', [typeArg('f32', [2]), null, { type: { dtype: 'bool', shape: [] }, value: tensor('bool', [], [1]) }]),
      'UNSUPPORTED_FEATURE',
      /training_mode/,
    );
  });
});

describe('infer: symbolic shapes and dims propagation', () => {
  it('broadcasts symbolic dims', () => {
    const [r] = inferOp('Add', [typeArg('f32', ['N', 1, 4]), typeArg('f32', [3, 1])]);
    expect(r!.type).toEqual({ dtype: 'f32', shape: ['N', 3, 4] });
    const [w] = inferOp('Where', [typeArg('bool', ['N', 1]), typeArg('f32', [1, 5]), typeArg('f32', [])]);
    expect(w!.type.shape).toEqual(['N', 5]);
    const [c] = inferOp('Less', [typeArg('i64', ['N']), typeArg('i64', [1])]);
    expect(c!.type).toEqual({ dtype: 'bool', shape: ['N'] });
  });

  it('fails on a dtype mismatch naming the inputs', () => {
    expectLoomError(() => inferOp('Add', [typeArg('f32', [2]), typeArg('i64', [2])]), 'SHAPE', /node 'n' \(Add\): input 1 has dtype i64 but input 0 has f32/);
    expectLoomError(() => evalOp('Mul', [rand([2]), i64([1, 2])]), 'SHAPE', /dtype i64 but input 0 has f32/);
    expectLoomError(() => inferOp('Where', [typeArg('f32', [2]), typeArg('f32', [2]), typeArg('f32', [2])]), 'SHAPE', /condition.*expected bool/);
  });

  it('fails when shapes cannot broadcast', () => {
    expectLoomError(
      () => inferOp('Add', [typeArg('f32', [2, 3]), typeArg('f32', [4])]),
      'SHAPE',
      /node 'n' \(Add\): shapes \[2,3\] and \[4\] cannot be broadcast/,
    );
    expectLoomError(() => evalOp('Sub', [rand([2, 3]), rand([2])]), 'SHAPE', /cannot be broadcast/);
  });

  it('propagates dims through arithmetic, keeping symbols only where exact', () => {
    const shape = typeArg('i64', [3], ['N', 3, 4]);
    const dims = (op: OpName, b: readonly (number | string)[], dtype: 'i64' | 'f32' = 'i64') =>
      inferOp(op, [dtype === 'i64' ? shape : typeArg(dtype, [3], ['N', 3, 4]), typeArg(dtype, [b.length], b)])[0]!.dims;
    expect(dims('Mul', [1])).toEqual(['N', 3, 4]);
    expect(dims('Mul', [1, 2, 3])).toEqual(['N', 6, 12]);
    expect(dims('Mul', [2])).toEqual(['N*2', 6, 8]); // a scaled batch symbol (a flattened [N,2])
    expect(dims('Mul', [-1])).toBeUndefined(); // a negative multiple is no size
    expect(dims('Add', [0, 1, 1])).toEqual(['N', 4, 5]);
    expect(dims('Sub', [0, 1, 1])).toEqual(['N', 2, 3]);
    expect(dims('Div', [1, 2, 3])).toEqual(['N', 1, 1]);
    expect(dims('Div', [1, 2, 3], 'f32')).toEqual(['N', 1.5, 4 / 3]);
    expect(dims('Max', [1, 5, 2])).toBeUndefined();
    expect(inferOp('Max', [typeArg('i64', [2], [3, 9]), typeArg('i64', [2], [5, 1])])[0]!.dims).toEqual([5, 9]);
    expect(inferOp('Mul', [typeArg('i64', [2], [3, 9]), typeArg('i64', [2])])[0]!.dims).toBeUndefined();
  });

  it('propagates dims through Equal, Where, Cast, Identity', () => {
    // a symbol stands for a positive size: never -1 (TorchScript's Where(Equal(shape, -1), 1, shape))
    const eq = inferOp('Equal', [typeArg('i64', [3], [2, -1, 'N']), typeArg('i64', [1], [-1])])[0]!;
    expect(eq.dims).toEqual([0, 1, 0]);
    expect(inferOp('Equal', [typeArg('i64', [2], ['N', 3]), typeArg('i64', [1], [1])])[0]!.dims).toBeUndefined();
    expect(inferOp('Equal', [typeArg('i64', [3], [2, -1, 'N']), typeArg('i64', [3], [2, 0, 'N'])])[0]!.dims).toEqual([1, 0, 1]);
    const w = inferOp('Where', [typeArg('bool', [3], [1, 0, 1]), typeArg('i64', [3], ['N', 3, 4]), typeArg('i64', [1], [-1])])[0]!;
    expect(w.dims).toEqual(['N', -1, 4]);
    const f = inferOp('Cast', [typeArg('i64', [2], ['N', 7])], { to: 1 })[0]!;
    expect(f).toEqual({ type: { dtype: 'f32', shape: [2] }, dims: ['N', 7] });
    expect(inferOp('Cast', [typeArg('f32', [2], [2.5, -1.5])], { to: 7 })[0]!.dims).toEqual([2, -1]);
    expect(inferOp('Identity', [typeArg('i64', [2], ['N', 7])])[0]!.dims).toEqual(['N', 7]);
    expect(inferOp('Floor', [typeArg('f32', [2], [2.5, -1.5])])[0]!.dims).toEqual([2, -2]);
  });
});

describe('evaluate-only details', () => {
  it('Where copies raw i64 bits exactly', () => {
    const x = makeTensor('i64', [1], new BigInt64Array([2n ** 62n + 5n]));
    const [y] = evalOp('Where', [tensor('bool', [2], [1, 0]), x, i64([3])]);
    expect(Array.from(y!.data as BigInt64Array)).toEqual([2n ** 62n + 5n, 3n]);
  });
});
