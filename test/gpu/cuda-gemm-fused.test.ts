// GEMM epilogues fused into the GEMM on the CUDA backend, against the CPU backend on the same hand-built plan:
//  - the skinny-GEMM kernel's store (LOOM_CUDA_GEMV=force) applying every bias mode x beta x activation, a
//    residual addend on every third launch, f32 / bf16 / f16, one entry / strided entries / pointer arrays: the
//    same bits as the kernel followed by the epilogue launch (LOOM_CUDA_FUSE=never), on full ticks and on masked
//    (sparse) ticks;
//  - cuBLASLt (LOOM_CUDA_LT=force) for strided launches, with the epilogue fused where cuBLASLt expresses it
//    exactly (row bias with beta 1, full bias or a residual as C, relu; gelu_tanh for tf32 / bf16 / f16 only),
//    the rest by the epilogue kernel; fp32, tf32, bf16, f16; aligned and odd leading dims;
//  - the tiled kernel's store (LOOM_CUDA_TILE=force) for f32 launches of any rows (a conv's per-channel bias
//    above the skinny kernel's 16 rows), every bias mode x activation, residuals, one entry / strided / pointer
//    arrays;
//  - the transposed form (LOOM_CUDA_GEMV_SWAP) for GEMMs past 16 rows with <= 16 columns, f32 / bf16 / f16;
//  - the default choice (auto) on a 64-tenant 3-layer MLP at batch 1: three GEMM launches, no epilogue launch.
import { describe, expect, it } from 'vitest';
import type { Activation } from '../../ir/ops/activation.js';
import { GEMM_BIAS_MODES, GEMM_DTYPES, type GemmProblem, type Launch } from '../../ir/contract/launch.js';
import { info, maxRelError } from '../native/helpers.js';
import { ACTS, F, type GemmDType, Hand, type Stats, compare, elemBytes, entry, problem, stridedLaunch, withResidual } from './gemm-hand.js';
import { GPU_SKIP_REASON } from './gpu-env.js';

const SKINNY = { LOOM_CUDA_GEMV: 'force', LOOM_CUDA_LT: 'off', LOOM_CUDA_TILE: 'off' };
const TILED = { LOOM_CUDA_TILE: 'force', LOOM_CUDA_LT: 'off', LOOM_CUDA_FUSE: 'force' };
const LT = { LOOM_CUDA_GEMV: 'off', LOOM_CUDA_LT: 'force', LOOM_CUDA_TILE: 'off' };

function needsEpilogue(p: GemmProblem): boolean {
  return p.bias !== 'none' || p.activation !== null || p.residual === true;
}

// Whether cuBLASLt applies this launch's epilogue itself (backend_cuda_lt.cc): relu, or gelu_tanh off true fp32;
// a row bias only with beta 1, a full bias as C, never a col bias; a residual as C, so never beside a full bias.
function ltFuses(p: GemmProblem, trueFp32: boolean): boolean {
  const act = p.activation?.kind;
  const actOk = act === undefined || act === 'relu' || (act === 'gelu_tanh' && !trueFp32);
  const biasOk = p.bias === 'none' || (p.bias === 'full' && !p.residual) || (p.bias === 'row' && p.beta === 1);
  return needsEpilogue(p) && actOk && biasOk;
}

// The io offsets of every C element of the launches' entries whose tenant is live in `mask`.
function liveOutputs(h: Hand, mask: Uint8Array): number[] {
  const at: number[] = [];
  for (const l of h.launches) {
    if (l.kind !== 'gemm') continue;
    for (const e of l.entries) {
      if (!mask[e.tenant]) continue;
      for (let r = 0; r < l.problem.m; r++) for (let j = 0; j < l.problem.n; j++) at.push(e.c.offset / F + r * l.problem.ldc + j);
    }
  }
  return at;
}

