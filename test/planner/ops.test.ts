// Op coverage: small one-op models (each a tenant of one fleet) planned, simulated and compared with
// onnxruntime: the lowerings the zoo fleets do not reach (ConvTranspose, Pad modes, Tile, Resize,
// non-contiguous reductions, norms, pools with padding, index maps, batched MatMul, ...).
import { describe, expect, it } from 'vitest';
import type { DType } from '../../ir/dtype.js';
import type { Dim } from '../../ir/shape.js';
import { type Tensor, fromNumbers } from '../../ir/tensor.js';
import { type NodeSpec, encodeModel } from '../../src/onnx/write.js';
import { planFleet } from '../../src/planner/index.js';
import { rng } from '../support/tensors.js';
import { checkFleet, tenantFromBytes } from './fleet-helpers.js';

interface Case {
  readonly name: string;
  readonly x: readonly Dim[];
  readonly nodes: readonly NodeSpec[];
  readonly outputs: ReadonlyArray<readonly [string, readonly Dim[], DType?]>;
  readonly init?: Readonly<Record<string, Tensor>>;
  readonly opset?: number;
}

const rand = rng(42);
const f32 = (shape: number[]): Tensor =>
  fromNumbers(
    'f32',
    shape,
    Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rand() * 2 - 1),
  );
const i64 = (v: number[]): Tensor => fromNumbers('i64', [v.length], v);
const scalar = (v: number): Tensor => fromNumbers('f32', [], [v]);

