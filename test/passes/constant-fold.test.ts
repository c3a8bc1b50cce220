import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../ir/builder.js';
import type { Graph } from '../../ir/graph.js';
import { constantFold } from '../../ir/passes/constant-fold.js';
import { eliminateDeadCode } from '../../ir/passes/dead-code.js';
import { verifyGraph } from '../../ir/verify.js';
import { canonicalize } from '../../ir/passes/index.js';
import type { NodeSpec } from '../../src/onnx/write.js';
import { checkPass, constantInput, expectSameOutputs, f32, i64, nodesOf, numbers, onnxModel, opsOf, randomF32, seeded } from './helpers.js';

// Shape(x) → Gather(0) → Unsqueeze → Concat(·, [-1]) → Reshape(x, ·): the flatten PyTorch exports.
function flattenSpec(shape: Array<number | string>, keepDim1 = false) {
  const nodes: NodeSpec[] = [
    { op: 'Shape', inputs: ['x'], outputs: ['s'] },
    { op: 'Gather', inputs: ['s', 'i0'], outputs: ['d0'], attrs: { axis: 0 } },
    { op: 'Unsqueeze', inputs: ['d0', 'ax0'], outputs: ['u0'] },
    ...(keepDim1
      ? [
          { op: 'Gather', inputs: ['s', 'i1'], outputs: ['d1'], attrs: { axis: 0 } },
          { op: 'Unsqueeze', inputs: ['d1', 'ax0'], outputs: ['u1'] },
        ]
      : []),
    { op: 'Concat', inputs: keepDim1 ? ['u0', 'u1', 'minus1'] : ['u0', 'minus1'], outputs: ['target'], attrs: { axis: 0 } },
    { op: 'Reshape', inputs: ['x', 'target'], outputs: ['y'] },
  ];
  const outShape = keepDim1 ? [shape[0]!, 3, 16] : [shape[0]!, 48];
  return onnxModel({
    inputs: [{ name: 'x', dtype: 'f32', shape }],
    outputs: [{ name: 'y', dtype: 'f32', shape: outShape }],
    nodes,
    initializers: { i0: i64([], [0]), i1: i64([], [1]), ax0: i64([1], [0]), minus1: i64([1], [-1]) },
  });
}

const foldThenClean = (g: Graph): Graph => eliminateDeadCode(constantFold(g));

