// Hand-built GEMM plans for the CUDA GEMM tests (cuda-gemm.test.ts, cuda-gemm-fused.test.ts): operands laid
// out in the arenas by hand (A and C in io, B and bias in weights; A and B in the launch's dtype, bf16/f16 as
// raw bits), run on one backend per call with LOOM_CUDA_* set only around the backend's creation.
import { expect } from 'vitest';
import { f32ToBf16, f32ToF16 } from '../../ir/dtype.js';
import type { Activation } from '../../ir/ops/activation.js';
import type { ArenaId, GEMM_DTYPES, GemmEntry, GemmProblem, Launch, Ref } from '../../ir/contract/launch.js';
import { type BackendEnv, withBackendEnv } from '../../runtime/backend-env.js';
import { loadNativeAddon } from '../../runtime/native-addon.js';
import { info, maxRelError, randomF32 } from '../native/helpers.js';

export const F = 4; // bytes per f32

export type GemmDType = (typeof GEMM_DTYPES)[number];
export type Env = BackendEnv;
export type Stats = Record<string, string | number>;

export function elemBytes(dtype: GemmDType): number {
  return dtype === 'f32' ? 4 : 2;
}

// `data` stored as `dtype` (bf16/f16: round to nearest even, as the compiler stores half weights).
export function stored(data: Float32Array, dtype: GemmDType): Float32Array | Uint16Array {
  if (dtype === 'f32') return data;
  const conv = dtype === 'bf16' ? f32ToBf16 : f32ToF16;
  return Uint16Array.from(data, (v) => conv(v));
}

export class Hand {
  readonly sizes: Record<ArenaId, number> = { weights: 0, act: 0, io: 0 };
  readonly inits: Array<{ ref: Ref; bytes: Uint8Array }> = [];
  readonly launches: Launch[] = [];
  tenants = 8;
  // Tenants with (empty) I/O slot lists: the plan has a slot table, so the CUDA backend can run sparse ticks.
  ioSlots = false;

  // `count` elements of `bytesPer` bytes, 64-byte aligned.
  alloc(arena: ArenaId, count: number, init?: Float32Array | Uint16Array, bytesPer = F): Ref {
    const offset = Math.ceil(this.sizes[arena] / 64) * 64;
    this.sizes[arena] = offset + Math.max(1, count) * bytesPer;
    const ref = { arena, offset };
    if (init) this.inits.push({ ref, bytes: new Uint8Array(init.buffer, init.byteOffset, init.byteLength) });
    return ref;
  }

  // Runs the launches once on `backend`; returns the io arena as floats plus the backend's report.
  async run(backend: 'cpu' | 'cuda', precision: 'fp32' | 'tf32' = 'fp32', env: Env = {}): Promise<{ io: Float32Array; stats: Stats }> {
    const r = await this.runTicks(backend, [new Uint8Array(this.tenants).fill(1)], precision, env);
    return { io: r.ticks[0]!, stats: r.stats };
  }

  // One tick per mask on one backend instance (`env` is set only around its creation); the io arena after each.
  async runTicks(
    backend: 'cpu' | 'cuda',
    masks: readonly Uint8Array[],
    precision: 'fp32' | 'tf32' = 'fp32',
    env: Env = {},
  ): Promise<{ ticks: Float32Array[]; stats: Stats }> {
    const addon = loadNativeAddon();
    const weights = new Uint8Array(this.sizes.weights);
    for (const i of this.inits) if (i.ref.arena === 'weights') weights.set(i.bytes, i.ref.offset);
    const tenants = Array.from({ length: this.tenants }, (_, i) => (this.ioSlots ? { id: `t${i}`, inputs: [], outputs: [] } : { id: `t${i}` }));
    const plan = { arenas: { ...this.sizes }, tenants, launches: this.launches };
    const handle = await withBackendEnv(env, () => addon.create(plan, weights, backend === 'cuda' ? { backend, precision } : { backend, threads: 4 }));
    try {
      const ins = this.inits.filter((i) => i.ref.arena === 'io').map((i) => ({ offset: i.ref.offset, data: i.bytes.slice() }));
      const ticks: Float32Array[] = [];
      for (const mask of masks) {
        const out = await addon.runTick(handle, ins, [{ offset: 0, bytes: this.sizes.io }], mask);
        ticks.push(new Float32Array(out[0]!.buffer.slice(out[0]!.byteOffset, out[0]!.byteOffset + out[0]!.byteLength)));
      }
      return { ticks, stats: addon.handleInfo(handle) };
    } finally {
      addon.destroy(handle);
    }
  }
}

