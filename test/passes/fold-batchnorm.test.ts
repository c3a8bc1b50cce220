import { describe, expect, it } from 'vitest';
import { foldBatchNorm } from '../../ir/passes/fold-batchnorm.js';
import { canonicalize } from '../../ir/passes/index.js';
import type { NodeSpec } from '../../src/onnx/write.js';
import type { Tensor } from '../../ir/tensor.js';
import { checkPass, constantInput, expectSameOutputs, f32, nodesOf, onnxModel, opsOf, randomF32, seeded } from './helpers.js';

function bnParams(rand: () => number, c: number, prefix = 'bn'): Record<string, Tensor> {
  return {
    [`${prefix}_scale`]: randomF32(rand, [c], 0.5, 1.5),
    [`${prefix}_bias`]: randomF32(rand, [c]),
    [`${prefix}_mean`]: randomF32(rand, [c]),
    [`${prefix}_var`]: randomF32(rand, [c], 0.2, 2),
  };
}

const bnNode = (input: string, output: string, prefix = 'bn'): NodeSpec => ({
  op: 'BatchNormalization',
  inputs: [input, `${prefix}_scale`, `${prefix}_bias`, `${prefix}_mean`, `${prefix}_var`],
  outputs: [output],
  attrs: { epsilon: { float: 1e-3 } },
});

