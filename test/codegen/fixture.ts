// A hand-built Plan exercising every launch kind and kernel op (the planner is written in parallel).
import type { DType } from '../../ir/dtype.js';
import { fromNumbers } from '../../ir/tensor.js';
import type { EltInstr, GemmProblem, KernelOp, Launch, LaunchInfo, Ref, Segment, TensorView } from '../../ir/contract/launch.js';
import type { Plan, WeightBlob } from '../../ir/contract/plan.js';

const w = (offset: number): Ref => ({ arena: 'weights', offset });
const act = (offset: number): Ref => ({ arena: 'act', offset });
const io = (offset: number): Ref => ({ arena: 'io', offset });
const view = (ref: Ref, dtype: DType, strides: number[] = []): TensorView => ({ ref, dtype, strides });

function info(stage: number, label: string, tenants: number[]): LaunchInfo {
  return { stage, label, tenants, sources: tenants.map((t) => `t${t}/${label}`), flops: 100, bytes: 200, predictedUs: 3.5, ungroupedUs: 7.25 };
}

const problem = (m: number, n: number, k: number, extra: Partial<GemmProblem> = {}): GemmProblem => ({
  m,
  n,
  k,
  transA: false,
  transB: false,
  lda: k,
  ldb: n,
  ldc: n,
  alpha: 1,
  beta: 1,
  bias: 'none',
  ldBias: 0,
  activation: null,
  ...extra,
});

function kernel(id: number, stage: number, op: KernelOp, segments: Segment[]): Launch {
  return {
    kind: 'kernel',
    id,
    kernel: `k${id}`,
    op,
    segments,
    info: info(
      stage,
      op.op,
      segments.map((s) => s.tenant),
    ),
  };
}

export const ADD_RELU: EltInstr[] = [
  { op: 'in', i: 0 },
  { op: 'in', i: 1 },
  { op: 'add' },
  { op: 'const', v: 0.5 },
  { op: 'mul' },
  { op: 'act', act: { kind: 'relu' } },
];

export function weightBlobs(): WeightBlob[] {
  return [
    { offset: 0, tensor: fromNumbers('f32', [4, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]) }, // tenant 0 W
    { offset: 48, tensor: fromNumbers('f32', [4, 3], [-1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12]) }, // tenant 1 W (stride 48)
    { offset: 96, tensor: fromNumbers('f32', [3], [0.5, -0.5, 0.25]) }, // bias
    { offset: 112, tensor: fromNumbers('i32', [4], [3, -1, 0, 2]) }, // gather table (offset 112: 16-aligned)
    { offset: 128, tensor: fromNumbers('i64', [2], [1, -1]) }, // gather indices
    { offset: 160, tensor: fromNumbers('f16', [2], [1, 2]) }, // stored as f16 bits 15360, 16384
  ];
}

