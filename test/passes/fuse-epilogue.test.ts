import { describe, expect, it } from 'vitest';
import type { Graph, Node } from '../../ir/graph.js';
import { constantFold } from '../../ir/passes/constant-fold.js';
import { fuseEpilogue } from '../../ir/passes/fuse-epilogue.js';
import { canonicalize } from '../../ir/passes/index.js';
import type { NodeSpec } from '../../src/onnx/write.js';
import { checkPass, constantInput, expectSameOutputs, f32, i64, numbers, onnxModel, opsOf, randomF32, seeded } from './helpers.js';

const activationOf = (n: Node): unknown => (n.attrs as { activation?: unknown }).activation;
const SQRT2 = 1.4142135381698608; // as float32, the way exporters write it

function denseModel(act: NodeSpec[], opts: { rank3?: boolean; opset?: number; extraInit?: Record<string, ReturnType<typeof f32>> } = {}) {
  const rand = seeded(21);
  const shape = opts.rank3 ? ['N', 4, 8] : ['N', 8];
  const outShape = opts.rank3 ? ['N', 4, 16] : ['N', 16];
  return onnxModel({
    inputs: [{ name: 'x', dtype: 'f32', shape }],
    outputs: [{ name: 'y', dtype: 'f32', shape: outShape }],
    nodes: [{ op: 'MatMul', inputs: ['x', 'w'], outputs: ['mm'] }, { op: 'Add', inputs: ['mm', 'b'], outputs: ['h'] }, ...act],
    initializers: {
      w: randomF32(rand, [8, 16]),
      b: randomF32(rand, [16]),
      half: f32([], [0.5]),
      one: f32([], [1]),
      sqrt2: f32([], [SQRT2]),
      rsqrt2: f32([], [Math.SQRT1_2]),
      ...opts.extraInit,
    },
    ...(opts.opset ? { opset: opts.opset } : {}),
  });
}

async function expectFusedDense(m: { bytes: Uint8Array; graph: Graph }, activation: unknown): Promise<void> {
  const fused = await checkPass(fuseEpilogue, m.graph, { model: m.bytes });
  expect(opsOf(fused)).toEqual(['MatMul']);
  const mm = fused.nodes[0]!;
  expect(mm.inputs.length).toBe(3);
  expect(numbers(constantInput(fused, mm, 2))).toEqual(numbers(constantInput(m.graph, m.graph.nodes[1]!, 1)));
  expect(activationOf(mm)).toEqual(activation);
  expect(fused.values.get(mm.outputs[0]!)!.name).toBe('y');
}

// PyTorch's exact GELU as its exporters write it, in several orderings.
const GELU_FORMS: Record<string, NodeSpec[]> = {
  'Div → Erf → Add → Mul(x) → Mul(0.5)': [
    { op: 'Div', inputs: ['h', 'sqrt2'], outputs: ['t1'] },
    { op: 'Erf', inputs: ['t1'], outputs: ['t2'] },
    { op: 'Add', inputs: ['t2', 'one'], outputs: ['t3'] },
    { op: 'Mul', inputs: ['h', 't3'], outputs: ['t4'] },
    { op: 'Mul', inputs: ['t4', 'half'], outputs: ['y'] },
  ],
  'Mul(x, 0.5) first, then times (1 + erf)': [
    { op: 'Mul', inputs: ['h', 'half'], outputs: ['hh'] },
    { op: 'Div', inputs: ['h', 'sqrt2'], outputs: ['t1'] },
    { op: 'Erf', inputs: ['t1'], outputs: ['t2'] },
    { op: 'Add', inputs: ['one', 't2'], outputs: ['t3'] },
    { op: 'Mul', inputs: ['hh', 't3'], outputs: ['y'] },
  ],
  '(1 + erf) * 0.5, then times x': [
    { op: 'Div', inputs: ['h', 'sqrt2'], outputs: ['t1'] },
    { op: 'Erf', inputs: ['t1'], outputs: ['t2'] },
    { op: 'Add', inputs: ['t2', 'one'], outputs: ['t3'] },
    { op: 'Mul', inputs: ['t3', 'half'], outputs: ['t4'] },
    { op: 'Mul', inputs: ['t4', 'h'], outputs: ['y'] },
  ],
  'Mul by 1/sqrt(2) instead of Div': [
    { op: 'Mul', inputs: ['rsqrt2', 'h'], outputs: ['t1'] },
    { op: 'Erf', inputs: ['t1'], outputs: ['t2'] },
    { op: 'Add', inputs: ['t2', 'one'], outputs: ['t3'] },
    { op: 'Mul', inputs: ['h', 't3'], outputs: ['t4'] },
    { op: 'Mul', inputs: ['t4', 'half'], outputs: ['y'] },
  ],
};

