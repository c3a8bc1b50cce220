// gemm / gemm_grouped on the CPU backend against a plain TS triple loop: every transpose combination,
// every bias mode, every activation epilogue, padded leading dims, tiles larger than one block, entry lists
// with uniform strides, grouped problems, and tenants left out of a tick.
import { describe, expect, it } from 'vitest';
import { type Activation, applyActivation } from '../../ir/ops/activation.js';
import type { GemmProblem } from '../../ir/contract/launch.js';
import { ArenaBuilder, info, maxRelError, randomF32 } from './helpers.js';

function reference(p: GemmProblem, a: Float32Array, b: Float32Array, bias: Float32Array | null): Float64Array {
  const c = new Float64Array(p.m * p.ldc);
  for (let i = 0; i < p.m; i++) {
    for (let j = 0; j < p.n; j++) {
      let acc = 0;
      for (let q = 0; q < p.k; q++) {
        const av = p.transA ? a[q * p.lda + i]! : a[i * p.lda + q]!;
        const bv = p.transB ? b[j * p.ldb + q]! : b[q * p.ldb + j]!;
        acc += av * bv;
      }
      let v = p.alpha * acc;
      if (p.bias === 'row') v += p.beta * bias![j]!;
      if (p.bias === 'col') v += p.beta * bias![i]!;
      if (p.bias === 'full') v += p.beta * bias![i * p.ldBias + j]!;
      c[i * p.ldc + j] = p.activation ? applyActivation(p.activation, v) : v;
    }
  }
  return c;
}

function problem(
  m: number,
  n: number,
  k: number,
  transA: boolean,
  transB: boolean,
  bias: GemmProblem['bias'],
  activation: Activation | null,
  pad = 3,
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
    alpha: 1,
    beta: 1,
    bias,
    ldBias: bias === 'full' ? n + 1 : 0,
    activation,
  };
}

function biasLength(p: GemmProblem): number {
  return p.bias === 'row' ? p.n : p.bias === 'col' ? p.m : p.bias === 'full' ? (p.m - 1) * p.ldBias + p.n : 0;
}

// Elements of C that the GEMM writes (the padding columns stay 0).
function written(p: GemmProblem, c: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let i = 0; i < p.m; i++) for (let j = 0; j < p.n; j++) out.push(Number(c[i * p.ldc + j]));
  return out;
}