const CASES: Case[] = [
  {
    name: 'convtranspose',
    x: ['N', 4, 5, 5],
    nodes: [{ op: 'ConvTranspose', inputs: ['x', 'w', 'b'], outputs: ['y'], attrs: { group: 2, strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] } }],
    init: { w: f32([4, 2, 3, 3]), b: f32([4]) },
    outputs: [['y', ['N', 4, 10, 10]]],
  },
  {
    name: 'conv1d-dilated-grouped',
    x: ['N', 4, 10],
    nodes: [{ op: 'Conv', inputs: ['x', 'w', 'b'], outputs: ['y'], attrs: { group: 2, dilations: [2], pads: [2, 2] } }],
    init: { w: f32([6, 2, 3]), b: f32([6]) },
    outputs: [['y', ['N', 6, 10]]],
  },
  {
    name: 'pad-reflect-and-constant',
    x: ['N', 3, 4, 4],
    nodes: [
      { op: 'Pad', inputs: ['x', 'p1'], outputs: ['y1'], attrs: { mode: 'reflect' } },
      { op: 'Pad', inputs: ['x', 'p2', 'v'], outputs: ['y2'] },
    ],
    init: { p1: i64([0, 0, 1, 2, 0, 0, 2, 1]), p2: i64([0, 0, 1, 1, 0, 0, 1, 1]), v: scalar(0.5) },
    outputs: [
      ['y1', ['N', 3, 7, 7]],
      ['y2', ['N', 3, 6, 6]],
    ],
  },
  {
    name: 'tile-expand-concat',
    x: ['N', 1, 3],
    nodes: [
      { op: 'Tile', inputs: ['x', 'r'], outputs: ['t'] },
      { op: 'Expand', inputs: ['x', 's'], outputs: ['e'] },
      { op: 'Relu', inputs: ['e'], outputs: ['er'] },
      { op: 'Concat', inputs: ['t', 'er'], outputs: ['y'], attrs: { axis: 2 } },
    ],
    init: { r: i64([1, 4, 2]), s: i64([1, 4, 3]) },
    outputs: [['y', ['N', 4, 9]]],
  },
  {
    name: 'reduce-noncontiguous-argmax',
    x: ['N', 3, 4, 5],
    nodes: [
      { op: 'ReduceSum', inputs: ['x', 'axes'], outputs: ['s'], attrs: { keepdims: 0 } },
      { op: 'ReduceMax', inputs: ['x', 'axes2'], outputs: ['m'], attrs: { keepdims: 1 } },
      { op: 'ArgMax', inputs: ['x'], outputs: ['a'], attrs: { axis: 2, keepdims: 0 } },
    ],
    init: { axes: i64([1, 3]), axes2: i64([2, 3]) },
    outputs: [
      ['s', ['N', 4]],
      ['m', ['N', 3, 1, 1]],
      ['a', ['N', 3, 5], 'i64'],
    ],
    opset: 18,
  },
  {
    name: 'instancenorm-prelu',
    x: ['N', 3, 4, 4],
    nodes: [
      { op: 'InstanceNormalization', inputs: ['x', 'sc', 'bi'], outputs: ['n'], attrs: { epsilon: { float: 1e-5 } } },
      { op: 'PRelu', inputs: ['n', 'slope'], outputs: ['y'] },
    ],
    init: { sc: f32([3]), bi: f32([3]), slope: f32([3, 1, 1]) },
    outputs: [['y', ['N', 3, 4, 4]]],
  },
  {
    name: 'pools',
    x: ['N', 2, 7, 7],
    nodes: [
      {
        op: 'AveragePool',
        inputs: ['x'],
        outputs: ['a'],
        attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1, count_include_pad: 1 },
      },
      { op: 'AveragePool', inputs: ['x'], outputs: ['b'], attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] } },
      { op: 'MaxPool', inputs: ['x'], outputs: ['m'], attrs: { kernel_shape: [2, 3], dilations: [2, 1], pads: [0, 1, 0, 1] } },
      { op: 'GlobalMaxPool', inputs: ['x'], outputs: ['g'] },
    ],
    outputs: [
      ['a', ['N', 2, 4, 4]],
      ['b', ['N', 2, 4, 4]],
      ['m', ['N', 2, 5, 7]],
      ['g', ['N', 2, 1, 1]],
    ],
  },
  {
    name: 'index-maps',
    x: ['N', 8, 2, 3],
    nodes: [
      { op: 'DepthToSpace', inputs: ['x'], outputs: ['d'], attrs: { blocksize: 2, mode: 'CRD' } },
      { op: 'Slice', inputs: ['x', 'st', 'en', 'ax', 'sp'], outputs: ['s'] },
      { op: 'Gather', inputs: ['x', 'idx'], outputs: ['g'], attrs: { axis: 1 } },
      { op: 'Resize', inputs: ['x', '', 'scales'], outputs: ['r'], attrs: { mode: 'nearest' } },
      { op: 'Transpose', inputs: ['x'], outputs: ['t'], attrs: { perm: [0, 3, 1, 2] } },
    ],
    init: { st: i64([7, 0]), en: i64([-9, 3]), ax: i64([1, 3]), sp: i64([-3, 2]), idx: i64([5, 0, -1]), scales: fromNumbers('f32', [4], [1, 1, 2, 1.5]) },
    outputs: [
      ['d', ['N', 2, 4, 6]],
      ['s', ['N', 3, 2, 2]],
      ['g', ['N', 3, 2, 3]],
      ['r', ['N', 8, 4, 4]],
      ['t', ['N', 3, 8, 2]],
    ],
  },
  {
    name: 'split-softmax-layernorm',
    x: ['N', 6, 4],
    nodes: [
      { op: 'Split', inputs: ['x', 'sp'], outputs: ['a', 'b'], attrs: { axis: 1 } },
      { op: 'LogSoftmax', inputs: ['a'], outputs: ['ls'], attrs: { axis: 1 } },
      { op: 'LayerNormalization', inputs: ['b', 'sc', 'bi'], outputs: ['ln'], attrs: { axis: 1, epsilon: { float: 1e-5 } } },
    ],
    init: { sp: i64([2, 4]), sc: f32([4, 4]), bi: f32([4]) },
    outputs: [
      ['ls', ['N', 2, 4]],
      ['ln', ['N', 4, 4]],
    ],
  },
  {
    name: 'batched-matmul-eltwise',
    x: ['N', 2, 3, 4],
    nodes: [
      { op: 'Transpose', inputs: ['x'], outputs: ['xt'], attrs: { perm: [0, 1, 3, 2] } },
      { op: 'MatMul', inputs: ['x', 'xt'], outputs: ['mm'] },
      { op: 'Greater', inputs: ['mm', 'zero'], outputs: ['pos'] },
      { op: 'Mul', inputs: ['mm', 'tenth'], outputs: ['neg'] },
      { op: 'Where', inputs: ['pos', 'mm', 'neg'], outputs: ['w'] },
      { op: 'Clip', inputs: ['w', 'lo', 'hi'], outputs: ['c'] },
      { op: 'Max', inputs: ['c', 'w', 'mm'], outputs: ['y'] },
      { op: 'Cast', inputs: ['pos'], outputs: ['pi'], attrs: { to: 7 } },
      { op: 'MatMul', inputs: ['x', 'wb'], outputs: ['z'] },
    ],
    init: { zero: scalar(0), tenth: scalar(0.1), lo: scalar(-0.5), hi: scalar(0.5), wb: f32([2, 4, 5]) },
    outputs: [
      ['y', ['N', 2, 3, 3]],
      ['pi', ['N', 2, 3, 3], 'i64'],
      ['z', ['N', 2, 3, 5]],
    ],
  },
  {
    name: 'gemm-transA-bias-col',
    x: [5, 'N'],
    nodes: [{ op: 'Gemm', inputs: ['x', 'w', 'c'], outputs: ['y'], attrs: { transA: 1, alpha: { float: 0.5 }, beta: { float: 2 } } }],
    init: { w: f32([5, 3]), c: f32([1, 3]) },
    outputs: [['y', ['N', 3]]],
  },
];

describe('op lowerings match onnxruntime (one fleet of one-op tenants)', () => {
  it('every case', async () => {
    const ts = CASES.map((c) => {
      const bytes = encodeModel({
        opset: c.opset ?? 17,
        inputs: [{ name: 'x', dtype: 'f32', shape: c.x }],
        outputs: c.outputs.map(([name, shape, dtype]) => ({ name, dtype: dtype ?? 'f32', shape })),
        nodes: c.nodes,
        initializers: c.init ?? {},
      });
      return tenantFromBytes(c.name, bytes, 2);
    });
    const plan = planFleet(ts.map((t) => t.input));
    const errors = await checkFleet(plan, ts);
    expect(Object.keys(errors)).toHaveLength(CASES.length);
    if (process.env.PLANNER_DEBUG)
      console.log(
        errors,
        plan.launches.map((l) => l.info.label),
      );
    for (const [id, e] of Object.entries(errors)) expect(e, id).toBeLessThanOrEqual(1e-5);
  });
});
