import { describe, expect, it } from 'vitest';
import { fromNumbers, toNumbers } from '../../ir/tensor.js';
import { expectLoomError } from '../support/errors.js';
import { attrsOf, evalOp, inferOp } from '../support/one-node.js';
import { i64 } from '../support/tensors.js';
import { checkOp, f32, ints } from './helpers-layout.js';

const sym = (dtype: 'f32' | 'i64' | 'bool', shape: readonly (number | string)[]) => ({ type: { dtype, shape } });

describe('GatherND vs onnxruntime', () => {
  it('batch_dims 0, tuples of length 1, 2 and full rank, negative indices', async () => {
    const x = f32([3, 4, 2]);
    await checkOp('GatherND', [x, i64([2, -1, 0], [3, 1])]);
    await checkOp('GatherND', [x, i64([0, 1, -1, -4, 2, 3, 1, 0], [2, 2, 2])]);
    await checkOp('GatherND', [x, i64([1, 2, -1, -3, 0, 0], [2, 3])]);
    await checkOp('GatherND', [x, i64([2, 3], [2])]); // a single tuple: output [2]
    await checkOp('GatherND', [ints('i64', [5, 3]), i64([-5, 4, 1], [3, 1])]);
    await checkOp('GatherND', [ints('i32', [2, 2]), i64([1, 1, 0, -1], [2, 2])]);
  });

  it('batch_dims 1 and 2', async () => {
    const x = f32([2, 3, 4]);
    await checkOp('GatherND', [x, i64([1, -1, 0, 2], [2, 2, 1])], { batch_dims: 1 });
    await checkOp('GatherND', [x, i64([0, 1, 2, 2, -1, -3], [2, 3, 1])], { batch_dims: 1 });
    await checkOp('GatherND', [x, i64([1, 3, -3, -1], [2, 2])], { batch_dims: 1 });
    await checkOp('GatherND', [x, i64([0, 3, 1, 2, 1, 0, -1, 2, 0, 0, 2, 1], [2, 3, 2])], { batch_dims: 1 });
    await checkOp('GatherND', [f32([2, 3, 4, 2]), i64([0, 1, 2, 3, -1, -2], [2, 3, 1])], { batch_dims: 2 });
  });

  it('the BERT dynamo form: bool [N,16] by i64 [N,1,1,16,2] pairs', async () => {
    const n = 3;
    const mask = fromNumbers(
      'bool',
      [n, 16],
      Array.from({ length: n * 16 }, (_, i) => ((i * 7) % 5 < 3 ? 1 : 0)),
    );
    const pairs: number[] = [];
    for (let b = 0; b < n; b++) for (let j = 0; j < 16; j++) pairs.push(b, j);
    const [out] = await checkOp('GatherND', [mask, i64(pairs, [n, 1, 1, 16, 2])]);
    expect(out!.shape).toEqual([n, 1, 1, 16]);
    expect(Array.from(out!.data as Uint8Array)).toEqual(Array.from(mask.data as Uint8Array));
    const [t] = inferOp('GatherND', [sym('bool', ['N', 16]), sym('i64', ['N', 1, 1, 16, 2])]);
    expect(t!.type).toEqual({ dtype: 'bool', shape: ['N', 1, 1, 16] });
  });

  it('infer with a symbolic batch dim', () => {
    expect(inferOp('GatherND', [sym('f32', ['N', 3, 4]), sym('i64', ['N', 5, 1])], { batch_dims: 1 })[0]!.type.shape).toEqual(['N', 5, 4]);
    expect(inferOp('GatherND', [sym('f32', ['N', 3, 4]), sym('i64', [7, 2])])[0]!.type.shape).toEqual([7, 4]);
    expect(inferOp('GatherND', [sym('f32', [5, 3, 4]), sym('i64', ['N', 3])])[0]!.type.shape).toEqual(['N']);
    expectLoomError(() => inferOp('GatherND', [sym('f32', ['N', 3]), sym('i64', ['M', 1])], { batch_dims: 1 }), 'SHAPE', /batch dim 0 differs/);
    expectLoomError(() => inferOp('GatherND', [sym('f32', [2, 3]), sym('i64', [2, 'K'])]), 'SHAPE', /symbolic 'K'/);
  });

  it('propagates dims from a known shape by constant indices', () => {
    const shape = { type: { dtype: 'i64' as const, shape: [3] }, dims: ['N', 8, 16] };
    const idx = i64([-1, 0], [2, 1]);
    const [r] = inferOp('GatherND', [shape, { type: { dtype: 'i64', shape: idx.shape }, value: idx }]);
    expect(r!.type.shape).toEqual([2]);
    expect(r!.dims).toEqual([16, 'N']);
  });

  it('rejects bad batch_dims, tuple lengths, index dtype and out-of-range indices', () => {
    const x = f32([2, 3]);
    expectLoomError(() => evalOp('GatherND', [x, i64([0, 1], [2, 1])], { batch_dims: 2 }), 'SHAPE', /batch_dims 2 must be in \[0, 1\]/);
    expectLoomError(() => evalOp('GatherND', [x, i64([0, 1, 0], [1, 3])]), 'SHAPE', /tuples of length 3.*\[1, 2\]/);
    expectLoomError(() => evalOp('GatherND', [x, i64([0, 3], [1, 2])]), 'EVAL', /value 3 is out of range for data axis 1 of size 3/);
    expectLoomError(() => evalOp('GatherND', [x, i64([-3], [1, 1])]), 'EVAL', /value -3 is out of range/);
    expectLoomError(() => evalOp('GatherND', [f32([2, 3, 4]), i64([0, 1, 0], [3, 1])], { batch_dims: 1 }), 'SHAPE', /batch dim 0 differs/);
    expectLoomError(() => inferOp('GatherND', [sym('f32', [2, 3]), { type: { dtype: 'i32', shape: [1, 1] } }]), 'SHAPE', /indices.*dtype i32/);
  });
});

describe('ScatterND vs onnxruntime', () => {
  it('element, row and full-slice updates with negative indices', async () => {
    const x = f32([4, 3]);
    await checkOp('ScatterND', [x, i64([1, -1, 0, 2, 3, 0], [3, 2]), f32([3], [100, 200, 300])]);
    await checkOp('ScatterND', [x, i64([-1, 1], [2, 1]), f32([2, 3], [1, 2, 3, 4, 5, 6])]);
    await checkOp('ScatterND', [f32([2, 3, 2]), i64([1, 0], [1, 2, 1]), f32([1, 2, 3, 2])]);
    await checkOp('ScatterND', [ints('i64', [5]), i64([4, -5], [2, 1]), ints('i64', [2], [42, -42])]);
  });

  it('infer keeps the data type, checks updates, rejects reductions', () => {
    expect(inferOp('ScatterND', [sym('f32', ['N', 3]), sym('i64', ['N', 1]), sym('f32', ['N', 3])])[0]!.type.shape).toEqual(['N', 3]);
    expectLoomError(
      () => inferOp('ScatterND', [sym('f32', [4, 3]), sym('i64', [2, 1]), sym('f32', [2, 4])]),
      'SHAPE',
      /updates \[2,4\] must have shape \[2,3\]/,
    );
    expectLoomError(() => attrsOf('ScatterND', { reduction: 'add' }, 18), 'UNSUPPORTED_FEATURE', /reduction.*'add'/);
    const r = evalOp('ScatterND', [f32([3], [1, 2, 3]), i64([0, 0], [2, 1]), f32([2], [7, 9])]);
    expect(Array.from(toNumbers(r[0]!))).toEqual([9, 2, 3]);
  });
});
