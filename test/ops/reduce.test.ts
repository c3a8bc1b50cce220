import { describe, expect, it } from 'vitest';
import { toNumbers } from '../../ir/tensor.js';
import { expectLoomError } from '../support/errors.js';
import { evalOp, inferOp, typeArg } from '../support/one-node.js';
import { i64, tensor } from '../support/tensors.js';
import { checkOp, rand } from './helpers-ew.js';

const REDUCE = [
  'ReduceMean',
  'ReduceSum',
  'ReduceMax',
  'ReduceMin',
  'ReduceProd',
  'ReduceL1',
  'ReduceL2',
  'ReduceSumSquare',
  'ReduceLogSumExp',
  'ReduceLogSum',
] as const;

describe('Reduce* match onnxruntime (opset 18, axes as input)', () => {
  for (const op of REDUCE) {
    it(op, async () => {
      const positive = op === 'ReduceLogSum' || op === 'ReduceProd';
      const x = rand([3, 4, 5], positive ? { lo: 0.5, hi: 1.5 } : {});
      const o = { opset: 18 };
      await checkOp(op, [x, i64([1])], {}, o);
      await checkOp(op, [x, i64([0, 2])], { keepdims: 0 }, o);
      await checkOp(op, [x, i64([-1])], { keepdims: 0 }, o);
      await checkOp(op, [x], {}, o);
      await checkOp(op, [x], { keepdims: 0 }, o);
      await checkOp(op, [x, i64([])], { noop_with_empty_axes: 1 }, o);
    });
  }

  it('integer reductions', async () => {
    const x = rand([4, 6], { dtype: 'i64', lo: -20, hi: 20, int: true });
    for (const op of ['ReduceSum', 'ReduceMax', 'ReduceMin'] as const) await checkOp(op, [x, i64([1])], {}, { opset: 18 });
    await checkOp('ReduceSum', [rand([4, 6], { dtype: 'i32', lo: -20, hi: 20, int: true }), i64([0])], { keepdims: 0 }, { opset: 18 });
  });

  it('legacy axes attribute is honoured when no axes input is given', () => {
    const x = rand([2, 3]);
    const [a] = evalOp('ReduceMax', [x, i64([1])]);
    const [b] = evalOp('ReduceMax', [x], { axes: [1] });
    expect(b!.shape).toEqual([2, 1]);
    expect(Array.from(b!.data as Float32Array)).toEqual(Array.from(a!.data as Float32Array));
    expect(Array.from(evalOp('ReduceMax', [x])[0]!.data as Float32Array)).toEqual([Math.max(...(x.data as Float32Array))]);
  });
});

describe('ArgMax / ArgMin', () => {
  it('match onnxruntime incl. ties and select_last_index', async () => {
    const x = rand([3, 4, 5], { lo: -2, hi: 2, int: true });
    for (const op of ['ArgMax', 'ArgMin'] as const) {
      await checkOp(op, [x]);
      await checkOp(op, [x], { axis: 1, keepdims: 0 });
      await checkOp(op, [x], { axis: -1, select_last_index: 1 });
      await checkOp(op, [rand([7], { dtype: 'i64', lo: 0, hi: 3, int: true })], { keepdims: 0, select_last_index: 1 });
    }
  });
});

describe('Softmax / LogSoftmax', () => {
  for (const op of ['Softmax', 'LogSoftmax'] as const) {
    it(`${op} opset 13+ along one axis`, async () => {
      const x = rand([2, 3, 4], { lo: -10, hi: 10 });
      await checkOp(op, [x], {}, { opset: 17 });
      await checkOp(op, [x], { axis: 1 }, { opset: 17 });
      await checkOp(op, [x], { axis: 0 }, { opset: 13 });
    });
    it(`${op} opset < 13 coerces to 2-D`, async () => {
      const x = rand([2, 3, 4], { lo: -10, hi: 10 });
      await checkOp(op, [x], {}, { opset: 11 });
      await checkOp(op, [x], { axis: 2 }, { opset: 11 });
      await checkOp(op, [x], { axis: 0 }, { opset: 11 });
      expect(inferOp(op, [typeArg('f32', ['N', 3, 4])], {}, 1, 11)[0]!.type.shape).toEqual(['N', 3, 4]);
    });
  }
});