export function problem(
  m: number,
  n: number,
  k: number,
  transA: boolean,
  transB: boolean,
  bias: GemmProblem['bias'],
  activation: Activation | null,
  pad = 3,
  beta = 0.75,
): GemmProblem {
  return {
    m,
    n,
    k,
    transA,
    transB,
    lda: (transA ? m : k) + pad,
    ldb: (transB ? k : n) + pad,
    ldc: n + pad,
    alpha: 1.5,
    beta,
    bias,
    ldBias: bias === 'full' ? n + 2 : 0,
    activation,
  };
}

export function biasLength(p: GemmProblem): number {
  return p.bias === 'row' ? p.n : p.bias === 'col' ? p.m : p.bias === 'full' ? (p.m - 1) * p.ldBias + p.n : 0;
}

// One entry's operands, laid out in the arenas (A in io, B and bias in weights, C and a residual in io).
export function entry(h: Hand, p: GemmProblem, tenant: number, seed: number, dtype: GemmDType = 'f32'): GemmEntry {
  const es = elemBytes(dtype);
  const aLen = (p.transA ? p.k : p.m) * p.lda,
    bLen = (p.transB ? p.n : p.k) * p.ldb;
  const a = h.alloc('io', aLen, stored(randomF32(aLen, seed), dtype), es);
  const b = h.alloc('weights', bLen, stored(randomF32(bLen, seed + 1), dtype), es);
  const bias = p.bias === 'none' ? null : h.alloc('weights', biasLength(p), randomF32(biasLength(p), seed + 2));
  const c = h.alloc('io', p.m * p.ldc);
  if (!p.residual) return { tenant, a, b, c, bias };
  return { tenant, a, b, c, bias, residual: h.alloc('io', p.m * p.ldc, randomF32(p.m * p.ldc, seed + 3)) };
}

// p with a residual addend (a folded Add: every entry adds its own [m, n] residual, leading dim ldc).
export function withResidual(p: GemmProblem): GemmProblem {
  return { ...p, residual: true };
}

// `count` entries whose operands lie back to back (A and C in io, B and bias in weights): a strided launch.
export function stridedLaunch(
  h: Hand,
  id: number,
  p: GemmProblem,
  count: number,
  seed: number,
  tenantOf: (i: number) => number,
  dtype: GemmDType = 'f32',
): Launch {
  const es = elemBytes(dtype);
  const aLen = (p.transA ? p.k : p.m) * p.lda,
    bLen = (p.transB ? p.n : p.k) * p.ldb,
    cLen = p.m * p.ldc,
    biasLen = biasLength(p);
  const A = h.alloc('io', count * aLen, stored(randomF32(count * aLen, seed), dtype), es);
  const B = h.alloc('weights', count * bLen, stored(randomF32(count * bLen, seed + 1), dtype), es);
  const bias = biasLen ? h.alloc('weights', count * biasLen, randomF32(count * biasLen, seed + 2)) : null;
  const C = h.alloc('io', count * cLen);
  const R = p.residual ? h.alloc('io', count * cLen, randomF32(count * cLen, seed + 3)) : null;
  const entries = Array.from({ length: count }, (_, i) => ({
    tenant: tenantOf(i),
    a: { arena: 'io' as const, offset: A.offset + i * aLen * es },
    b: { arena: 'weights' as const, offset: B.offset + i * bLen * es },
    c: { arena: 'io' as const, offset: C.offset + i * cLen * F },
    bias: bias && { arena: 'weights' as const, offset: bias.offset + i * biasLen * F },
    ...(R ? { residual: { arena: 'io' as const, offset: R.offset + i * cLen * F } } : {}),
  }));
  return {
    kind: 'gemm',
    id,
    dtype,
    problem: p,
    entries,
    strides: { a: aLen * es, b: bLen * es, c: cLen * F, bias: biasLen * F },
    info: info(`strided${id}`),
  };
}

export const ACTS: Array<Activation | null> = [
  null,
  { kind: 'relu' },
  { kind: 'sigmoid' },
  { kind: 'tanh' },
  { kind: 'gelu_erf' },
  { kind: 'gelu_tanh' },
  { kind: 'leaky_relu', alpha: 0.1 },
  { kind: 'clip', min: -0.5, max: 0.5 },
  { kind: 'hard_sigmoid', alpha: 0.2, beta: 0.5 },
  { kind: 'hard_swish' },
];

// Runs the plan on the CPU and (as one captured graph) on the GPU; their io arenas within `tol`.
export async function compare(h: Hand, tol = 1e-5, env: Env = {}, precision: 'fp32' | 'tf32' = 'fp32'): Promise<Stats> {
  const cpu = await h.run('cpu');
  const gpu = await h.run('cuda', precision, env);
  expect(gpu.stats.graph, String(gpu.stats.graphNote ?? '')).toBe(1);
  expect(maxRelError(Array.from(gpu.io), Array.from(cpu.io)), String(gpu.stats.gemmPaths ?? '')).toBeLessThanOrEqual(tol);
  expect(gpu.io.some((v) => Number.isNaN(v))).toBe(false);
  return gpu.stats;
}