describe('constantFold', () => {
  it('folds a shape sub-graph on a static input away entirely', async () => {
    const m = flattenSpec([2, 3, 4, 4]);
    expect(opsOf(m.graph)).toEqual(['Shape', 'Gather', 'Unsqueeze', 'Concat', 'Reshape']);
    const folded = await checkPass(constantFold, m.graph, { model: m.bytes });
    expect(opsOf(folded)).toEqual(['Reshape']);
    expect(numbers(constantInput(folded, folded.nodes[0]!, 1))).toEqual([2, -1]);
    const canon = canonicalize(m.graph, { verify: true });
    expect(opsOf(canon)).toEqual(['Reshape']);
    expect(canon.constants.size).toBe(1); // only the target: the folded shape pieces are gone
  });

  it('keeps the Reshape on a symbolic batch with a static "copy the batch" target', async () => {
    const m = flattenSpec(['N', 3, 4, 4]);
    // the shape sub-graph is dead once the target is a constant; DCE removes it
    const folded = await checkPass(foldThenClean, m.graph, { model: m.bytes });
    expect(opsOf(folded)).toEqual(['Reshape']);
    const r = folded.nodes[0]!;
    expect(numbers(constantInput(folded, r, 1))).toEqual([0, -1]);
    expect(folded.values.get(r.outputs[0]!)!.type.shape).toEqual(['N', 48]);
    const canon = canonicalize(m.graph, { verify: true });
    expect(opsOf(canon)).toEqual(['Reshape']);
    await expectSameOutputs(m.graph, canon, { model: m.bytes, batch: 5 });
  });

  it('folds a Gather of a static dim of a symbolic-batch shape', async () => {
    const m = flattenSpec(['N', 3, 4, 4], true);
    const folded = await checkPass(foldThenClean, m.graph, { model: m.bytes });
    expect(opsOf(folded)).toEqual(['Reshape']);
    expect(numbers(constantInput(folded, folded.nodes[0]!, 1))).toEqual([0, 3, -1]);
    expect(folded.values.get(folded.nodes[0]!.outputs[0]!)!.type.shape).toEqual(['N', 3, 16]);
  });

  it('keeps Shape of a symbolic dim that a later op needs at run time', async () => {
    // y = x + ConstantOfShape(Shape(x)): the shape holds N, so nothing about it can be folded.
    const m = onnxModel({
      inputs: [{ name: 'x', dtype: 'f32', shape: ['N', 4] }],
      outputs: [{ name: 'y', dtype: 'f32', shape: ['N', 4] }],
      nodes: [
        { op: 'Shape', inputs: ['x'], outputs: ['s'] },
        { op: 'ConstantOfShape', inputs: ['s'], outputs: ['ones'], attrs: { value: f32([1], [1]) } },
        { op: 'Add', inputs: ['x', 'ones'], outputs: ['y'] },
      ],
    });
    const folded = await checkPass(constantFold, m.graph, { model: m.bytes });
    expect(opsOf(folded)).toEqual(['Shape', 'ConstantOfShape', 'Add']);
  });

  it('folds weight transforms: Transpose, Cast and scaling of a constant weight', async () => {
    const rand = seeded(3);
    const m = onnxModel({
      inputs: [{ name: 'x', dtype: 'f32', shape: ['N', 6] }],
      outputs: [{ name: 'y', dtype: 'f32', shape: ['N', 5] }],
      nodes: [
        { op: 'Transpose', inputs: ['w'], outputs: ['wt'], attrs: { perm: [1, 0] } },
        { op: 'Cast', inputs: ['wt'], outputs: ['wc'], attrs: { to: 1 } },
        { op: 'Mul', inputs: ['wc', 'scale'], outputs: ['ws'] },
        { op: 'MatMul', inputs: ['x', 'ws'], outputs: ['y'] },
      ],
      initializers: { w: fromF64(randomF32(rand, [5, 6])), scale: f32([], [0.25]) },
    });
    const folded = await checkPass(constantFold, m.graph, { model: m.bytes });
    expect(opsOf(folded)).toEqual(['MatMul']);
    expect(constantInput(folded, folded.nodes[0]!, 1)!.shape).toEqual([6, 5]);
  });

  it('does not materialize a huge broadcast, but does fold a small one', async () => {
    const b = new GraphBuilder('big');
    const x = b.addInput('x', { dtype: 'f32', shape: [1, 1024] });
    const bigShape = b.addConstant('big_shape', i64([2], [2048, 1024]));
    const smallShape = b.addConstant('small_shape', i64([2], [3, 1024]));
    const [big] = b.addNode('ConstantOfShape', 'cos_big', [bigShape], { dtype: 'f32', value: 0.5 }, ['big']);
    const [small] = b.addNode('ConstantOfShape', 'cos_small', [smallShape], { dtype: 'f32', value: 2 }, ['small']);
    const [y] = b.addNode('Add', 'add_big', [big!, x], {}, ['y']);
    const [z] = b.addNode('Mul', 'mul_small', [small!, x], {}, ['z']);
    b.setOutputs([y!, z!]);
    const g = b.build();
    verifyGraph(g);
    const folded = await checkPass(constantFold, g);
    expect(opsOf(folded)).toEqual(['ConstantOfShape', 'Add', 'Mul']);
    expect(nodesOf(folded, 'ConstantOfShape')[0]!.name).toBe('cos_big');
  });

  it('does not mutate its input graph', () => {
    const m = flattenSpec([2, 3, 4, 4]);
    const nodes = [...m.graph.nodes];
    const constants = new Map(m.graph.constants);
    constantFold(m.graph);
    expect(m.graph.nodes).toEqual(nodes);
    expect(m.graph.constants).toEqual(constants);
  });
});

function fromF64(t: ReturnType<typeof randomF32>) {
  // a double weight that Cast(to=float) turns back into f32: exercises folding Cast
  return { dtype: 'f64' as const, shape: t.shape, data: Float64Array.from(t.data as Float32Array) };
}
