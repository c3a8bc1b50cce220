import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../ir/builder.js';
import { makeTensor, toNumbers } from '../../ir/tensor.js';
import { expectLoomError } from '../support/errors.js';
import { evalOp, inferOp } from '../support/one-node.js';
import { i64, i64s } from '../support/tensors.js';
import { checkOp, f32, ints } from './helpers-layout.js';

const I64_MAX = makeTensor('i64', [1], BigInt64Array.from([9223372036854775807n]));
const I64_MIN = makeTensor('i64', [1], BigInt64Array.from([-9223372036854775808n]));

describe('layout ops vs onnxruntime', () => {
  it('Shape with start/end, Size', async () => {
    const x = f32([2, 3, 4, 5]);
    await checkOp('Shape', [x]);
    await checkOp('Shape', [x], { start: 1, end: -1 });
    await checkOp('Shape', [x], { start: -2 });
    await checkOp('Shape', [x], { start: 3, end: 1 });
    await checkOp('Size', [x]);
  });

  it('Reshape: 0 copies, -1 infers, allowzero', async () => {
    const x = f32([2, 3, 4]);
    await checkOp('Reshape', [x, i64([0, -1])]);
    await checkOp('Reshape', [x, i64([-1, 2, 0])]);
    await checkOp('Reshape', [x, i64([24])]);
    await checkOp('Reshape', [f32([0, 3]), i64([3, 0])], { allowzero: 1 });
    expectLoomError(() => evalOp('Reshape', [f32([2, 3]), i64([4])]), 'SHAPE', /cannot reshape \[2,3\] \(6 elements\) to \[4\]/);
  });

  it('Flatten, Unsqueeze, Squeeze, Transpose', async () => {
    const x = f32([2, 3, 4]);
    for (const axis of [0, 1, 2, 3, -1]) await checkOp('Flatten', [x], { axis });
    await checkOp('Unsqueeze', [x, i64([0, -1])]);
    await checkOp('Unsqueeze', [x, i64([2, 1])]);
    await checkOp('Unsqueeze', [i64s(5), i64([0])]);
    const y = f32([1, 3, 1, 2]);
    await checkOp('Squeeze', [y]);
    await checkOp('Squeeze', [y, i64([-2])]);
    expectLoomError(() => evalOp('Squeeze', [y, i64([1])]), 'SHAPE', /axis 1.*size is 3/);
    await checkOp('Transpose', [x]);
    await checkOp('Transpose', [x], { perm: [1, 2, 0] });
    await checkOp('Transpose', [ints('i64', [2, 3, 2])], { perm: [2, 0, 1] });
  });

  it('Concat and Split', async () => {
    await checkOp('Concat', [f32([2, 3]), f32([2, 1]), f32([2, 2])], { axis: -1 });
    await checkOp('Concat', [ints('i64', [2, 3]), ints('i64', [1, 3])], { axis: 0 });
    await checkOp('Concat', [f32([2, 0]), f32([2, 2])], { axis: 1 });
    const x = f32([4, 6]);
    await checkOp('Split', [x, i64([1, 5])], { axis: 1 }, { nOut: 2 });
    await checkOp('Split', [x], { axis: -1 }, { nOut: 3 });
    await checkOp('Split', [f32([7, 2])], { num_outputs: 3 }, { nOut: 3, opset: 18 });
  });

  it('Slice: negative axes/steps, clamping, INT64 sentinels', async () => {
    const x = f32([5, 6, 3]);
    await checkOp('Slice', [x, i64([1, 0]), i64([4, 5]), i64([0, 1])]);
    await checkOp('Slice', [x, i64([-1]), i64([-100]), i64([-2]), i64([-2])]);
    await checkOp('Slice', [x, i64([-100, 2]), i64([100, -1]), i64([0, 2])]);
    await checkOp('Slice', [x, i64([1]), I64_MAX, i64([1])]);
    await checkOp('Slice', [x, I64_MAX, I64_MIN, i64([0]), i64([-1])]);
    await checkOp('Slice', [x, i64([4]), i64([1]), i64([1]), i64([3])]); // empty
    await checkOp('Slice', [x, i64([0, 1, 0]), i64([5, 6, 3]), i64([0, 1, 2]), i64([3, 2, -1])]);
    await checkOp('Slice', [ints('i64', [10]), i64([-3]), i64([20])]);
    await checkOp('Slice', [ints('i32', [4, 4]), i64([3]), i64([0]), i64([1]), i64([-2])]);
  });

  it('Gather and GatherElements with negative indices', async () => {
    const x = f32([3, 4, 2]);
    await checkOp('Gather', [x, i64([2, -1, 0])]);
    await checkOp('Gather', [x, i64([-1, 1, 0, -4], [2, 2])], { axis: 1 });
    await checkOp('Gather', [x, i64s(-1)], { axis: -1 });
    await checkOp('Gather', [ints('i64', [6]), ints('i32', [2], [5, -6])]);
    expectLoomError(() => evalOp('Gather', [x, i64([3])]), 'EVAL', /out of range/);
    await checkOp('GatherElements', [f32([3, 3]), i64([1, 2, 0, -1, 0, 2], [2, 3])]);
    await checkOp('GatherElements', [f32([2, 3, 2]), i64([1, 0, -1, 0, 2, 2, 1, 1], [2, 2, 2])], { axis: -2 });
  });

  it('Expand, Tile, ConstantOfShape, Range', async () => {
    await checkOp('Expand', [f32([3, 1]), i64([2, 1, 4])]);
    await checkOp('Expand', [f32([1, 4]), i64([3, 1])]);
    await checkOp('Expand', [ints('i64', [2, 1, 3]), i64([1, 2, 2, 1])]);
    await checkOp('Tile', [f32([2, 3]), i64([2, 3])]);
    await checkOp('Tile', [ints('i32', [3]), i64([0])]);
    await checkOp('ConstantOfShape', [i64([2, 3])]);
    await checkOp('ConstantOfShape', [i64([4])], { value: i64([7], [1]) });
    await checkOp('ConstantOfShape', [i64([2, 2])], { value: f32([1], [1.5]) });
    await checkOp('Range', [i64s(2), i64s(11), i64s(3)]);
    await checkOp('Range', [i64s(10), i64s(1), i64s(-4)]);
    await checkOp('Range', [f32([], [0.1]), f32([], [2.3]), f32([], [0.3])]);
    await checkOp('Range', [f32([], [1]), f32([], [0]), f32([], [1])]);
  });

  it('Pad constant/reflect/edge, negative pads, axes', async () => {
    const x = f32([3, 4]);
    await checkOp('Pad', [x, i64([1, 2, 0, 3])]);
    await checkOp('Pad', [x, i64([1, 2, 0, 3]), f32([], [-2.5])]);
    await checkOp('Pad', [x, i64([-1, 1, 1, -2]), f32([], [9])]);
    await checkOp('Pad', [x, i64([2, 3, 2, 3])], { mode: 'reflect' });
    await checkOp('Pad', [x, i64([2, 5, 1, 6])], { mode: 'edge' });
    await checkOp('Pad', [f32([2, 3, 4]), i64([1, 2]), null, i64([-1])], { mode: 'reflect' }, { opset: 18 });
    await checkOp('Pad', [ints('i64', [2, 2]), i64([0, 1, 1, 0]), i64s(4)]);
  });

  it('Trilu, DepthToSpace, SpaceToDepth', async () => {
    const x = f32([2, 3, 4]);
    for (const upper of [0, 1]) {
      await checkOp('Trilu', [x], { upper });
      for (const k of [-1, 2, 5]) await checkOp('Trilu', [x, i64s(k)], { upper });
    }
    await checkOp('Trilu', [ints('i64', [4, 3]), i64s(-1)], { upper: 0 });
    const y = f32([1, 8, 2, 3]);
    await checkOp('DepthToSpace', [y], { blocksize: 2 });
    await checkOp('DepthToSpace', [y], { blocksize: 2, mode: 'CRD' });
    await checkOp('SpaceToDepth', [f32([2, 2, 4, 6])], { blocksize: 2 });
  });
});