describe('normalizations match onnxruntime', () => {
  it('LayerNormalization with Mean/InvStdDev outputs', async () => {
    const x = rand([2, 3, 8]);
    await checkOp('LayerNormalization', [x, rand([8]), rand([8])], {}, { nOut: 3 });
    await checkOp('LayerNormalization', [x, rand([8])], { epsilon: 1e-3 });
    await checkOp('LayerNormalization', [x, rand([3, 8]), rand([3, 8])], { axis: 1 }, { nOut: 3 });
    await checkOp('LayerNormalization', [rand([2, 5], { dtype: 'f16' }), rand([5], { dtype: 'f16' })], {}, { nOut: 2 });
  });

  it('BatchNormalization (inference)', async () => {
    const pos = { lo: 0.1, hi: 2 };
    await checkOp('BatchNormalization', [rand([2, 3, 4, 4]), rand([3]), rand([3]), rand([3]), rand([3], pos)]);
    await checkOp('BatchNormalization', [rand([5, 3]), rand([3]), rand([3]), rand([3]), rand([3], pos)], { epsilon: 1e-3 });
    await checkOp('BatchNormalization', [rand([2, 3, 6]), rand([3]), rand([3]), rand([3]), rand([3], pos)], {}, { opset: 9 });
    expectLoomError(
      () => evalOp('BatchNormalization', [rand([1, 3]), rand([3]), rand([3]), rand([3]), rand([3])], { training_mode: 1 }),
      'UNSUPPORTED_FEATURE',
      /training_mode/,
    );
    expectLoomError(
      () => inferOp('BatchNormalization', [typeArg('f32', ['N', 3, 2]), typeArg('f32', [4]), typeArg('f32', [3]), typeArg('f32', [3]), typeArg('f32', [3])]),
      'SHAPE',
      /input 1 \(scale\) has shape \[4\]; expected \[3\]/,
    );
  });

  it('InstanceNormalization', async () => {
    await checkOp('InstanceNormalization', [rand([2, 3, 5, 4]), rand([3]), rand([3])]);
    await checkOp('InstanceNormalization', [rand([2, 4, 7]), rand([4]), rand([4])], { epsilon: 1e-2 });
  });

  it('GroupNormalization opset 18 (per-group scale) and 21 (per-channel)', async () => {
    const x = rand([2, 6, 3, 3]);
    await checkOp('GroupNormalization', [x, rand([3]), rand([3])], { num_groups: 3 }, { opset: 18 });
    await checkOp('GroupNormalization', [x, rand([6]), rand([6])], { num_groups: 2 }, { opset: 21 });
    await checkOp('GroupNormalization', [x, rand([6]), rand([6])], { num_groups: 6, epsilon: 1e-3 }, { opset: 21 });
    expectLoomError(
      () => inferOp('GroupNormalization', [typeArg('f32', ['N', 6, 3]), typeArg('f32', [6]), typeArg('f32', [6])], { num_groups: 4 }, 1, 21),
      'SHAPE',
      /num_groups 4/,
    );
  });

  it('LpNormalization p=1 and p=2, zero vectors stay zero', async () => {
    await checkOp('LpNormalization', [rand([3, 4, 5])]);
    await checkOp('LpNormalization', [rand([3, 4, 5])], { axis: 1, p: 1 });
    const [y] = await checkOp('LpNormalization', [tensor('f32', [2, 2], [0, 0, 3, 4])]);
    expect(Array.from(toNumbers(y!))).toEqual([0, 0, 0.6000000238418579, 0.800000011920929]);
    expectLoomError(() => evalOp('LpNormalization', [rand([2])], { p: 3 }), 'UNSUPPORTED_FEATURE', /attribute p: 3/);
  });
});

describe('infer', () => {
  it('reduces symbolic shapes', () => {
    expect(inferOp('ReduceMean', [typeArg('f32', ['N', 4, 5]), typeArg('i64', [1], [-1])])[0]!.type.shape).toEqual(['N', 4, 1]);
    expect(inferOp('ReduceSum', [typeArg('f32', ['N', 4, 5]), typeArg('i64', [2], [1, 2])], { keepdims: 0 })[0]!.type.shape).toEqual(['N']);
    expect(inferOp('ReduceMax', [typeArg('f32', ['N', 4])], { keepdims: 0 })[0]!.type.shape).toEqual([]);
    expect(inferOp('ArgMax', [typeArg('f32', ['N', 4])], { axis: 1, keepdims: 0 })[0]!.type).toEqual({ dtype: 'i64', shape: ['N'] });
    const ln = inferOp('LayerNormalization', [typeArg('f16', ['N', 7, 8]), typeArg('f16', [8])], { axis: -1 }, 3);
    expect(ln.map((r) => r.type)).toEqual([
      { dtype: 'f16', shape: ['N', 7, 8] },
      { dtype: 'f32', shape: ['N', 7, 1] },
      { dtype: 'f32', shape: ['N', 7, 1] },
    ]);
  });

  it('folds numeric dims of 1-D reductions', () => {
    expect(inferOp('ReduceProd', [typeArg('i64', [3], [2, 3, 4])], { keepdims: 0 })[0]!.dims).toEqual([24]);
    expect(inferOp('ReduceProd', [typeArg('i64', [2], ['N', 3])], { keepdims: 0 })[0]!.dims).toBeUndefined();
    expect(inferOp('ReduceSum', [typeArg('i64', [2], [2, 3]), typeArg('i64', [0], [])], { noop_with_empty_axes: 1 })[0]!.dims).toBeUndefined();
  });

  it('rejects run-time axes, bad axes and wrong dtypes', () => {
    expectLoomError(() => inferOp('ReduceSum', [typeArg('f32', [2, 3]), typeArg('i64', [1])]), 'UNSUPPORTED_FEATURE', /input 1 \(axes\) must be a constant/);
    expectLoomError(() => inferOp('ReduceSum', [typeArg('f32', [2, 3]), typeArg('i64', [1], [2])]), 'SHAPE', /axis 2 is out of range for rank 2/);
    expectLoomError(() => inferOp('ReduceSum', [typeArg('bool', [2, 3])]), 'SHAPE', /dtype bool/);
    expectLoomError(() => inferOp('LayerNormalization', [typeArg('f32', [2, 3]), typeArg('f16', [3])]), 'SHAPE', /Scale.*f16/);
    expectLoomError(() => inferOp('LayerNormalization', [typeArg('f32', [2, 3]), typeArg('f32', [4])]), 'SHAPE', /cannot be broadcast/);
  });
});
