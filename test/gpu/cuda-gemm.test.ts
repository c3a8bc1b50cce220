// The CUDA backend's GEMM paths on hand-built plans, against the CPU backend on the same plan: single
// entries (strided call, batch 1), uniformly strided entry lists (cublasGemmStridedBatchedEx), entry lists
// without strides (cublasGemmBatchedEx over device pointer arrays), gemm_grouped (cublasGemmGroupedBatchedEx),
// every transpose combination, bias mode and activation epilogue, k = 0, and tf32 vs true fp32.
import { describe, expect, it } from 'vitest';
import type { Activation } from '../../ir/ops/activation.js';
import { loadNativeAddon } from '../../runtime/native-addon.js';
import type { ArenaId, GemmEntry, GemmProblem, Launch, Ref } from '../../src/planner/launch.js';
import { info, maxRelError, randomF32 } from '../native/helpers.js';
import { GPU_SKIP_REASON } from './gpu-env.js';

const F = 4; // bytes per f32

class Hand {
  readonly sizes: Record<ArenaId, number> = { weights: 0, act: 0, io: 0 };
  readonly inits: Array<{ ref: Ref; data: Float32Array }> = [];
  readonly launches: Launch[] = [];
  tenants = 8;

  alloc(arena: ArenaId, count: number, init?: Float32Array): Ref {
    const offset = Math.ceil(this.sizes[arena] / 64) * 64;
    this.sizes[arena] = offset + Math.max(1, count) * F;
    const ref = { arena, offset };
    if (init) this.inits.push({ ref, data: init });
    return ref;
  }

  // Runs the launches once on `backend`; returns the io arena as floats plus the backend's report.
  async run(backend: 'cpu' | 'cuda', precision: 'fp32' | 'tf32' = 'fp32'): Promise<{ io: Float32Array; stats: Record<string, string | number> }> {
    const addon = loadNativeAddon();
    const weights = new Uint8Array(this.sizes.weights);
    for (const i of this.inits) if (i.ref.arena === 'weights') weights.set(new Uint8Array(i.data.buffer, i.data.byteOffset, i.data.byteLength), i.ref.offset);
    const plan = { arenas: { ...this.sizes }, tenants: Array.from({ length: this.tenants }, (_, i) => ({ id: `t${i}` })), launches: this.launches };
    const handle = addon.create(plan, weights, backend === 'cuda' ? { backend, precision } : { backend, threads: 4 });
    try {
      const ins = this.inits.filter((i) => i.ref.arena === 'io').map((i) => ({ offset: i.ref.offset, data: new Uint8Array(i.data.buffer.slice(i.data.byteOffset, i.data.byteOffset + i.data.byteLength)) }));
      const out = await addon.runTick(handle, ins, [{ offset: 0, bytes: this.sizes.io }], new Uint8Array(this.tenants).fill(1));
      return { io: new Float32Array(out[0]!.buffer.slice(out[0]!.byteOffset, out[0]!.byteOffset + out[0]!.byteLength)), stats: addon.handleInfo(handle) };
    } finally {
      addon.destroy(handle);
    }
  }
}

function problem(m: number, n: number, k: number, transA: boolean, transB: boolean, bias: GemmProblem['bias'], activation: Activation | null, pad = 3): GemmProblem {
  return {
    m, n, k, transA, transB,
    lda: (transA ? m : k) + pad, ldb: (transB ? k : n) + pad, ldc: n + pad,
    alpha: 1.5, beta: 0.75, bias, ldBias: bias === 'full' ? n + 2 : 0, activation,
  };
}

function biasLength(p: GemmProblem): number {
  return p.bias === 'row' ? p.n : p.bias === 'col' ? p.m : p.bias === 'full' ? (p.m - 1) * p.ldBias + p.n : 0;
}

// One entry's operands, laid out in the arenas (A in io, B and bias in weights, C in io).
function entry(h: Hand, p: GemmProblem, tenant: number, seed: number): GemmEntry {
  const a = h.alloc('io', (p.transA ? p.k : p.m) * p.lda, randomF32((p.transA ? p.k : p.m) * p.lda, seed));
  const b = h.alloc('weights', (p.transB ? p.n : p.k) * p.ldb, randomF32((p.transB ? p.n : p.k) * p.ldb, seed + 1));
  const bias = p.bias === 'none' ? null : h.alloc('weights', biasLength(p), randomF32(biasLength(p), seed + 2));
  const c = h.alloc('io', p.m * p.ldc);
  return { tenant, a, b, c, bias };
}

const ACTS: Array<Activation | null> = [
  null, { kind: 'relu' }, { kind: 'sigmoid' }, { kind: 'tanh' }, { kind: 'gelu_erf' }, { kind: 'gelu_tanh' },
  { kind: 'leaky_relu', alpha: 0.1 }, { kind: 'clip', min: -0.5, max: 0.5 }, { kind: 'hard_sigmoid', alpha: 0.2, beta: 0.5 }, { kind: 'hard_swish' },
];

async function compare(h: Hand, tol = 1e-5): Promise<Record<string, string | number>> {
  const cpu = await h.run('cpu');
  const gpu = await h.run('cuda');
  expect(gpu.stats.graph, String(gpu.stats.graphNote ?? '')).toBe(1);
  expect(maxRelError(Array.from(gpu.io), Array.from(cpu.io))).toBeLessThanOrEqual(tol);
  expect(gpu.io.some((v) => Number.isNaN(v))).toBe(false);
  return gpu.stats;
}