describe('foldBatchNorm', () => {
  it('folds Conv + BN + Relu into one Conv with a relu epilogue', async () => {
    const rand = seeded(11);
    const m = onnxModel({
      inputs: [{ name: 'x', dtype: 'f32', shape: ['N', 3, 8, 8] }],
      outputs: [{ name: 'y', dtype: 'f32', shape: ['N', 4, 8, 8] }],
      nodes: [
        { op: 'Conv', inputs: ['x', 'w'], outputs: ['c'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } },
        bnNode('c', 'b'),
        { op: 'Relu', inputs: ['b'], outputs: ['y'] },
      ],
      initializers: { w: randomF32(rand, [4, 3, 3, 3]), ...bnParams(rand, 4) },
    });
    const folded = await checkPass(foldBatchNorm, m.graph, { model: m.bytes });
    expect(opsOf(folded)).toEqual(['Conv', 'Relu']);
    expect(constantInput(folded, folded.nodes[0]!, 2)!.shape).toEqual([4]); // bias created
    const canon = canonicalize(m.graph, { verify: true });
    expect(opsOf(canon)).toEqual(['Conv']);
    expect((canon.nodes[0]!.attrs as { activation: unknown }).activation).toEqual({ kind: 'relu' });
    await expectSameOutputs(m.graph, canon, { model: m.bytes });
  });

  it('folds into a grouped Conv that already has a bias', async () => {
    const rand = seeded(12);
    const m = onnxModel({
      inputs: [{ name: 'x', dtype: 'f32', shape: ['N', 4, 6, 6] }],
      outputs: [{ name: 'y', dtype: 'f32', shape: ['N', 6, 3, 3] }],
      nodes: [
        { op: 'Conv', inputs: ['x', 'w', 'cb'], outputs: ['c'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2], group: 2 } },
        bnNode('c', 'y'),
      ],
      initializers: { w: randomF32(rand, [6, 2, 3, 3]), cb: randomF32(rand, [6]), ...bnParams(rand, 6) },
    });
    const folded = await checkPass(foldBatchNorm, m.graph, { model: m.bytes });
    expect(opsOf(folded)).toEqual(['Conv']);
  });

  it('folds into Gemm (transB, with C) and into a 2-D MatMul with a constant weight', async () => {
    const rand = seeded(13);
    const m = onnxModel({
      inputs: [{ name: 'x', dtype: 'f32', shape: ['N', 8] }],
      outputs: [{ name: 'y', dtype: 'f32', shape: ['N', 5] }],
      nodes: [
        { op: 'Gemm', inputs: ['x', 'w1', 'c1'], outputs: ['g'], attrs: { transB: 1, alpha: { float: 0.5 }, beta: { float: 2 } } },
        bnNode('g', 'gb', 'bn1'),
        { op: 'MatMul', inputs: ['gb', 'w2'], outputs: ['mm'] },
        bnNode('mm', 'y', 'bn2'),
      ],
      initializers: {
        w1: randomF32(rand, [6, 8]),
        c1: randomF32(rand, [6]),
        w2: randomF32(rand, [6, 5]),
        ...bnParams(rand, 6, 'bn1'),
        ...bnParams(rand, 5, 'bn2'),
      },
    });
    const folded = await checkPass(foldBatchNorm, m.graph, { model: m.bytes });
    expect(opsOf(folded)).toEqual(['Gemm', 'MatMul']);
    const mm = nodesOf(folded, 'MatMul')[0]!;
    expect(constantInput(folded, mm, 2)!.shape).toEqual([5]);
  });

  it("folds PP-OCRv4's learnable affine block (Conv → Mul(w0) → Add(w1)), then its hard swish fuses", async () => {
    const rand = seeded(15);
    const m = onnxModel({
      inputs: [{ name: 'x', dtype: 'f32', shape: ['N', 3, 6, 6] }],
      outputs: [{ name: 'y', dtype: 'f32', shape: ['N', 4, 6, 6] }],
      nodes: [
        { op: 'Conv', inputs: ['x', 'w', 'cb'], outputs: ['c'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } },
        { op: 'Mul', inputs: ['w0', 'c'], outputs: ['a1'] },
        { op: 'Add', inputs: ['a1', 'w1'], outputs: ['a'] },
        { op: 'Add', inputs: ['a', 'three'], outputs: ['p'] },
        { op: 'Clip', inputs: ['p', 'zero', 'six'], outputs: ['q'] },
        { op: 'Mul', inputs: ['a', 'q'], outputs: ['r'] },
        { op: 'Div', inputs: ['r', 'six'], outputs: ['y'] },
      ],
      initializers: {
        w: randomF32(rand, [4, 3, 3, 3]),
        cb: randomF32(rand, [4]),
        w0: randomF32(rand, [1], 0.5, 2),
        w1: randomF32(rand, [1]),
        three: f32([], [3]),
        zero: f32([], [0]),
        six: f32([], [6]),
      },
    });
    const folded = await checkPass(foldBatchNorm, m.graph, { model: m.bytes });
    expect(opsOf(folded)).toEqual(['Conv', 'Add', 'Clip', 'Mul', 'Div']);
    const canon = canonicalize(m.graph, { verify: true });
    expect(opsOf(canon)).toEqual(['Conv']);
    expect((canon.nodes[0]!.attrs as { activation: unknown }).activation).toEqual({ kind: 'hard_swish' });
    await expectSameOutputs(m.graph, canon, { model: m.bytes });
  });

  it('folds per-channel Mul and Sub after a 3-D MatMul into its weight and a new bias', async () => {
    const rand = seeded(16);
    const m = onnxModel({
      inputs: [{ name: 'x', dtype: 'f32', shape: ['N', 3, 8] }],
      outputs: [{ name: 'y', dtype: 'f32', shape: ['N', 3, 5] }],
      nodes: [
        { op: 'MatMul', inputs: ['x', 'w'], outputs: ['mm'] },
        { op: 'Mul', inputs: ['mm', 'scale'], outputs: ['s'] },
        { op: 'Sub', inputs: ['s', 'shift'], outputs: ['y'] },
      ],
      initializers: { w: randomF32(rand, [8, 5]), scale: randomF32(rand, [1, 1, 5]), shift: randomF32(rand, [5]) },
    });
    const folded = await checkPass(foldBatchNorm, m.graph, { model: m.bytes });
    expect(opsOf(folded)).toEqual(['MatMul']);
    expect(constantInput(folded, folded.nodes[0]!, 2)!.shape).toEqual([5]);
  });

  it('leaves BN alone after a producer it cannot fold into', async () => {
    const rand = seeded(14);
    const m = onnxModel({
      inputs: [{ name: 'x', dtype: 'f32', shape: ['N', 4, 5, 5] }],
      outputs: [
        { name: 'y', dtype: 'f32', shape: ['N', 4, 5, 5] },
        { name: 'z', dtype: 'f32', shape: ['N', 4, 5, 5] },
        { name: 'c2', dtype: 'f32', shape: ['N', 4, 5, 5] },
      ],
      nodes: [
        { op: 'Add', inputs: ['x', 'x'], outputs: ['a'] },
        bnNode('a', 'y'),
        // the conv output is also a graph output: folding would change it
        { op: 'Conv', inputs: ['x', 'w'], outputs: ['c2'], attrs: { kernel_shape: [1, 1] } },
        bnNode('c2', 'z'),
      ],
      initializers: { w: randomF32(rand, [4, 4, 1, 1]), ...bnParams(rand, 4) },
    });
    const folded = await checkPass(foldBatchNorm, m.graph, { model: m.bytes });
    expect(opsOf(folded)).toEqual(['Add', 'BatchNormalization', 'Conv', 'BatchNormalization']);
  });
});
