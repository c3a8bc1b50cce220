import { describe, expect, it } from 'vitest';
import { isLoomError } from '../../ir/errors.js';
import { applyActivation } from '../../ir/ops/activation.js';
import { toNumbers } from '../../ir/tensor.js';
import { evalIr, evalOp, inferOp } from '../support/one-node.js';
import { checkOp, rand } from './helpers-la.js';

describe('Gemm', () => {
  for (const transA of [0, 1]) {
    for (const transB of [0, 1]) {
      it(`transA=${transA} transB=${transB} with C [N]`, async () => {
        const [m, k, n] = [5, 7, 6];
        const a = rand(transA ? [k, m] : [m, k]);
        const b = rand(transB ? [n, k] : [k, n]);
        await checkOp('Gemm', [a, b, rand([n])], { transA, transB, alpha: 0.5, beta: 2.5 });
      });
    }
  }
  for (const cShape of [[], [1], [9, 1], [1, 10], [9, 10]]) {
    it(`C broadcast from [${cShape.join(',')}]`, async () => {
      await checkOp('Gemm', [rand([9, 33]), rand([10, 33]), rand(cShape)], { transB: 1 });
    });
  }
  it('without C, larger (784x512 MLP layer)', async () => {
    await checkOp('Gemm', [rand([8, 784]), rand([512, 784], -0.1, 0.1)], { transB: 1 });
  });
  it('IR activation epilogue applies after alpha and bias', () => {
    const [a, b, c] = [rand([3, 4]), rand([4, 5]), rand([5])];
    const plain = evalIr('Gemm', [a, b, c], { alpha: 2, beta: 1, transA: false, transB: false, activation: null })[0]!;
    const fused = evalIr('Gemm', [a, b, c], { alpha: 2, beta: 1, transA: false, transB: false, activation: { kind: 'leaky_relu', alpha: 0.1 } })[0]!;
    const want = Array.from(toNumbers(plain), (v) => applyActivation({ kind: 'leaky_relu', alpha: 0.1 }, v));
    expect(Array.from(toNumbers(fused))).toEqual(want.map(Math.fround));
    expect(want.some((v) => v < 0)).toBe(true);
  });
  it('infers symbolic M and rejects a K mismatch', () => {
    const r = inferOp(
      'Gemm',
      [{ type: { dtype: 'f32', shape: ['N', 64] } }, { type: { dtype: 'f32', shape: [10, 64] } }, { type: { dtype: 'f32', shape: [10] } }],
      { transB: 1 },
    );
    expect(r[0]!.type.shape).toEqual(['N', 10]);
    try {
      inferOp('Gemm', [{ type: { dtype: 'f32', shape: [2, 64] } }, { type: { dtype: 'f32', shape: [10, 63] } }], { transB: 1 });
      expect.unreachable();
    } catch (e) {
      expect(isLoomError(e) && e.code).toBe('SHAPE');
    }
  });
});