export function samplePlan(): Plan {
  const launches: Launch[] = [
    {
      kind: 'gemm',
      id: 0,
      dtype: 'f32',
      problem: problem(2, 3, 4, { bias: 'row', activation: { kind: 'relu' } }),
      entries: [
        { tenant: 0, a: io(0), b: w(0), c: act(0), bias: w(96) },
        { tenant: 1, a: io(32), b: w(48), c: act(24), bias: w(96) },
      ],
      strides: { a: 32, b: 48, c: 24, bias: 0 },
      info: info(0, 'gemm 2x3x4', [0, 1]),
    },
    {
      kind: 'gemm_grouped',
      id: 1,
      dtype: 'f32',
      groups: [
        {
          problem: problem(2, 3, 4, { transB: true, ldb: 4, bias: 'full', ldBias: 3, alpha: 0.5, beta: 2 }),
          entries: [{ tenant: 0, a: io(0), b: w(0), c: act(64), bias: act(0) }],
        },
        {
          problem: problem(1, 2, 3, { transA: true, lda: 1, activation: { kind: 'leaky_relu', alpha: 0.01 } }),
          entries: [{ tenant: 1, a: io(64), b: w(48), c: act(96), bias: null }],
        },
      ],
      info: info(0, 'grouped', [0, 1]),
    },
    kernel(2, 1, { op: 'eltwise', program: ADD_RELU, computeF32: true }, [
      { tenant: 0, shape: [2, 3], inputs: [view(act(0), 'f32', [3, 1]), view(w(96), 'f32', [0, 1])], out: act(128), outDType: 'f32' },
      { tenant: 1, shape: [2, 3], inputs: [view(act(24), 'f32', [3, 1]), view(w(96), 'f32', [0, 1])], out: act(152), outDType: 'f32' },
    ]),
    kernel(3, 1, { op: 'reduce', reduce: 'sum', selectLast: false }, [
      { tenant: 0, dims: [2, 3, 1], inputs: [view(act(0), 'f32')], out: act(176), outDType: 'f32' },
    ]),
    kernel(4, 1, { op: 'reduce', reduce: 'argmax', selectLast: true }, [
      { tenant: 1, dims: [1, 3, 2], inputs: [view(act(24), 'f32')], out: act(184), outDType: 'i64' },
    ]),
    kernel(5, 2, { op: 'softmax', log: false }, [
      { tenant: 0, dims: [2, 3, 1], inputs: [view(act(128), 'f32')], out: act(200), outDType: 'f32' },
      { tenant: 1, dims: [1, 3, 2], inputs: [view(act(152), 'f32')], out: act(224), outDType: 'f32' },
    ]),
    kernel(6, 2, { op: 'layernorm', epsilon: 1e-5 }, [
      { tenant: 0, dims: [2, 3], inputs: [view(act(0), 'f32'), view(w(96), 'f32'), view(w(96), 'f32')], out: act(248), outDType: 'f32' },
    ]),
    kernel(7, 2, { op: 'layernorm', epsilon: 1e-5 }, [{ tenant: 1, dims: [2, 3], inputs: [view(act(24), 'f32')], out: act(272), outDType: 'f32' }]),
    kernel(8, 2, { op: 'groupnorm', epsilon: 1e-5 }, [
      { tenant: 0, dims: [1, 1, 3, 2], inputs: [view(act(0), 'f32'), view(w(96), 'f32'), view(w(96), 'f32')], out: act(296), outDType: 'f32' },
    ]),
    kernel(9, 3, { op: 'pool', mode: 'max', countIncludePad: false }, [
      { tenant: 0, geom: geom(), inputs: [view(act(320), 'f32')], out: act(400), outDType: 'f32' },
    ]),
    kernel(10, 3, { op: 'pool', mode: 'avg', countIncludePad: true }, [
      { tenant: 1, geom: geom(), inputs: [view(act(320), 'f32')], out: act(440), outDType: 'f32' },
    ]),
    kernel(11, 3, { op: 'im2col' }, [
      { tenant: 0, geom: { ...geom(), kh: 2, kw: 2, sh: 1, sw: 1, oh: 4, ow: 4 }, inputs: [view(act(320), 'f32')], out: act(512), outDType: 'f32' },
    ]),
    kernel(12, 3, { op: 'col2im' }, [
      {
        tenant: 1,
        geom: { ...geom(), h: 2, w: 2, oh: 3, ow: 3, kh: 2, kw: 2, sh: 1, sw: 1, padTop: 0, padLeft: 0, padBottom: 0, padRight: 0 },
        inputs: [view(act(512), 'f32'), view(w(96), 'f32')],
        out: act(1024),
        outDType: 'f32',
      },
    ]),
    kernel(13, 4, { op: 'copy' }, [
      { tenant: 0, shape: [3, 2], inputs: [view(act(0), 'f32', [1, 3])], out: act(1100), outDType: 'f32', outStrides: [-2, 1] },
      { tenant: 1, shape: [2, 3], inputs: [view(act(24), 'f32', [3, 1])], out: act(1200), outDType: 'f32' },
    ]),
    kernel(14, 4, { op: 'fill', value: -Infinity }, [{ tenant: 0, count: 5, inputs: [], out: act(1300), outDType: 'f32' }]),
    kernel(15, 4, { op: 'gather' }, [{ tenant: 1, dims: [1, 4, 3, 2], inputs: [view(w(0), 'f32'), view(w(128), 'i64')], out: act(1400), outDType: 'f32' }]),
    kernel(16, 4, { op: 'gather_table' }, [{ tenant: 0, count: 4, inputs: [view(act(0), 'f32'), view(w(112), 'i32')], out: act(1500), outDType: 'f32' }]),
    kernel(17, 5, { op: 'eltwise', program: ADD_RELU, computeF32: true }, [
      { tenant: 1, shape: [3], inputs: [view(act(200), 'f32', [1]), view(act(224), 'f32', [1])], out: act(1600), outDType: 'f32' },
    ]),
    kernel(
      18,
      5,
      {
        op: 'eltwise',
        computeF32: false,
        program: [
          { op: 'in', i: 0 },
          { op: 'in', i: 1 },
          { op: 'lt' },
          { op: 'in', i: 0 },
          { op: 'const', v: NaN },
          { op: 'where' },
          { op: 'clip', min: -Infinity, max: 6 },
          { op: 'const', v: -0 },
          { op: 'max' },
          { op: 'isnan' },
          { op: 'not' },
        ],
      },
      [{ tenant: 0, shape: [2], inputs: [view(w(160), 'f16', [1]), view(w(128), 'i64', [0])], out: act(1700), outDType: 'bool' }],
    ),
    kernel(19, 5, { op: 'copy' }, [{ tenant: 1, shape: [6], inputs: [view(act(24), 'f32', [1])], out: act(1800), outDType: 'f16' }]),
    // per-tenant constants: 'param' i reads the segment's params[i]
    kernel(20, 5, { op: 'eltwise', program: [...ADD_RELU, { op: 'param', i: 1 }, { op: 'mul' }, { op: 'param', i: 0 }, { op: 'add' }], computeF32: true }, [
      { tenant: 1, shape: [3], inputs: [view(act(200), 'f32', [1]), view(act(224), 'f32', [1])], out: act(1900), outDType: 'f32', params: [0.25, -2] },
      { tenant: 0, shape: [3], inputs: [view(act(128), 'f32', [1]), view(act(152), 'f32', [1])], out: act(1950), outDType: 'f32', params: [-0, 1e-3] },
    ]),
    // depthwise conv: one 3x3 kernel per channel (weights at w(0)), bias per channel, fused activation
    kernel(21, 5, { op: 'depthwise', activation: { kind: 'clip', min: 0, max: 6 } }, [
      { tenant: 0, geom: geom(), inputs: [view(act(320), 'f32'), view(w(0), 'f32'), view(w(96), 'f32')], out: act(1980), outDType: 'f32' },
    ]),
  ];
  return {
    precision: 'fp32',
    tenants: [0, 1].map((t) => ({
      id: `tenant-${t}`,
      model: `models/t${t}.onnx`,
      maxBatch: 2,
      sloMs: t === 0 ? 20 : null,
      layers: 7 + t,
      inputs: [{ name: 'x', dtype: 'f32' as DType, shape: [2, 4], batchAxis: 0, ref: io(t * 32), bytes: 32 }],
      outputs: [{ name: 'y', dtype: 'f32' as DType, shape: [2, 3], batchAxis: 0, ref: io(64 + t * 24), bytes: 24 }],
    })),
    launches,
    stages: 6,
    arenas: { weights: 176, act: 2048, io: 128, actWithoutReuse: 4096 },
    weights: weightBlobs(),
    cost: { predictedTickUs: 60, ungroupedTickUs: 130.5, floorUs: 1.25, device: 'H100 SXM (model)' },
  };
}

function geom() {
  return { n: 1, c: 1, h: 4, w: 4, oh: 2, ow: 2, kh: 3, kw: 3, sh: 2, sw: 2, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1, dh: 1, dw: 1 };
}