describe('fuseEpilogue', () => {
  it('fuses MatMul + Add(bias) + Relu into one MatMul', async () => {
    await expectFusedDense(denseModel([{ op: 'Relu', inputs: ['h'], outputs: ['y'] }]), { kind: 'relu' });
  });

  for (const [form, nodes] of Object.entries(GELU_FORMS)) {
    it(`recognizes the Erf GELU: ${form}`, async () => {
      await expectFusedDense(denseModel(nodes, { rank3: true }), { kind: 'gelu_erf' });
    });
  }

  it('recognizes the Gelu op (opset 20) and single-op activations', async () => {
    await expectFusedDense(denseModel([{ op: 'Gelu', inputs: ['h'], outputs: ['y'] }], { opset: 20 }), { kind: 'gelu_erf' });
    await expectFusedDense(denseModel([{ op: 'Sigmoid', inputs: ['h'], outputs: ['y'] }]), { kind: 'sigmoid' });
    await expectFusedDense(denseModel([{ op: 'Tanh', inputs: ['h'], outputs: ['y'] }]), { kind: 'tanh' });
    const leaky = denseModel([{ op: 'LeakyRelu', inputs: ['h'], outputs: ['y'], attrs: { alpha: { float: 0.1 } } }]);
    const fused = await checkPass(fuseEpilogue, leaky.graph, { model: leaky.bytes });
    expect(activationOf(fused.nodes[0]!)).toMatchObject({ kind: 'leaky_relu' });
    const relu6 = denseModel([{ op: 'Clip', inputs: ['h', 'zero', 'six'], outputs: ['y'] }], { extraInit: { zero: f32([], [0]), six: f32([], [6]) } });
    await expectFusedDense(relu6, { kind: 'clip', min: 0, max: 6 });
  });

  it('fuses the bias but not a GELU whose input is also used by a residual Add', async () => {
    const m = denseModel(
      [
        ...GELU_FORMS['Div → Erf → Add → Mul(x) → Mul(0.5)']!.map((n) => (n.outputs[0] === 'y' ? { ...n, outputs: ['g'] } : n)),
        { op: 'Add', inputs: ['g', 'h'], outputs: ['y'] },
      ],
      { rank3: true },
    );
    const fused = await checkPass(fuseEpilogue, m.graph, { model: m.bytes });
    expect(opsOf(fused)).toEqual(['MatMul', 'Div', 'Erf', 'Add', 'Mul', 'Mul', 'Add']);
    expect(fused.nodes[0]!.inputs.length).toBe(3);
    expect(activationOf(fused.nodes[0]!)).toBeNull();
  });

  it('does not fuse an activation into a producer whose output is also a graph output', async () => {
    const rand = seeded(22);
    const m = onnxModel({
      inputs: [{ name: 'x', dtype: 'f32', shape: ['N', 8] }],
      outputs: [
        { name: 'mm', dtype: 'f32', shape: ['N', 4] },
        { name: 'y', dtype: 'f32', shape: ['N', 4] },
      ],
      nodes: [
        { op: 'MatMul', inputs: ['x', 'w'], outputs: ['mm'] },
        { op: 'Relu', inputs: ['mm'], outputs: ['y'] },
      ],
      initializers: { w: randomF32(rand, [8, 4]) },
    });
    const fused = await checkPass(fuseEpilogue, m.graph, { model: m.bytes });
    expect(opsOf(fused)).toEqual(['MatMul', 'Relu']);
  });

  it("folds Paddle's Conv + Add(reshaped bias) + x*HardSigmoid(x) into one Conv with hard_swish", async () => {
    const rand = seeded(23);
    const bias = randomF32(rand, [6]);
    const m = onnxModel({
      inputs: [{ name: 'x', dtype: 'f32', shape: ['N', 3, 7, 7] }],
      outputs: [{ name: 'y', dtype: 'f32', shape: ['N', 6, 4, 4] }],
      nodes: [
        { op: 'Conv', inputs: ['x', 'w'], outputs: ['c'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2] } },
        { op: 'Reshape', inputs: ['bias', 'bias_shape'], outputs: ['bias4'] },
        { op: 'Add', inputs: ['c', 'bias4'], outputs: ['cb'] },
        { op: 'HardSigmoid', inputs: ['cb'], outputs: ['hs'], attrs: { alpha: { float: 0.1666666716337204 }, beta: { float: 0.5 } } },
        { op: 'Mul', inputs: ['cb', 'hs'], outputs: ['y'] },
      ],
      initializers: { w: randomF32(rand, [6, 3, 3, 3]), bias, bias_shape: i64([4], [1, 6, 1, 1]) },
    });
    const fused = await checkPass((g) => fuseEpilogue(constantFold(g)), m.graph, { model: m.bytes });
    expect(opsOf(fused)).toEqual(['Conv']);
    const conv = fused.nodes[0]!;
    expect(activationOf(conv)).toEqual({ kind: 'hard_swish' });
    expect(numbers(constantInput(fused, conv, 2))).toEqual(numbers(bias));
    const canon = canonicalize(m.graph, { verify: true });
    expect(opsOf(canon)).toEqual(['Conv']);
    expect(canon.constants.size).toBe(2);
    await expectSameOutputs(m.graph, canon, { model: m.bytes });
  });

  it('recognizes HardSwish as x * Clip(x + 3, 0, 6) / 6 and as the HardSwish op after Conv + Add(bias)', async () => {
    const rand = seeded(24);
    const common = {
      inputs: [{ name: 'x', dtype: 'f32' as const, shape: ['N', 2, 5, 5] }],
      outputs: [{ name: 'y', dtype: 'f32' as const, shape: ['N', 4, 5, 5] }],
    };
    const init = {
      w: randomF32(rand, [4, 2, 3, 3], -2, 2),
      cbias: randomF32(rand, [1, 4, 1, 1]),
      three: f32([], [3]),
      zero: f32([], [0]),
      six: f32([], [6]),
    };
    const head: NodeSpec[] = [
      { op: 'Conv', inputs: ['x', 'w'], outputs: ['c'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } },
      { op: 'Add', inputs: ['cbias', 'c'], outputs: ['h'] },
    ];
    const clipForm = onnxModel({
      ...common,
      nodes: [
        ...head,
        { op: 'Add', inputs: ['h', 'three'], outputs: ['p'] },
        { op: 'Clip', inputs: ['p', 'zero', 'six'], outputs: ['q'] },
        { op: 'Mul', inputs: ['h', 'q'], outputs: ['r'] },
        { op: 'Div', inputs: ['r', 'six'], outputs: ['y'] },
      ],
      initializers: init,
    });
    const opForm = onnxModel({ ...common, nodes: [...head, { op: 'HardSwish', inputs: ['h'], outputs: ['y'] }], initializers: init });
    for (const m of [clipForm, opForm]) {
      const fused = await checkPass(fuseEpilogue, m.graph, { model: m.bytes });
      expect(opsOf(fused)).toEqual(['Conv']);
      expect(activationOf(fused.nodes[0]!)).toEqual({ kind: 'hard_swish' });
      expect(constantInput(fused, fused.nodes[0]!, 2)!.shape).toEqual([4]);
    }
  });

  it('fuses Gemm + Add + HardSigmoid, moving the bias into C', async () => {
    const rand = seeded(25);
    const m = onnxModel({
      inputs: [{ name: 'x', dtype: 'f32', shape: ['N', 8] }],
      outputs: [{ name: 'y', dtype: 'f32', shape: ['N', 3] }],
      nodes: [
        { op: 'Gemm', inputs: ['x', 'w', 'c'], outputs: ['g'], attrs: { transB: 1, beta: { float: 0.5 } } },
        { op: 'Add', inputs: ['g', 'b'], outputs: ['h'] },
        { op: 'HardSigmoid', inputs: ['h'], outputs: ['y'], attrs: { alpha: { float: 0.3 } } },
      ],
      initializers: { w: randomF32(rand, [3, 8]), c: randomF32(rand, [3]), b: randomF32(rand, [1, 3]) },
    });
    const fused = await checkPass(fuseEpilogue, m.graph, { model: m.bytes });
    expect(opsOf(fused)).toEqual(['Gemm']);
    expect(activationOf(fused.nodes[0]!)).toMatchObject({ kind: 'hard_sigmoid', beta: 0.5 });
  });
});