describe('MatMul', () => {
  const cases: Array<[number[], number[]]> = [
    [[7], [7]],
    [[7], [7, 5]],
    [[3, 7], [7]],
    [
      [6, 9],
      [9, 5],
    ],
    [
      [2, 6, 9],
      [9, 5],
    ],
    [
      [6, 9],
      [3, 9, 5],
    ],
    [
      [2, 1, 4, 9],
      [3, 9, 6],
    ],
    [
      [2, 3, 4, 9],
      [2, 3, 9, 6],
    ],
    [
      [1, 5, 8],
      [4, 1, 8, 3],
    ],
  ];
  for (const [a, b] of cases) {
    it(`[${a}] x [${b}]`, async () => {
      await checkOp('MatMul', [rand(a), rand(b)]);
    });
  }
  it('BERT-like [2,128,768] x [768,768]', async () => {
    await checkOp('MatMul', [rand([2, 128, 768]), rand([768, 768], -0.05, 0.05)]);
  });
  it('IR bias input and activation match a manual reference', () => {
    const [a, b, bias] = [rand([2, 3, 4]), rand([4, 5]), rand([5])];
    const plain = toNumbers(evalOp('MatMul', [a, b])[0]!);
    const act = { kind: 'gelu_erf' } as const;
    const fused = evalIr('MatMul', [a, b, bias], { activation: act })[0]!;
    expect(fused.shape).toEqual([2, 3, 5]);
    const bv = toNumbers(bias);
    const got = toNumbers(fused);
    for (let i = 0; i < plain.length; i++) expect(got[i]).toBeCloseTo(applyActivation(act, plain[i]! + bv[i % 5]!), 6);
    const bad = () => inferOp('MatMul', [{ type: a }, { type: b }, { type: { dtype: 'f32', shape: [4] } }]);
    expect(bad).toThrow(/bias/);
  });
  it('infers broadcast batch dims with symbols', () => {
    const r = inferOp('MatMul', [{ type: { dtype: 'f32', shape: ['N', 12, 128, 64] } }, { type: { dtype: 'f32', shape: ['N', 12, 64, 128] } }]);
    expect(r[0]!.type.shape).toEqual(['N', 12, 128, 128]);
    expect(inferOp('MatMul', [{ type: { dtype: 'f32', shape: ['N', 64] } }, { type: { dtype: 'f32', shape: [64] } }])[0]!.type.shape).toEqual(['N']);
  });
});

describe('Conv', () => {
  it('3x3 stride 2 with pads and bias', async () => {
    await checkOp('Conv', [rand([2, 3, 11, 13]), rand([8, 3, 3, 3]), rand([8])], { strides: [2, 2], pads: [1, 1, 1, 1] });
  });
  it('asymmetric pads, rectangular kernel, no bias', async () => {
    await checkOp('Conv', [rand([1, 4, 9, 10]), rand([5, 4, 2, 3])], { pads: [0, 1, 2, 1] });
  });
  it('depthwise (group = C) with dilation', async () => {
    await checkOp('Conv', [rand([1, 6, 12, 12]), rand([6, 1, 3, 3]), rand([6])], { group: 6, dilations: [2, 2], pads: [2, 2, 2, 2] });
  });
  it('grouped (group=2) 1x1', async () => {
    await checkOp('Conv', [rand([2, 8, 5, 5]), rand([6, 4, 1, 1]), rand([6])], { group: 2 });
  });
  for (const autoPad of ['SAME_UPPER', 'SAME_LOWER', 'VALID']) {
    it(`auto_pad ${autoPad} stride 2`, async () => {
      await checkOp('Conv', [rand([1, 3, 10, 9]), rand([4, 3, 4, 3])], { auto_pad: autoPad, strides: [2, 2] });
    });
  }
  it('1-D conv with stride, pads, dilation', async () => {
    await checkOp('Conv', [rand([2, 5, 20]), rand([7, 5, 3]), rand([7])], { strides: [2], pads: [1, 2], dilations: [2] });
  });
  it('3-D conv', async () => {
    await checkOp('Conv', [rand([1, 2, 5, 6, 7]), rand([3, 2, 3, 2, 3]), rand([3])], { pads: [1, 0, 1, 1, 1, 0], strides: [1, 2, 1] });
  });
  it('ResNet stem 7x7/2 on 224x224', async () => {
    await checkOp('Conv', [rand([1, 3, 224, 224]), rand([64, 3, 7, 7], -0.2, 0.2), rand([64])], { strides: [2, 2], pads: [3, 3, 3, 3], kernel_shape: [7, 7] });
  });
  it('IR relu epilogue', () => {
    const x = rand([1, 3, 6, 6]);
    const w = rand([4, 3, 3, 3]);
    const base = { autoPad: 'NOTSET', kernelShape: null, strides: null, pads: [1, 1, 1, 1], dilations: null, group: 1 };
    const plain = toNumbers(evalIr('Conv', [x, w], { ...base, activation: null })[0]!);
    const relu = toNumbers(evalIr('Conv', [x, w], { ...base, activation: { kind: 'relu' } })[0]!);
    expect(Array.from(relu)).toEqual(Array.from(plain, (v) => Math.max(0, v)));
    expect(plain.some((v) => v < 0)).toBe(true);
  });
  it('infers with a symbolic batch dim and rejects channel mismatch', () => {
    const r = inferOp('Conv', [{ type: { dtype: 'f32', shape: ['N', 3, 224, 224] } }, { type: { dtype: 'f32', shape: [64, 3, 7, 7] } }], {
      strides: [2, 2],
      pads: [3, 3, 3, 3],
    });
    expect(r[0]!.type.shape).toEqual(['N', 64, 112, 112]);
    expect(() => inferOp('Conv', [{ type: { dtype: 'f32', shape: ['N', 4, 8, 8] } }, { type: { dtype: 'f32', shape: [64, 3, 3, 3] } }])).toThrow(/channels/);
  });
  it('timing: 3x3 conv 64->64 at 56x56 (printed, not asserted)', () => {
    const x = rand([1, 64, 56, 56]);
    const w = rand([64, 64, 3, 3], -0.1, 0.1);
    evalOp('Conv', [x, w], { pads: [1, 1, 1, 1] });
    const t0 = performance.now();
    const reps = 3;
    for (let i = 0; i < reps; i++) evalOp('Conv', [x, w], { pads: [1, 1, 1, 1] });
    const ms = (performance.now() - t0) / reps;
    const gflop = (2 * 64 * 64 * 9 * 56 * 56) / 1e9;
    console.log(`Conv 64->64 3x3 @56x56: ${ms.toFixed(1)} ms, ${(gflop / (ms / 1e3)).toFixed(2)} GFLOP/s`);
  });
});