const ACTS: Array<Activation | null> = [
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

describe('native gemm (cpu)', () => {
  it('every transpose combination x bias mode x activation matches the reference', async () => {
    const b = new ArenaBuilder();
    const cases: Array<{ p: GemmProblem; a: Float32Array; bm: Float32Array; bias: Float32Array | null; c: ReturnType<ArenaBuilder['alloc']> }> = [];
    let seed = 1;
    let act = 0;
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        for (const bias of ['none', 'row', 'col', 'full'] as const) {
          const p = { ...problem(13, 37, 29, transA, transB, bias, ACTS[act++ % ACTS.length]!), alpha: 0.75, beta: bias === 'none' ? 1 : 1.5 };
          const a = randomF32((transA ? p.k : p.m) * p.lda, seed++);
          const bm = randomF32((transB ? p.n : p.k) * p.ldb, seed++);
          const bv = bias === 'none' ? null : randomF32(biasLength(p), seed++);
          const sa = b.alloc('weights', 'f32', a.length, a);
          const sb = b.alloc('io', 'f32', bm.length, bm);
          const sbias = bv ? b.alloc('weights', 'f32', bv.length, bv) : null;
          const sc = b.alloc('io', 'f32', p.m * p.ldc);
          b.launches.push({
            kind: 'gemm',
            id: b.launches.length,
            dtype: 'f32',
            problem: p,
            entries: [{ tenant: 0, a: sa.ref, b: sb.ref, c: sc.ref, bias: sbias?.ref ?? null }],
            strides: null,
            info: info(),
          });
          cases.push({ p, a, bm, bias: bv, c: sc });
        }
      }
    }
    const r = await b.run();
    for (const { p, a, bm, bias, c } of cases) {
      const got = r.read(c) as Float32Array;
      const want = reference(p, a, bm, bias);
      expect(maxRelError(written(p, got), written(p, want)), JSON.stringify({ ...p, activation: p.activation?.kind })).toBeLessThan(1e-5);
      // the padding columns of C are never written
      for (let i = 0; i < p.m; i++) expect(got[i * p.ldc + p.n]).toBe(0);
    }
  });

  it('large problems span several row/column/depth blocks', async () => {
    const b = new ArenaBuilder();
    const cases = [
      problem(130, 300, 600, false, true, 'full', null, 0),
      problem(97, 513, 257, true, false, 'col', { kind: 'relu' }, 5),
      problem(1, 1000, 784, false, false, 'row', null, 0),
    ];
    const slots = cases.map((p, i) => {
      const a = randomF32((p.transA ? p.k : p.m) * p.lda, 10 + i);
      const bm = randomF32((p.transB ? p.n : p.k) * p.ldb, 20 + i);
      const bias = randomF32(biasLength(p), 30 + i);
      const sa = b.alloc('io', 'f32', a.length, a);
      const sb = b.alloc('weights', 'f32', bm.length, bm);
      const sbias = b.alloc('weights', 'f32', bias.length, bias);
      const sc = b.alloc('io', 'f32', p.m * p.ldc);
      b.launches.push({
        kind: 'gemm',
        id: i,
        dtype: 'f32',
        problem: p,
        entries: [{ tenant: 0, a: sa.ref, b: sb.ref, c: sc.ref, bias: sbias.ref }],
        strides: null,
        info: info(),
      });
      return { p, a, bm, bias, sc };
    });
    const r = await b.run();
    for (const { p, a, bm, bias, sc } of slots) {
      expect(maxRelError(written(p, r.read(sc) as Float32Array), written(p, reference(p, a, bm, bias)))).toBeLessThan(5e-5); // f32 sums of up to 600 terms
    }
  });

  it('a strided entry list runs every tenant with its own weights; inactive tenants are skipped', async () => {
    const b = new ArenaBuilder();
    const p = problem(4, 24, 16, false, false, 'row', { kind: 'relu' }, 0);
    const R = 3;
    const w = randomF32(R * p.k * p.n, 7); // packed contiguously: uniform stride
    const bias = randomF32(R * p.n, 8);
    const x = randomF32(R * p.m * p.k, 9);
    const sw = b.alloc('weights', 'f32', w.length, w);
    const sbias = b.alloc('weights', 'f32', bias.length, bias);
    const sx = b.alloc('io', 'f32', x.length, x);
    const sc = b.alloc('io', 'f32', R * p.m * p.n);
    const f = 4;
    const entries = Array.from({ length: R }, (_, t) => ({
      tenant: t,
      a: { arena: 'io' as const, offset: sx.ref.offset + t * p.m * p.k * f },
      b: { arena: 'weights' as const, offset: sw.ref.offset + t * p.k * p.n * f },
      c: { arena: 'io' as const, offset: sc.ref.offset + t * p.m * p.n * f },
      bias: { arena: 'weights' as const, offset: sbias.ref.offset + t * p.n * f },
    }));
    b.launches.push({
      kind: 'gemm',
      id: 0,
      dtype: 'f32',
      problem: p,
      entries,
      strides: { a: p.m * p.k * f, b: p.k * p.n * f, c: p.m * p.n * f, bias: p.n * f },
      info: info(),
    });
    const all = await b.run();
    const some = await b.run({ active: [0, 2] });
    const got = all.read(sc) as Float32Array;
    const part = some.read(sc) as Float32Array;
    for (let t = 0; t < R; t++) {
      const want = reference(p, x.subarray(t * p.m * p.k), w.subarray(t * p.k * p.n), bias.subarray(t * p.n));
      const slice = Array.from(got.subarray(t * p.m * p.n, (t + 1) * p.m * p.n));
      expect(maxRelError(slice, Array.from(want))).toBeLessThan(1e-5);
      const partSlice = Array.from(part.subarray(t * p.m * p.n, (t + 1) * p.m * p.n));
      if (t === 1) expect(partSlice.every((v) => v === 0)).toBe(true);
      else expect(partSlice).toEqual(slice);
    }
  });

  it('gemm_grouped runs problems of different shapes in one launch', async () => {
    const b = new ArenaBuilder();
    const probs = [problem(3, 40, 20, false, true, 'row', null, 0), problem(5, 7, 64, true, false, 'none', { kind: 'tanh' }, 1)];
    const data = probs.map((p, i) => {
      const a = randomF32((p.transA ? p.k : p.m) * p.lda, 40 + i);
      const bm = randomF32((p.transB ? p.n : p.k) * p.ldb, 50 + i);
      const bias = p.bias === 'none' ? null : randomF32(biasLength(p), 60 + i);
      return {
        p,
        a,
        bm,
        bias,
        sa: b.alloc('io', 'f32', a.length, a),
        sb: b.alloc('weights', 'f32', bm.length, bm),
        sbias: bias ? b.alloc('weights', 'f32', bias.length, bias) : null,
        sc: b.alloc('io', 'f32', p.m * p.ldc),
      };
    });
    b.launches.push({
      kind: 'gemm_grouped',
      id: 0,
      dtype: 'f32',
      info: info(),
      groups: data.map((d, i) => ({ problem: d.p, entries: [{ tenant: i, a: d.sa.ref, b: d.sb.ref, c: d.sc.ref, bias: d.sbias?.ref ?? null }] })),
    });
    const r = await b.run();
    for (const d of data) expect(maxRelError(written(d.p, r.read(d.sc) as Float32Array), written(d.p, reference(d.p, d.a, d.bm, d.bias)))).toBeLessThan(1e-5);
  });

  it('k = 0 gives the bias alone', async () => {
    const b = new ArenaBuilder();
    const p = problem(2, 3, 0, false, false, 'row', null, 0);
    const bias = new Float32Array([1, 2, 3]);
    const sa = b.alloc('io', 'f32', 1);
    const sb = b.alloc('io', 'f32', 1);
    const sbias = b.alloc('weights', 'f32', 3, bias);
    const sc = b.alloc('io', 'f32', 6, new Float32Array(6).fill(9));
    b.launches.push({
      kind: 'gemm',
      id: 0,
      dtype: 'f32',
      problem: { ...p, lda: 0, ldb: 3 },
      entries: [{ tenant: 0, a: sa.ref, b: sb.ref, c: sc.ref, bias: sbias.ref }],
      strides: null,
      info: info(),
    });
    expect((await b.run()).floats(sc)).toEqual([1, 2, 3, 1, 2, 3]);
  });
});