describe('layout infer with a symbolic batch', () => {
  const X = { dtype: 'f32', shape: ['N', 3, 4, 5] } as const;

  it('Shape → Gather → Unsqueeze → Concat → Reshape gives [N, 60]', () => {
    const b = new GraphBuilder('g');
    const x = b.addInput('x', X);
    const [s] = b.addNode('Shape', 's', [x], { start: 0, end: null }, ['s']);
    expect(b.dimsOf(s!)).toEqual(['N', 3, 4, 5]);
    const [n] = b.addNode('Gather', 'g', [s!, b.addConstant('zero', i64s(0))], { axis: 0 }, ['n']);
    expect(b.value(n!).type.shape).toEqual([]);
    expect(b.dimsOf(n!)).toEqual(['N']);
    const [n1] = b.addNode('Unsqueeze', 'u', [n!, b.addConstant('ax', i64([0]))], {}, ['n1']);
    expect(b.dimsOf(n1!)).toEqual(['N']);
    const [target] = b.addNode('Concat', 'c', [n1!, b.addConstant('m1', i64([-1]))], { axis: 0 }, ['t']);
    expect(b.dimsOf(target!)).toEqual(['N', -1]);
    const [y] = b.addNode('Reshape', 'r', [x, target!], { allowzero: false }, ['y']);
    expect(b.value(y!).type.shape).toEqual(['N', 60]);

    // Shape → Slice → Concat → Reshape, and Expand/ConstantOfShape from Shape(x)
    const [head] = b.addNode('Slice', 'sl', [s!, b.addConstant('st', i64([0])), b.addConstant('en', i64([2]))], {}, ['head']);
    expect(b.dimsOf(head!)).toEqual(['N', 3]);
    const [t2] = b.addNode('Concat', 'c2', [head!, b.addConstant('m20', i64([-1]))], { axis: 0 }, ['t2']);
    const [y2] = b.addNode('Reshape', 'r2', [x, t2!], { allowzero: false }, ['y2']);
    expect(b.value(y2!).type.shape).toEqual(['N', 3, 20]);
    const [c] = b.addNode('ConstantOfShape', 'cos', [s!], { dtype: 'f32', value: 1 }, ['c']);
    expect(b.value(c!).type.shape).toEqual(['N', 3, 4, 5]);
    const [e] = b.addNode('Expand', 'ex', [b.addConstant('one', f32([1, 5])), s!], {}, ['e']);
    expect(b.value(e!).type.shape).toEqual(['N', 3, 4, 5]);
    const [last] = b.addNode('Gather', 'g2', [s!, b.addConstant('idx', i64([-1, 1]))], { axis: 0 }, ['last']);
    expect(b.dimsOf(last!)).toEqual([5, 3]);
  });

  it('Reshape/Flatten/Range/Slice keep the batch symbol', () => {
    const r = (target: (number | string)[]) =>
      inferOp('Reshape', [{ type: X }, { type: { dtype: 'i64', shape: [target.length] }, dims: target }])[0]!.type.shape;
    expect(r([0, -1])).toEqual(['N', 60]);
    expect(r(['N', -1])).toEqual(['N', 60]);
    expect(r([-1, 3, 20])).toEqual(['N', 3, 20]);
    expect(r([-1, 60])).toEqual(['N', 60]);
    expect(r([60, 'N'])).toEqual([60, 'N']);
    expect(r([-1, 20])).toEqual(['N*3', 20]); // the batch merged with a static dim: a scaled symbol
    expectLoomError(() => r(['N', 7, -1]), 'SHAPE', /cannot reshape/);
    expect(inferOp('Flatten', [{ type: X }], { axis: 1 })[0]!.type.shape).toEqual(['N', 60]);
    expect(inferOp('Flatten', [{ type: X }], { axis: -3 })[0]!.type.shape).toEqual(['N', 60]);
    expect(inferOp('Flatten', [{ type: X }], { axis: 2 })[0]!.type.shape).toEqual(['N*3', 20]);
    const scalar = (d: number | string) => ({ type: { dtype: 'i64' as const, shape: [] }, dims: [d] });
    expect(inferOp('Range', [scalar(0), scalar('N'), scalar(1)])[0]!.type.shape).toEqual(['N']);
    const rg = inferOp('Range', [scalar(0), scalar(4), scalar(1)])[0]!;
    expect(rg.dims).toEqual([0, 1, 2, 3]);
    const c = (t: ReturnType<typeof i64>) => ({ type: { dtype: 'i64' as const, shape: t.shape }, value: t });
    const ends = makeTensor('i64', [2], BigInt64Array.from([9223372036854775807n, 9223372036854775807n]));
    const sl = inferOp('Slice', [{ type: X }, c(i64([0, 1])), c(ends), c(i64([0, 1]))]);
    expect(sl[0]!.type.shape).toEqual(['N', 2, 4, 5]);
    expectLoomError(() => inferOp('Slice', [{ type: X }, c(i64([1])), c(I64_MAX)]), 'SHAPE', /symbolic dim 'N'/);
    const t = inferOp('Transpose', [{ type: X }], { perm: [1, 0, 2, 3] })[0]!;
    expect(t.type.shape).toEqual([3, 'N', 4, 5]);
    const tiled = inferOp('Tile', [{ type: X }, { type: { dtype: 'i64', shape: [4] }, value: i64([1, 2, 1, 1]) }])[0]!;
    expect(tiled.type.shape).toEqual(['N', 6, 4, 5]);
  });

  it('a data-dependent target shape is a clear SHAPE error', () => {
    const b = new GraphBuilder('g');
    const x = b.addInput('x', X);
    const shape = b.addInput('shape', { dtype: 'i64', shape: [2] });
    expectLoomError(() => b.addNode('Reshape', 'r', [x, shape], { allowzero: false }, ['y']), 'SHAPE', /node 'r' \(Reshape\).*data-dependent/);
    expectLoomError(() => b.addNode('Expand', 'e', [x, shape], {}, ['y']), 'SHAPE', /data-dependent/);
  });

  it('ConstantOfShape attr is plain data and evaluates', () => {
    const [t] = evalOp('ConstantOfShape', [i64([3])], { value: i64([-2], [1]) });
    expect(t!.dtype).toBe('i64');
    expect(Array.from(toNumbers(t!))).toEqual([-2, -2, -2]);
  });
});