describe.skipIf(GPU_SKIP_REASON !== null)('CUDA gemm launches match the CPU backend', () => {
  it('every transpose combination x bias mode x activation (single entries)', async () => {
    const h = new Hand();
    let id = 0;
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        for (const bias of ['none', 'row', 'col', 'full'] as const) {
          for (const act of ACTS) {
            const p = problem(5 + id % 3, 17 + id % 5, 33, ta, tb, bias, act, id % 2);
            h.launches.push({ kind: 'gemm', id, dtype: 'f32', problem: p, entries: [entry(h, p, id % 8, 1000 + 10 * id)], strides: null, info: info(`g${id}`) });
            id++;
          }
        }
      }
    }
    const stats = await compare(h);
    expect(stats.cublasCalls).toBe(id);
  });

  it('strided entry lists, entry lists with pointer arrays, and k = 0', async () => {
    const h = new Hand();
    const R = 6;
    const p = problem(3, 40, 24, false, true, 'row', { kind: 'relu' }, 0);
    // uniformly strided: every operand packed back to back
    const aLen = p.m * p.lda, bLen = p.n * p.ldb, cLen = p.m * p.ldc;
    const A = h.alloc('io', R * aLen, randomF32(R * aLen, 1));
    const B = h.alloc('weights', R * bLen, randomF32(R * bLen, 2));
    const bias = h.alloc('weights', R * p.n, randomF32(R * p.n, 3));
    const Cs = h.alloc('io', R * cLen);
    const strided = Array.from({ length: R }, (_, t) => ({
      tenant: t,
      a: { arena: 'io' as const, offset: A.offset + t * aLen * F },
      b: { arena: 'weights' as const, offset: B.offset + t * bLen * F },
      c: { arena: 'io' as const, offset: Cs.offset + t * cLen * F },
      bias: { arena: 'weights' as const, offset: bias.offset + t * p.n * F },
    }));
    h.launches.push({ kind: 'gemm', id: 0, dtype: 'f32', problem: p, entries: strided, strides: { a: aLen * F, b: bLen * F, c: cLen * F, bias: p.n * F }, info: info('strided') });
    // the same operands in a shuffled order, each with its own C: pointer arrays
    const q = problem(7, 9, 31, true, false, 'full', { kind: 'gelu_erf' }, 2);
    const listed = [3, 0, 5, 1, 4, 2].map((t) => entry(h, q, t, 50 + t));
    h.launches.push({ kind: 'gemm', id: 1, dtype: 'f32', problem: q, entries: listed, strides: null, info: info('listed') });
    // k = 0: C = act(beta * bias)
    const z = { ...problem(2, 3, 0, false, false, 'row', { kind: 'tanh' }, 0), lda: 0, ldb: 3 };
    h.launches.push({ kind: 'gemm', id: 2, dtype: 'f32', problem: z, entries: [entry(h, z, 0, 90), entry(h, z, 1, 95)], strides: null, info: info('k0') });
    await compare(h);
  });

  it('gemm_grouped: problems of different shapes, several entries each, in one launch', async () => {
    const h = new Hand();
    const probs = [
      problem(3, 40, 20, false, true, 'row', null, 0),
      problem(5, 7, 64, true, false, 'none', { kind: 'tanh' }, 1),
      problem(1, 128, 96, false, false, 'col', { kind: 'relu' }, 0),
      problem(16, 33, 8, true, true, 'full', { kind: 'hard_swish' }, 4),
      problem(2, 2, 0, false, false, 'row', null, 0),
    ];
    let seed = 200;
    h.launches.push({
      kind: 'gemm_grouped', id: 0, dtype: 'f32', info: info('grouped'),
      groups: probs.map((p, g) => ({ problem: p.k === 0 ? { ...p, lda: 0 } : p, entries: Array.from({ length: 1 + (g % 3) }, (_, e) => entry(h, p, (g + e) % 8, (seed += 10))) })),
    });
    const stats = await compare(h);
    process.stdout.write(`gemm_grouped on the GPU: ${stats.groupedSplit ? `split per group (${String(stats.groupedNote)})` : 'one cublasGemmGroupedBatchedEx call'}\n`);
  });

  it('tf32 stays within 5e-3 of true fp32 on a deep product; fp32 within 1e-5', async () => {
    const h = new Hand();
    const p = problem(64, 300, 1024, false, false, 'row', null, 0);
    h.launches.push({ kind: 'gemm', id: 0, dtype: 'f32', problem: p, entries: [entry(h, p, 0, 7), entry(h, p, 1, 17)], strides: null, info: info('deep') });
    const cpu = await h.run('cpu');
    const fp32 = await h.run('cuda', 'fp32');
    const tf32 = await h.run('cuda', 'tf32');
    expect(tf32.stats.compute).toBe('CUBLAS_COMPUTE_32F_FAST_TF32');
    expect(fp32.stats.compute).toBe('CUBLAS_COMPUTE_32F');
    // errors relative to the output's magnitude (sums of 1024 products of [-1, 1] values)
    let mag = 0;
    for (const v of cpu.io) mag = Math.max(mag, Math.abs(v));
    const err = (x: Float32Array) => {
      let d = 0;
      for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i]! - cpu.io[i]!));
      return d / mag;
    };
    expect(err(fp32.io)).toBeLessThanOrEqual(1e-5);
    expect(err(tf32.io)).toBeLessThanOrEqual(5e-3);
    process.stdout.write(`deep gemm error vs CPU: fp32 ${err(fp32.io).toExponential(2)}, tf32 ${err(tf32.io).toExponential(2)}\n`);
  });
});
