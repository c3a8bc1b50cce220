// The fit on synthetic measurements: a model that knows the true function recovers it, and the calibrated
// cost model prices launches with it.
import { describe, expect, it } from 'vitest';
import { CORRECTION_BINS, correctionOf, fitKind, fitLinear, nelderMead } from '../../src/calibrate/fit.js';
import {
  type CalibratedCost,
  type KindFit,
  calibratedFloorUs,
  calibratedLaunchUs,
  correctionAt,
  fallbackKeys,
  kindUs,
  rooflinePartUs,
  waveUs,
} from '../../src/planner/cost-fit.js';
import { gemmBlocks } from '../../src/planner/work.js';
import { H100_FP32, launchDemand, launchUs } from '../../src/planner/cost.js';

const truth: KindFit = { overheadUs: 4.5, flopsPerS: 2e13, bytesPerS: 1.5e12, correction: [] };

function gemmGrid(): Array<{ flops: number; bytes: number }> {
  const out: Array<{ flops: number; bytes: number }> = [];
  for (const m of [1, 8, 64, 512])
    for (const n of [128, 1024, 4096]) for (const b of [1, 16]) out.push({ flops: 2 * m * n * n * b, bytes: (2 * m * n + n * n) * 4 * b });
  return out;
}

describe('fitKind', () => {
  it('recovers overhead, FLOP rate and bandwidth from exact roofline measurements', () => {
    const pts = gemmGrid().map((p) => ({ ...p, us: rooflinePartUs(truth, p.flops, p.bytes) }));
    const f = fitKind(pts, { compute: true });
    expect(f.overheadUs).toBeCloseTo(truth.overheadUs, 3);
    expect(f.flopsPerS / truth.flopsPerS).toBeCloseTo(1, 4);
    expect(f.bytesPerS / truth.bytesPerS).toBeCloseTo(1, 4);
    for (const [, factor] of f.correction) expect(factor).toBeCloseTo(1, 4);
    for (const p of pts) expect(kindUs(f, p.flops, p.bytes) / p.us).toBeCloseTo(1, 4);
  });

  it('prices a bytes-only kind (generated kernels) with overhead and bandwidth, FLOPs ignored', () => {
    const k: KindFit = { overheadUs: 2, flopsPerS: 0, bytesPerS: 8e11, correction: [] };
    const pts = [1e3, 1e4, 1e5, 1e6, 1e7, 1e8].map((bytes) => ({ flops: bytes * 7, bytes, us: rooflinePartUs(k, 0, bytes) }));
    const f = fitKind(pts, { compute: false });
    expect(f.flopsPerS).toBe(0);
    expect(f.overheadUs).toBeCloseTo(2, 3);
    expect(f.bytesPerS / 8e11).toBeCloseTo(1, 4);
  });

  it('carries what the roofline misses in the correction: measurements 30% slower on large launches come back', () => {
    const pts = gemmGrid().map((p) => {
      const base = rooflinePartUs(truth, p.flops, p.bytes);
      return { ...p, us: base > 100 ? base * 1.3 : base };
    });
    const f = fitKind(pts, { compute: true });
    expect(f.correction.length).toBeGreaterThan(1);
    expect(f.correction.length).toBeLessThanOrEqual(CORRECTION_BINS);
    const big = pts.filter((p) => p.us > 1000);
    for (const p of big) expect(Math.abs(kindUs(f, p.flops, p.bytes) / p.us - 1)).toBeLessThan(0.12);
    // without the correction the error is what it was asked to carry
    const roof = fitKind(pts, { compute: true, correction: false });
    expect(roof.correction).toEqual([]);
  });

  it('refuses an empty or unusable set of measurements', () => {
    expect(() => fitKind([], { compute: true })).toThrow(/no usable measurements/);
    expect(() => fitKind([{ flops: 1, bytes: 1, us: Number.NaN }], { compute: true })).toThrow(/no usable measurements/);
  });
});

describe('fitLinear (the epilogue: a difference of timings)', () => {
  it('recovers a line and ignores an outlier', () => {
    const pts = [1e3, 1e4, 1e5, 1e6, 1e7].map((bytes) => ({ flops: 0, bytes, us: 1.5 + bytes / 2e5 }));
    pts.push({ flops: 0, bytes: 3e4, us: 900 }); // a noisy measurement
    const f = fitLinear(pts);
    expect(f.overheadUs).toBeCloseTo(1.5, 6);
    expect(f.bytesPerS / 2e11).toBeCloseTo(1, 6);
  });

  it('keeps both terms non-negative when the backend fuses the epilogue (differences around zero)', () => {
    const f = fitLinear([1e3, 1e5, 1e7].map((bytes, i) => ({ flops: 0, bytes, us: [0.3, -0.4, 0.1][i]! })));
    expect(f.overheadUs).toBeGreaterThanOrEqual(0);
    expect(f.bytesPerS).toBeGreaterThan(0);
    expect(kindUs(f, 0, 1e8)).toBeLessThan(1);
  });
});

