// A small hand-built Plan (no planner): three tenants, a strided GEMM for two of them, a GEMM that reads
// its input along batchAxis 1 for the third, and one eltwise kernel writing every tenant's output.
//   a, b: y = 2 * relu(x · W_t + bias_t)        x [4, 8] (batchAxis 0), y [4, 5]
//   c:    y = 2 * (xᵀ · W_c)                     x [8, 3] (batchAxis 1), y [3, 5]
import { makeTensor } from '../../ir/tensor.js';
import type { Launch, LaunchInfo } from '../../ir/contract/launch.js';
import type { Plan, PlannedTenant } from '../../ir/contract/plan.js';
import { randomF32 } from '../native/helpers.js';

const F = 4;
export const K = 8;
export const N = 5;

function info(stage: number, label: string, tenants: number[]): LaunchInfo {
  return { stage, label, tenants, sources: [], flops: 0, bytes: 0, predictedUs: 1, ungroupedUs: 1 };
}

export interface HandPlan {
  readonly plan: Plan;
  readonly w: Float32Array[]; // per tenant [K, N]
  readonly bias: Float32Array[]; // a, b: [N]
}

export function handPlan(bigGemm = 0): HandPlan {
  const w = [0, 1, 2].map((t) => randomF32(K * N, 100 + t));
  const bias = [0, 1].map((t) => randomF32(N, 200 + t));
  // weights arena: W_a W_b (packed: uniform stride) | bias_a bias_b | W_c
  const wOff = [0, K * N * F, 2 * K * N * F];
  const bOff = [3 * K * N * F, 3 * K * N * F + N * F];
  const weightsBytes = 3 * K * N * F + 2 * N * F;
  // io: x_a x_b x_c y_a y_b y_c
  const xBytes = [4 * K * F, 4 * K * F, K * 3 * F];
  const xOff = [0, xBytes[0]!, xBytes[0]! + xBytes[1]!];
  const yOff0 = xOff[2]! + xBytes[2]!;
  const yBytes = [4 * N * F, 4 * N * F, 3 * N * F];
  const yOff = [yOff0, yOff0 + yBytes[0]!, yOff0 + yBytes[0]! + yBytes[1]!];
  const ioBytes = yOff[2]! + yBytes[2]!;
  // act: h_a h_b h_c (gemm results)
  const hOff = [0, 4 * N * F, 8 * N * F];
  let actBytes = 11 * N * F;
  const tenant = (id: string, t: number): PlannedTenant => ({
    id,
    model: `${id}.onnx`,
    maxBatch: t === 2 ? 3 : 4,
    sloMs: null,
    layers: 2,
    inputs: [
      { name: 'x', dtype: 'f32', shape: t === 2 ? [K, 3] : [4, K], batchAxis: t === 2 ? 1 : 0, ref: { arena: 'io', offset: xOff[t]! }, bytes: xBytes[t]! },
    ],
    outputs: [{ name: 'y', dtype: 'f32', shape: t === 2 ? [3, N] : [4, N], batchAxis: 0, ref: { arena: 'io', offset: yOff[t]! }, bytes: yBytes[t]! }],
  });
  const launches: Launch[] = [
    {
      kind: 'gemm',
      id: 0,
      dtype: 'f32',
      info: info(0, 'gemm 4x5x8 (2 tenants)', [0, 1]),
      problem: {
        m: 4,
        n: N,
        k: K,
        transA: false,
        transB: false,
        lda: K,
        ldb: N,
        ldc: N,
        alpha: 1,
        beta: 1,
        bias: 'row',
        ldBias: 0,
        activation: { kind: 'relu' },
      },
      entries: [0, 1].map((t) => ({
        tenant: t,
        a: { arena: 'io' as const, offset: xOff[t]! },
        b: { arena: 'weights' as const, offset: wOff[t]! },
        c: { arena: 'act' as const, offset: hOff[t]! },
        bias: { arena: 'weights' as const, offset: bOff[t]! },
      })),
      strides: { a: xBytes[0]!, b: K * N * F, c: 4 * N * F, bias: N * F },
    },
    {
      kind: 'gemm',
      id: 1,
      dtype: 'f32',
      info: info(0, 'gemm 3x5x8 (1 tenant)', [2]),
      problem: { m: 3, n: N, k: K, transA: true, transB: false, lda: 3, ldb: N, ldc: N, alpha: 1, beta: 1, bias: 'none', ldBias: 0, activation: null },
      entries: [
        { tenant: 2, a: { arena: 'io', offset: xOff[2]! }, b: { arena: 'weights', offset: wOff[2]! }, c: { arena: 'act', offset: hOff[2]! }, bias: null },
      ],
      strides: null,
    },
  ];
  if (bigGemm > 0) {
    // A large GEMM on scratch act memory (zeros): makes a tick long enough to watch the event loop.
    const big = actBytes;
    actBytes += 3 * bigGemm * bigGemm * F;
    launches.push({
      kind: 'gemm',
      id: 2,
      dtype: 'f32',
      info: info(0, 'big', [0]),
      problem: {
        m: bigGemm,
        n: bigGemm,
        k: bigGemm,
        transA: false,
        transB: true,
        lda: bigGemm,
        ldb: bigGemm,
        ldc: bigGemm,
        alpha: 1,
        beta: 1,
        bias: 'none',
        ldBias: 0,
        activation: null,
      },
      entries: [
        {
          tenant: 0,
          a: { arena: 'act', offset: big },
          b: { arena: 'act', offset: big + bigGemm * bigGemm * F },
          c: { arena: 'act', offset: big + 2 * bigGemm * bigGemm * F },
          bias: null,
        },
      ],
      strides: null,
    });
  }
  launches.push({
    kind: 'kernel',
    id: launches.length,
    kernel: 'scale2',
    op: { op: 'eltwise', program: [{ op: 'in', i: 0 }, { op: 'const', v: 2 }, { op: 'mul' }], computeF32: true },
    info: info(1, 'eltwise (3 tenants)', [0, 1, 2]),
    segments: [0, 1, 2].map((t) => {
      const rows = t === 2 ? 3 : 4;
      return {
        tenant: t,
        shape: [rows, N],
        inputs: [{ ref: { arena: 'act' as const, offset: hOff[t]! }, dtype: 'f32' as const, strides: [N, 1] }],
        out: { arena: 'io' as const, offset: yOff[t]! },
        outDType: 'f32' as const,
      };
    }),
  });
  const weights = [
    ...[0, 1, 2].map((t) => ({ offset: wOff[t]!, tensor: makeTensor('f32', [K, N], w[t]) })),
    ...[0, 1].map((t) => ({ offset: bOff[t]!, tensor: makeTensor('f32', [N], bias[t]) })),
  ];
  const plan: Plan = {
    precision: 'fp32',
    tenants: [tenant('a', 0), tenant('b', 1), tenant('c', 2)],
    launches,
    stages: 2,
    arenas: { weights: weightsBytes, act: actBytes, io: ioBytes, actWithoutReuse: actBytes },
    weights,
    cost: { predictedTickUs: 3, ungroupedTickUs: 4, floorUs: 1, device: 'test' },
  };
  return { plan, w, bias };
}

// The tenants' math in plain TS. x row-major as given (c: [K, rows]).
export function expected(h: HandPlan, t: number, x: Float32Array, rows: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < N; j++) {
      let acc = 0;
      for (let q = 0; q < K; q++) acc += (t === 2 ? x[q * rows + i]! : x[i * K + q]!) * h.w[t]![q * N + j]!;
      if (t < 2) acc = Math.max(0, acc + h.bias[t]![j]!);
      out.push(2 * acc);
    }
  }
  return out;
}