function firstDifference(a: Float32Array, b: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

// Launch `id` of problem p in one of three entry forms, by `seed` % 3: one entry, 5 strided entries, or 4 entries
// through pointer arrays (their tenants and operand seeds derived from `seed`).
function pushInForm(h: Hand, id: number, seed: number, p: GemmProblem, dtype: GemmDType): void {
  if (seed % 3 === 0) {
    h.launches.push({ kind: 'gemm', id, dtype, problem: p, entries: [entry(h, p, seed % 8, 100 + 10 * seed, dtype)], strides: null, info: info(`one${seed}`) });
  } else if (seed % 3 === 1) {
    h.launches.push(stridedLaunch(h, id, p, 5, 300 + 10 * seed, (i) => (i + seed) % 8, dtype));
  } else {
    const entries = [6, 1, 4, 0].map((t) => entry(h, p, t, 600 + 10 * seed + t, dtype));
    h.launches.push({ kind: 'gemm', id, dtype, problem: p, entries, strides: null, info: info(`listed${seed}`) });
  }
}

function report(what: string, s: Stats): void {
  process.stdout.write(`${what}: ${String(s.gemmPathsNote)}\n  ${String(s.gemmPaths ?? '')}\n`);
}

describe.skipIf(GPU_SKIP_REASON !== null)('CUDA: the skinny-GEMM kernel with the epilogue in its store', () => {
  for (const dtype of GEMM_DTYPES) {
    it(`${dtype}: every bias mode x beta x activation, one entry / strided / pointer arrays: the unfused bits, the CPU's values`, async () => {
      const h = new Hand();
      let id = 0;
      let withEpilogue = 0;
      for (const bias of GEMM_BIAS_MODES) {
        for (const act of ACTS) {
          const m = [1, 3, 16][Math.floor(id / 3) % 3]!;
          // k over two of the kernel's 256-wide tiles on some, n over several column blocks; both kernels (trans_b)
          const q = problem(m, 10 + (id % 7) * 9, 37 + (id % 5) * 60, false, id % 2 === 0, bias, act, id % 2, id % 4 === 0 ? 1 : 0.75);
          const p = id % 3 === 2 ? withResidual(q) : q; // the three entry forms (pushInForm) all meet a residual
          pushInForm(h, id, id, p, dtype);
          withEpilogue += needsEpilogue(p) ? 1 : 0;
          id++;
        }
      }
      const cpu = await h.run('cpu');
      const fused = await h.run('cuda', 'fp32', { ...SKINNY, LOOM_CUDA_FUSE: 'force' });
      const plain = await h.run('cuda', 'fp32', { ...SKINNY, LOOM_CUDA_FUSE: 'never' });
      report(`skinny kernel ${dtype}, fused`, fused.stats);
      for (const r of [fused, plain]) {
        expect(r.stats.graph, String(r.stats.graphNote ?? '')).toBe(1);
        expect(r.stats.gemvCalls).toBe(id);
        expect(r.stats.ltCalls).toBe(0);
      }
      expect(fused.stats.fusedEpilogues).toBe(withEpilogue);
      expect(fused.stats.epilogueLaunches).toBe(0);
      expect(plain.stats.fusedEpilogues).toBe(0);
      expect(plain.stats.epilogueLaunches).toBe(withEpilogue);
      // the same math in the same order (alpha · sum rounded on its own, then backend_cuda_activation.cuh)
      expect(firstDifference(fused.io, plain.io), 'first io float where fused and unfused differ').toBe(-1);
      // the kernel sums k in another order than the CPU's packed sgemm (see cuda-gemm.test.ts)
      expect(maxRelError(Array.from(fused.io), Array.from(cpu.io))).toBeLessThanOrEqual(5e-5);
      expect(fused.io.some((v) => Number.isNaN(v))).toBe(false);
    });
  }

  for (const dtype of GEMM_DTYPES) {
    it(`${dtype}: the 16-byte-load form and the split-k kernel (W rows, 1-4 rows, aligned rows; one unaligned call): the CPU's values, the staged kernel's to rounding`, async () => {
      const h = new Hand();
      let id = 0;
      for (const m of [1, 2, 3, 4]) {
        // k: a tail past the last 32 x 16-byte step (784), whole steps (1,024 f32 / 512 of 16-bit: 136 is neither), one vector
        for (const k of [784, 512, 136, 8]) {
          const bias = GEMM_BIAS_MODES[id % GEMM_BIAS_MODES.length]!;
          const q = problem(m, [10, 50, 3][id % 3]!, k, false, true, bias, ACTS[id % ACTS.length]!, 0); // pad 0: 16-byte-aligned rows
          pushInForm(h, id, id, id % 4 === 3 ? withResidual(q) : q, dtype);
          id++;
        }
      }
      pushInForm(h, id, id, problem(2, 20, 100, false, true, 'row', null, 1), dtype); // rows 4-byte aligned: the scalar loop
      id++;
      // the calls above are a few CTAs' worth: the split-k kernel takes them; 64 entries x 300 columns (1,216 CTAs) is
      // the 16-byte form's
      const wp = problem(2, 300, 784, false, true, 'row', { kind: 'relu' }, 0);
      const wide = stridedLaunch(h, id, wp, 64, 990, (i) => i % 8, dtype);
      if (wide.kind !== 'gemm') throw new Error('stridedLaunch makes gemm launches');
      h.launches.push(wide);
      id++;
      const cpu = await h.run('cpu');
      const vec = await h.run('cuda', 'fp32', { ...SKINNY, LOOM_CUDA_FUSE: 'force' });
      const staged = await h.run('cuda', 'fp32', { ...SKINNY, LOOM_CUDA_FUSE: 'force', LOOM_CUDA_GEMV_VEC: 'off' });
      const c0 = wide.entries[0]!.c.offset / F;
      const wideC = (io: Float32Array) => io.subarray(c0, c0 + 64 * 2 * wp.ldc);
      expect(firstDifference(wideC(vec.io), wideC(staged.io)), 'the 16-byte form ran on the wide launch').not.toBe(-1);
      for (const r of [vec, staged]) {
        expect(r.stats.gemvCalls).toBe(id);
        expect(r.stats.epilogueLaunches).toBe(0);
        expect(maxRelError(Array.from(r.io), Array.from(cpu.io))).toBeLessThanOrEqual(5e-5);
        expect(r.io.some((v) => Number.isNaN(v))).toBe(false);
      }
      // the two forms sum k in different orders: some bits differ where the 16-byte form ran
      expect(firstDifference(vec.io, staged.io), 'the 16-byte form ran (its sums differ in the last bits)').not.toBe(-1);
      expect(maxRelError(Array.from(vec.io), Array.from(staged.io))).toBeLessThanOrEqual(5e-5);
    });
  }

  for (const dtype of GEMM_DTYPES) {
    it(`${dtype}: the transposed form (past 16 rows, 1-16 columns: a conv's GEMM over a few positions; A either way): the CPU's values, the unfused bits`, async () => {
      const h = new Hand();
      let id = 0;
      for (const n of [1, 4, 9, 16]) {
        for (const m of [40, 300]) {
          // k over several of the kernel's 128-wide steps on every other; A untransposed (the conv: W [cout x k]) and
          // transposed; B's leading dim padded by 0 or 3: X read 16 bytes at a time where whole, else one by one
          const transA = id % 4 === 3;
          const bias = GEMM_BIAS_MODES[id % GEMM_BIAS_MODES.length]!;
          const q = problem(m, n, [37, 600][id % 2]!, transA, false, bias, ACTS[(3 * id) % ACTS.length]!, [0, 3][id % 2], id % 2 === 0 ? 1 : 0.75);
          pushInForm(h, id, id, id % 3 === 1 ? withResidual(q) : q, dtype);
          id++;
        }
      }
      // at most 16 rows but A transposed: only the transposed form takes it
      pushInForm(h, id, id, problem(8, 5, 70, true, false, 'col', { kind: 'relu' }, 1), dtype);
      id++;
      const cpu = await h.run('cpu');
      const fused = await h.run('cuda', 'fp32', { ...SKINNY, LOOM_CUDA_FUSE: 'force' });
      const plain = await h.run('cuda', 'fp32', { ...SKINNY, LOOM_CUDA_FUSE: 'never' });
      report(`skinny kernel ${dtype}, transposed`, fused.stats);
      for (const r of [fused, plain]) {
        expect(r.stats.gemvCalls).toBe(id);
        expect(String(r.stats.gemmPaths)).toContain('skinny kernel, transposed');
        expect(maxRelError(Array.from(r.io), Array.from(cpu.io))).toBeLessThanOrEqual(5e-5);
        expect(r.io.some((v) => Number.isNaN(v))).toBe(false);
      }
      expect(fused.stats.epilogueLaunches).toBe(0);
      expect(firstDifference(fused.io, plain.io), 'first io float where fused and unfused differ').toBe(-1);
      // LOOM_CUDA_GEMV_SWAP=off: no launch here is the kernel's untransposed
      const off = await h.run('cuda', 'fp32', { ...SKINNY, LOOM_CUDA_GEMV_SWAP: 'off' });
      expect(off.stats.gemvCalls).toBe(0);
      expect(maxRelError(Array.from(off.io), Array.from(cpu.io))).toBeLessThanOrEqual(5e-5);
    });
  }

  it('LOOM_CUDA_GEMV_VEC and LOOM_CUDA_GEMV_SWAP refuse values other than auto and off', async () => {
    const h = new Hand();
    pushInForm(h, 0, 0, problem(1, 8, 16, false, true, 'none', null, 0), 'f32');
    await expect(h.run('cuda', 'fp32', { LOOM_CUDA_GEMV_VEC: 'on' })).rejects.toThrow(/LOOM_CUDA_GEMV_VEC/);
    await expect(h.run('cuda', 'fp32', { LOOM_CUDA_GEMV_SWAP: 'yes' })).rejects.toThrow(/LOOM_CUDA_GEMV_SWAP/);
  });

  it('masked ticks (LOOM_CUDA_SPARSE=always): the fused kernel over a contiguous run, scattered tenants (bias, residual pointer arrays)', async () => {
    const h = new Hand();
    h.tenants = 64;
    h.ioSlots = true;
    h.launches.push(stridedLaunch(h, 0, problem(3, 40, 70, false, true, 'row', { kind: 'gelu_erf' }, 1), 64, 11, (i) => i));
    h.launches.push(stridedLaunch(h, 1, withResidual(problem(2, 33, 45, false, false, 'full', { kind: 'hard_swish' }, 0)), 64, 21, (i) => i));
    const q = withResidual(problem(16, 24, 50, false, false, 'col', { kind: 'relu' }, 0));
    const listed = Array.from({ length: 64 }, (_, i) => entry(h, q, 63 - i, 1000 + 3 * i));
    h.launches.push({ kind: 'gemm', id: 2, dtype: 'f32', problem: q, entries: listed, strides: null, info: info('listed') });
    // the transposed form (a conv over 4 positions): strided, so a contiguous run stays strided, scattered tenants go
    // through pointer arrays (whose first two arrays trade roles)
    h.launches.push(stridedLaunch(h, 3, withResidual(problem(40, 4, 90, false, false, 'col', { kind: 'relu' }, 0)), 64, 31, (i) => i));
    const run = new Uint8Array(64).fill(1, 10, 17);
    const scattered = new Uint8Array(64).map((_, t) => (t % 9 === 0 ? 1 : 0));
    const masks = [run, run, scattered, scattered, new Uint8Array(64).fill(1)];
    const cpu = await h.run('cpu');
    const gpu = await h.runTicks('cuda', masks, 'fp32', { ...SKINNY, LOOM_CUDA_FUSE: 'force', LOOM_CUDA_SPARSE: 'always' });
    expect(gpu.stats.fusedEpilogues).toBe(4);
    expect(gpu.stats.epilogueLaunches).toBe(0);
    expect(gpu.stats.sparseTicks).toBe(4);
    expect(String(gpu.stats.gemmPaths)).toContain('skinny kernel, transposed');
    masks.forEach((mask, tick) => {
      const at = liveOutputs(h, mask);
      expect(at.length, `tick ${tick}`).toBeGreaterThan(0);
      const got = at.map((i) => gpu.ticks[tick]![i]!);
      const want = at.map((i) => cpu.io[i]!);
      expect(maxRelError(got, want), `tick ${tick}`).toBeLessThanOrEqual(1e-5);
    });
  });
});

describe.skipIf(GPU_SKIP_REASON !== null)('CUDA: the tiled kernel with the epilogue in its store', () => {
  it('f32, every bias mode x activation, rows past the skinny kernel, one entry / strided / pointer arrays: the CPU values, no epilogue launch', async () => {
    const h = new Hand();
    let id = 0;
    let withEpilogue = 0;
    for (const bias of GEMM_BIAS_MODES) {
      for (const act of ACTS) {
        const q = problem(
          [17, 40, 100, 3][id % 4]!,
          [9, 36, 70, 200][(id >> 1) % 4]!,
          [8, 33, 290][id % 3]!, // 290: ten of the kernel's 32-deep k steps, the last partial
          false,
          id % 2 === 0,
          bias,
          act,
          id % 2,
          id % 4 === 0 ? 1 : 0.75,
        );
        const p = id % 3 === 1 ? withResidual(q) : q;
        if (!needsEpilogue(p)) {
          id++;
          continue;
        }
        pushInForm(h, h.launches.length, id, p, 'f32');
        withEpilogue++;
        id++;
      }
    }
    const cpu = await h.run('cpu');
    const tiled = await h.run('cuda', 'fp32', TILED);
    report('tiled kernel f32', tiled.stats);
    expect(tiled.stats.graph, String(tiled.stats.graphNote ?? '')).toBe(1);
    expect(String(tiled.stats.gemmPathsNote)).toContain(`${withEpilogue} tiled kernel`);
    expect(tiled.stats.epilogueLaunches).toBe(0);
    expect(maxRelError(Array.from(tiled.io), Array.from(cpu.io))).toBeLessThanOrEqual(5e-5);
    expect(tiled.io.some((v) => Number.isNaN(v))).toBe(false);
  });

  // Split-K (LOOM_CUDA_SPLIT_K): each block of C as several CTAs over ranges of k, the last adding the partials.
  // Forced to 3 (2 where k has only two 32-deep steps, none at one step): uneven ranges, pointer arrays and strided
  // entries, a conv-like launch with few blocks (128 x 64 x 1152); ticks in a row (the counters must return to
  // zero), masked ticks (LOOM_CUDA_SPARSE=always: the compacted calls keep the split and its workspace).
  it('split-K: forced counts, every bias mode x activation, ticks in a row and masked: the CPU values', async () => {
    const h = new Hand();
    h.tenants = 8;
    h.ioSlots = true;
    let id = 0;
    for (const bias of GEMM_BIAS_MODES) {
      for (const act of ACTS) {
        const q = problem([17, 40, 100, 3][id % 4]!, [9, 36, 70][id % 3]!, [8, 33, 290][(id >> 1) % 3]!, false, id % 2 === 0, bias, act, id % 2, 0.75);
        const p = id % 3 === 1 ? withResidual(q) : q;
        if (needsEpilogue(p)) pushInForm(h, h.launches.length, id, p, 'f32');
        id++;
      }
    }
    const conv = withResidual(problem(128, 64, 1152, false, false, 'col', { kind: 'relu' }, 0));
    h.launches.push(stridedLaunch(h, h.launches.length, conv, 8, 7, (i) => i));
    const all = new Uint8Array(8).fill(1);
    const some = new Uint8Array(8).map((_, t) => (t % 3 === 0 ? 1 : 0));
    const cpu = await h.run('cpu');
    const gpu = await h.runTicks('cuda', [all, all, some, all], 'fp32', { ...TILED, LOOM_CUDA_SPLIT_K: '3', LOOM_CUDA_SPARSE: 'always' });
    report('tiled kernel, split-K forced to 3', gpu.stats);
    const paths = String(gpu.stats.gemmPaths);
    expect(paths).toContain('split-K 3');
    expect(paths).toContain('split-K 2');
    expect(Number(gpu.stats.splitKCalls)).toBeGreaterThan(h.launches.length / 2);
    expect(Number(gpu.stats.splitKBytes)).toBeGreaterThan(0);
    expect(String(gpu.stats.gemmPathsNote)).toContain('LOOM_CUDA_SPLIT_K forced');
    [all, all, some, all].forEach((mask, tick) => {
      const at = liveOutputs(h, mask);
      const got = at.map((i) => gpu.ticks[tick]![i]!);
      const want = at.map((i) => cpu.io[i]!);
      expect(maxRelError(got, want), `tick ${tick}`).toBeLessThanOrEqual(5e-5);
    });
  });

  it('split-K auto: timed where the blocks leave SMs idle, the CPU values; off: no split; a bad value is refused', async () => {
    const h = new Hand();
    const conv = problem(128, 64, 1152, false, false, 'col', { kind: 'relu' }, 0);
    h.launches.push(stridedLaunch(h, 0, conv, 2, 5, (i) => i)); // 4 x 2 blocks x 2 entries: 16 CTAs unsplit
    h.launches.push(stridedLaunch(h, 1, problem(256, 256, 1024, false, false, 'row', null, 0), 2, 9, (i) => i + 2));
    const cpu = await h.run('cpu');
    const auto = await h.run('cuda', 'fp32', TILED);
    report('tiled kernel, split-K auto', auto.stats);
    expect(maxRelError(Array.from(auto.io), Array.from(cpu.io))).toBeLessThanOrEqual(5e-5);
    const off = await h.run('cuda', 'fp32', { ...TILED, LOOM_CUDA_SPLIT_K: 'off' });
    expect(off.stats.splitKCalls).toBe(0);
    expect(String(off.stats.gemmPaths)).not.toContain('split-K');
    await expect(h.run('cuda', 'fp32', { ...TILED, LOOM_CUDA_SPLIT_K: '5' })).rejects.toThrow(/LOOM_CUDA_SPLIT_K must be auto, off, 2, 3, 4, 8 or 16, got '5'/);
  });
});

// Strided launches for cuBLASLt: every bias mode x {none, relu, gelu_tanh, sigmoid} x beta {1, 0.75}, a residual
// addend on every third, one entry and 6 strided entries alternating. `aligned`: dims and leading dims multiples of 16 elements (every
// operand 16-byte aligned or better); else odd pads (4-byte / 2-byte aligned operands).
function ltPlan(dtype: GemmDType, aligned: boolean): { h: Hand; launches: number; needed: number; gemm: GemmProblem[] } {
  const h = new Hand();
  const acts: Array<Activation | null> = [null, { kind: 'relu' }, { kind: 'gelu_tanh' }, { kind: 'sigmoid' }];
  const gemm: GemmProblem[] = [];
  let id = 0;
  for (const bias of GEMM_BIAS_MODES) {
    for (const act of acts) {
      for (const beta of [1, 0.75]) {
        const [m, n, k] = aligned ? [32, 48, 64] : [24 + (id % 5), 40 + (id % 7), 33 + (id % 11)];
        const pad = aligned ? (elemBytes(dtype) === 2 ? 16 : 0) : 1 + (id % 3);
        const q = { ...problem(m, n, k, id % 4 >= 2, id % 2 === 1, bias, act, pad, beta), ldBias: bias === 'full' ? n + (aligned ? 16 : 2) : 0 };
        const p = id % 3 === 2 ? withResidual(q) : q;
        if (id % 2 === 0) {
          h.launches.push({ kind: 'gemm', id, dtype, problem: p, entries: [entry(h, p, id % 8, 50 + 10 * id, dtype)], strides: null, info: info(`lt${id}`) });
        } else {
          h.launches.push(stridedLaunch(h, id, p, 6, 70 + 10 * id, (i) => i, dtype));
        }
        gemm.push(p);
        id++;
      }
    }
  }
  return { h, launches: id, needed: gemm.filter(needsEpilogue).length, gemm };
}

describe.skipIf(GPU_SKIP_REASON !== null)('CUDA: cuBLASLt for strided launches, epilogues fused where exact', () => {
  const cases: Array<{ dtype: GemmDType; precision: 'fp32' | 'tf32'; tol: number }> = [
    { dtype: 'f32', precision: 'fp32', tol: 1e-4 },
    { dtype: 'f32', precision: 'tf32', tol: 5e-3 },
    { dtype: 'bf16', precision: 'fp32', tol: 5e-3 }, // products exact; cuBLASLt's GELU is an approximation of tanhf's
    { dtype: 'f16', precision: 'fp32', tol: 5e-3 },
  ];
  for (const { dtype, precision, tol } of cases) {
    it(`${dtype} ${precision}, aligned operands: every strided launch on cuBLASLt, fused exactly where expressible`, async () => {
      const { h, launches, needed, gemm } = ltPlan(dtype, true);
      const trueFp32 = dtype === 'f32' && precision === 'fp32';
      const fusable = gemm.filter((p) => ltFuses(p, trueFp32)).length;
      const fused = await compare(h, tol, { ...LT, LOOM_CUDA_FUSE: 'force' }, precision);
      report(`cuBLASLt ${dtype} ${precision}`, fused);
      expect(fused.ltCalls, String(fused.gemmPaths)).toBe(launches);
      expect(fused.fusedEpilogues, String(fused.gemmPaths)).toBe(fusable);
      expect(fused.epilogueLaunches).toBe(needed - fusable);
      const plain = await compare(h, tol, { ...LT, LOOM_CUDA_FUSE: 'never' }, precision);
      expect(plain.ltCalls).toBe(launches);
      expect(plain.fusedEpilogues).toBe(0);
      expect(plain.epilogueLaunches).toBe(needed);
    });
  }

  for (const dtype of GEMM_DTYPES) {
    it(`${dtype}, odd leading dims (operands 4- / 2-byte aligned): correct on whichever path cuBLASLt takes`, async () => {
      const { h, launches } = ltPlan(dtype, false);
      const stats = await compare(h, dtype === 'f32' ? 1e-4 : 5e-3, { ...LT, LOOM_CUDA_FUSE: 'force' });
      report(`cuBLASLt ${dtype}, odd leading dims`, stats);
      expect(Number(stats.ltCalls) + Number(stats.cublasCalls)).toBe(launches);
    });
  }

  it('a pointer-array launch stays on cuBLAS; LOOM_CUDA_FUSE / LOOM_CUDA_LT refuse unknown values', async () => {
    const h = new Hand();
    const p = problem(8, 24, 40, false, true, 'row', { kind: 'relu' }, 0, 1);
    h.launches.push({
      kind: 'gemm',
      id: 0,
      dtype: 'f32',
      problem: p,
      entries: [3, 0, 5].map((t) => entry(h, p, t, 40 + t)),
      strides: null,
      info: info('listed'),
    });
    const stats = await compare(h, 1e-5, { ...LT, LOOM_CUDA_FUSE: 'force' });
    expect(stats.ltCalls).toBe(0);
    expect(stats.cublasCalls).toBe(1);
    expect(stats.epilogueLaunches).toBe(1);
    await expect(h.run('cuda', 'fp32', { LOOM_CUDA_FUSE: 'always' })).rejects.toThrow(/LOOM_CUDA_FUSE must be auto, never or force, got 'always'/);
    await expect(h.run('cuda', 'fp32', { LOOM_CUDA_LT: 'on' })).rejects.toThrow(/LOOM_CUDA_LT must be auto, off or force, got 'on'/);
  });
});

describe.skipIf(GPU_SKIP_REASON !== null)('CUDA: the default path choice', () => {
  it('64 tenants x a 784-256-256-10 MLP at batch 1: three GEMM launches and no epilogue launch', async () => {
    const h = new Hand();
    h.tenants = 64;
    const tenant = (i: number) => i;
    const layer = (n: number, k: number, act: Activation | null): GemmProblem => ({ ...problem(1, n, k, false, true, 'row', act, 0, 1), alpha: 1 });
    const layers: Launch[] = [
      stridedLaunch(h, 0, layer(256, 784, { kind: 'relu' }), 64, 1, tenant),
      stridedLaunch(h, 1, layer(256, 256, { kind: 'relu' }), 64, 2, tenant),
      stridedLaunch(h, 2, layer(10, 256, null), 64, 3, tenant),
    ];
    h.launches.push(...layers);
    const stats = await compare(h, 5e-5);
    report('64 x MLP b1, default (auto)', stats);
    process.stdout.write(
      `  kernel nodes ${String(stats.kernelNodes)}, cuBLAS ${String(stats.cublasCalls)}, cuBLASLt ${String(stats.ltCalls)}, skinny ${String(stats.gemvCalls)}\n`,
    );
    expect(stats.fusedEpilogues, String(stats.gemmPaths)).toBe(3);
    expect(stats.epilogueLaunches).toBe(0);
    // each GEMM is the one launch of its layer (cuBLASLt may add a split-K reduction kernel to its node count)
    expect(Number(stats.kernelNodes)).toBeGreaterThanOrEqual(3);
    const never = await compare(h, 5e-5, { LOOM_CUDA_FUSE: 'never' });
    expect(never.epilogueLaunches).toBe(3);
    expect(never.fusedEpilogues).toBe(0);
  });
});