describe('the calibrated cost model', () => {
  const cost: CalibratedCost = {
    profile: { name: 'test card', hash: 'a'.repeat(64), date: '2026-01-01T00:00:00Z' },
    fits: {
      'gemm.f32': truth,
      'gemm.epilogue': { overheadUs: 1, flopsPerS: 0, bytesPerS: 1e12, correction: [] },
      'kernel.eltwise': { overheadUs: 2, flopsPerS: 0, bytesPerS: 1e12, correction: [] },
      'kernel.softmax': { overheadUs: 3, flopsPerS: 0, bytesPerS: 5e11, correction: [[0, 2]] },
    },
  };
  const model = { ...H100_FP32, calibrated: cost };

  it('prices each launch kind with its own fit, borrowing a measured one for kinds the profile lacks', () => {
    const gemm = { kind: 'gemm', math: 'f32', flops: 2e9, bytes: 4e6, epilogueBytes: 0 } as const;
    expect(launchUs(model, gemm)).toBeCloseTo(kindUs(truth, 2e9, 4e6), 9);
    // the epilogue adds its fit on C's bytes
    expect(launchUs(model, { ...gemm, epilogueBytes: 1e6 })).toBeCloseTo(kindUs(truth, 2e9, 4e6) + 1 + 1, 9);
    // tf32 and grouped fall back to gemm.f32; a kernel op without a fit to kernel.eltwise
    expect(fallbackKeys({ ...gemm, kind: 'gemm_grouped', math: 'tf32' })).toEqual([
      'gemm_grouped.tf32',
      'gemm_grouped.f32',
      'gemm.tf32',
      'gemm.f32',
      'gemm_matvec.tf32',
      'gemm_matvec.f32',
    ]);
    expect(launchUs(model, { ...gemm, math: 'tf32' })).toBeCloseTo(launchUs(model, gemm), 9);
    expect(launchUs(model, { kind: 'kernel', op: 'pool', flops: 0, bytes: 1e6 })).toBeCloseTo(2 + 1, 9);
    // the conv kernel, where the profile did not measure it, as the f32 GEMM it is
    expect(fallbackKeys({ kind: 'kernel', op: 'conv', flops: 2e9, bytes: 4e6 })).toEqual(['kernel.conv', 'gemm.f32', 'kernel.eltwise']);
    expect(launchUs(model, { kind: 'kernel', op: 'conv', flops: 2e9, bytes: 4e6 })).toBeCloseTo(kindUs(truth, 2e9, 4e6), 9);
    // the correction multiplies (flat past its last point)
    expect(calibratedLaunchUs(cost, { kind: 'kernel', op: 'softmax', flops: 0, bytes: 5e5 })).toBeCloseTo((3 + 1) * 2, 9);
    // the floor: the best rates measured, no fixed costs
    expect(calibratedFloorUs(cost, 2e13, 0)).toBeCloseTo(1e6, 3);
  });

  it('prices a GEMM of one row per entry by gemm_matvec.<math> where the profile has it, else by gemm.<math>', () => {
    const one = { kind: 'gemm', math: 'f32', flops: 2e6, bytes: 4e6, epilogueBytes: 0, rows: 1 } as const;
    expect(fallbackKeys(one)).toEqual(['gemm_matvec.f32', 'gemm.f32']);
    expect(fallbackKeys({ ...one, rows: 2 })).toEqual(['gemm.f32', 'gemm_matvec.f32']);
    expect(fallbackKeys({ ...one, math: 'bf16' })).toEqual(['gemm_matvec.bf16', 'gemm_matvec.f16', 'gemm_matvec.f32', 'gemm.bf16', 'gemm.f16', 'gemm.f32']);
    // a profile of matrix-vector GEMMs only still prices every GEMM
    const onlyMatvec = { ...H100_FP32, calibrated: { ...cost, fits: { 'gemm_matvec.f32': truth, 'kernel.eltwise': cost.fits['kernel.eltwise']! } } };
    expect(launchUs(onlyMatvec, { ...one, rows: 8 })).toBeCloseTo(kindUs(truth, 2e6, 4e6), 9);
    expect(launchUs(model, one)).toBeCloseTo(kindUs(truth, 2e6, 4e6), 9); // no matvec fit here: gemm.f32's
    const matvec: KindFit = { overheadUs: 1, flopsPerS: 0, bytesPerS: 4e12, correction: [] };
    const withMatvec = { ...H100_FP32, calibrated: { ...cost, fits: { ...cost.fits, 'gemm_matvec.f32': matvec } } };
    expect(launchUs(withMatvec, one)).toBeCloseTo(1 + 1, 9);
    expect(launchUs(withMatvec, { ...one, rows: 4 })).toBeCloseTo(kindUs(truth, 2e6, 4e6), 9);
  });

  it("a launch's demand on the device counts the epilogue's fixed cost as fixed, not as work", () => {
    // a tiny GEMM with a bias: 4.5 µs of GEMM overhead, 1 µs of epilogue overhead, ~0 of work
    const tiny = { kind: 'gemm', math: 'f32', flops: 2e3, bytes: 4e3, epilogueBytes: 64 } as const;
    expect(launchUs(model, tiny)).toBeCloseTo(4.5 + 1, 2);
    expect(launchDemand(model, tiny)).toBeLessThan(0.01); // it was 1 / 5.5 with the epilogue's overhead as work
    // a GEMM that is mostly work asks for most of the device
    expect(launchDemand(model, { ...tiny, flops: 2e9, bytes: 4e6 })).toBeGreaterThan(0.9);
  });

  it("the wave floor: a GEMM with fewer output blocks than SMs costs at least one block at its SM's share of the rate", () => {
    const sms = 100;
    const waved = { ...H100_FP32, calibrated: { ...cost, sms } };
    // 8 entries of 128 x 64 outputs, k = 1152 (a conv late in a small-image network): 16 blocks of 64 x 64
    const blocks = gemmBlocks({ m: 128, n: 64, k: 1152 }, 8);
    expect(blocks).toEqual({ blocks: 16, blockFlops: 2 * 64 * 64 * 1152 });
    const conv = { kind: 'gemm', math: 'f32', flops: 2 * 128 * 64 * 1152 * 8, bytes: 3e6, epilogueBytes: 0, rows: 128, blocks } as const;
    const wave = (blocks.blockFlops / (truth.flopsPerS / sms)) * 1e6;
    expect(waveUs(waved.calibrated, truth, conv)).toBeCloseTo(wave, 6);
    expect(launchUs(waved, conv)).toBeCloseTo(Math.max(wave, kindUs(truth, conv.flops, conv.bytes)), 6);
    expect(launchUs(waved, conv)).toBeGreaterThan(kindUs(truth, conv.flops, conv.bytes)); // the roofline alone was lower
    // it uses a sixth of the SMs, so lanes beside it share the rest (lane-sim)
    expect(launchDemand(waved, conv)).toBeLessThanOrEqual(16 / sms);
    // 250 blocks: three waves
    const wide = { ...conv, blocks: { blocks: 250, blockFlops: blocks.blockFlops } };
    expect(waveUs(waved.calibrated, truth, wide)).toBeCloseTo(3 * wave, 6);
    // none without the SMs (an older profile), for matrix-vector GEMMs, for grouped launches
    expect(launchUs(model, conv)).toBeCloseTo(kindUs(truth, conv.flops, conv.bytes), 9);
    expect(waveUs(waved.calibrated, truth, { ...conv, rows: 1 })).toBe(0);
    expect(waveUs(waved.calibrated, truth, { ...conv, kind: 'gemm_grouped' })).toBe(0);
  });

  it('without a profile keeps the default roofline, numbers unchanged', () => {
    expect(launchUs(H100_FP32, { kind: 'gemm', math: 'f32', flops: 50e6, bytes: 0, epilogueBytes: 123 })).toBeCloseTo(4 + 1, 9);
    expect(launchUs(H100_FP32, { kind: 'gemm_grouped', math: 'f32', flops: 50e6, bytes: 0, epilogueBytes: 0 })).toBeCloseTo(4 + 1 / 0.85, 9);
  });

  it('interpolates the correction linearly in log10 of the time', () => {
    const f: KindFit = {
      overheadUs: 0,
      flopsPerS: 0,
      bytesPerS: 1e6,
      correction: [
        [0, 1],
        [2, 3],
      ],
    };
    expect(correctionAt(f, 0.1)).toBe(1);
    expect(correctionAt(f, 10)).toBeCloseTo(2, 9);
    expect(correctionAt(f, 1e4)).toBe(3);
  });
});

describe('nelderMead', () => {
  it('finds the minimum of a shifted quadratic', () => {
    const x = nelderMead((v) => (v[0]! - 3) ** 2 + 2 * (v[1]! + 1) ** 2, [0, 0], 1, 500);
    expect(x[0]).toBeCloseTo(3, 4);
    expect(x[1]).toBeCloseTo(-1, 4);
  });
});

describe('correctionOf', () => {
  it('is strictly ascending even when many points share one time (the profile reader requires it)', () => {
    const f: KindFit = { overheadUs: 5, flopsPerS: 0, bytesPerS: 1e12, correction: [] };
    // 40 launches of the same size (one roofline time), a few others
    const pts = [
      ...Array.from({ length: 40 }, (_, i) => ({ flops: 0, bytes: 1000, us: 5 + (i % 3) })),
      { flops: 0, bytes: 1e6, us: 9 },
      { flops: 0, bytes: 1e8, us: 150 },
    ];
    const c = correctionOf(f, pts);
    for (let i = 1; i < c.length; i++) expect(c[i]![0]).toBeGreaterThan(c[i - 1]![0]);
    expect(c.length).toBeGreaterThanOrEqual(2);
  });
});