describe('ConvTranspose', () => {
  it('stride 2 kernel 2 (PaddleOCR det upsampling)', async () => {
    await checkOp('ConvTranspose', [rand([1, 8, 5, 6]), rand([8, 4, 2, 2]), rand([4])], { strides: [2, 2] });
  });
  it('stride 2 kernel 3 pads 1 output_padding 1', async () => {
    await checkOp('ConvTranspose', [rand([2, 3, 4, 5]), rand([3, 5, 3, 3]), rand([5])], { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] });
  });
  it('group 2 with dilation', async () => {
    await checkOp('ConvTranspose', [rand([1, 4, 5, 5]), rand([4, 3, 3, 3])], { group: 2, dilations: [2, 1], strides: [1, 2] });
  });
  it('output_shape with odd total padding', async () => {
    await checkOp('ConvTranspose', [rand([1, 2, 4, 4]), rand([2, 3, 3, 3])], { strides: [2, 2], output_shape: [8, 8] });
  });
  it('auto_pad SAME_UPPER / SAME_LOWER', async () => {
    await checkOp('ConvTranspose', [rand([1, 2, 4, 4]), rand([2, 3, 3, 3])], { strides: [2, 2], auto_pad: 'SAME_UPPER' });
    await checkOp('ConvTranspose', [rand([1, 2, 4, 4]), rand([2, 3, 3, 3])], { strides: [2, 2], auto_pad: 'SAME_LOWER' });
  });
  it('1-D', async () => {
    await checkOp('ConvTranspose', [rand([1, 3, 7]), rand([3, 2, 4]), rand([2])], { strides: [3], pads: [1, 2] });
  });
});

it('float64 MatMul and Gemm', async () => {
  const [y] = await checkOp('MatMul', [rand([3, 4], -1, 1, 'f64'), rand([2, 4, 2], -1, 1, 'f64')]);
  expect(y!.dtype).toBe('f64');
  await checkOp('Gemm', [rand([3, 4], -1, 1, 'f64'), rand([5, 4], -1, 1, 'f64'), rand([5], -1, 1, 'f64')], { transB: 1 });
});
