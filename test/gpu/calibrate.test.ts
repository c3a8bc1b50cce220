// `loom calibrate` on the CUDA backend: the masked-tick differences give one launch's time inside a captured
// tick (LOOM_CUDA_SPARSE=always for the calibration plans), the concurrency of two streams is measured, and
// --quick finishes in under a minute with a valid profile that prices GEMMs by precision.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { benchGrid } from '../../src/calibrate/grid.js';
import { checkProfile, profileJson, readProfile } from '../../src/calibrate/profile.js';
import { calibrate } from '../../src/calibrate/run.js';
import { GPU_SKIP_REASON } from './gpu-env.js';

const dir = mkdtempSync(path.join(tmpdir(), 'loom-gpu-calibrate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(GPU_SKIP_REASON !== null)('loom calibrate on the CUDA backend', () => {
  it('measures a few points: positive per-launch times that grow with the work, and the overlap of two streams', async () => {
    const grid = benchGrid({ backend: 'cuda', quick: true });
    const pick = grid.filter(
      (p) =>
        (p.kind === 'gemm' && p.math === 'f32' && !p.epilogue && (p.shape.m === 1 || p.shape.m === 16) && p.shape.batch === 1) ||
        (p.kind === 'kernel' && p.kernel.op.op === 'eltwise' && p.kernel.inputs.length === 1),
    );
    expect(pick.length).toBeGreaterThan(3);
    const before = process.env.LOOM_CUDA_SPARSE;
    const profile = await calibrate({ backend: 'cuda', quick: true, points: pick });
    expect(process.env.LOOM_CUDA_SPARSE).toBe(before); // restored
    checkProfile(JSON.parse(profileJson(profile)), 'the profile');
    expect(profile.backend).toBe('cuda');
    expect(profile.name).toMatch(/\w/);
    // one row per entry (matrix-vector products) and more rows fitted apart
    const gemm = [...profile.kinds['gemm_matvec.f32']!.points, ...profile.kinds['gemm.f32']!.points];
    expect(profile.kinds['gemm_matvec.f32']!.points.every((p) => p.label.startsWith('gemm 1x'))).toBe(true);
    for (const p of gemm) expect(p.us).toBeGreaterThan(0.5); // a launch inside a graph costs at least ~1 µs
    const eltwise = [...profile.kinds['kernel.eltwise']!.points].sort((a, b) => a.bytes - b.bytes);
    expect(eltwise[eltwise.length - 1]!.us).toBeGreaterThan(eltwise[0]!.us); // 16 MB moves slower than 16 KB
    expect(profile.launchOverheadUs).toBeGreaterThan(0);
    expect(profile.launchOverheadUs).toBeLessThan(20);
    expect(profile.concurrency).toHaveLength(3);
    for (const c of profile.concurrency) {
      expect(c.soloUs).toBeGreaterThan(0);
      expect(c.overlap).toBeGreaterThanOrEqual(0);
      expect(c.overlap).toBeLessThanOrEqual(1);
    }
  }, 300_000);

  it('--quick finishes in under a minute with every GEMM precision and kernel kind fitted', async () => {
    const t0 = performance.now();
    const lines: string[] = [];
    const profile = await calibrate({ backend: 'cuda', quick: true, onProgress: (m) => lines.push(m) });
    const secs = (performance.now() - t0) / 1000;
    process.stdout.write(`calibrate --quick on ${profile.name}: ${secs.toFixed(1)} s, ${lines.length} progress lines\n`);
    expect(secs).toBeLessThan(60);
    const file = path.join(dir, 'quick.json');
    writeFileSync(file, profileJson(profile));
    const back = readProfile(file).profile;
    for (const k of ['gemm.f32', 'gemm.tf32', 'gemm.bf16', 'gemm_grouped.f32', 'gemm.epilogue', 'kernel.eltwise', 'kernel.softmax', 'kernel.im2col'])
      expect(Object.keys(back.kinds)).toContain(k);
    // the largest GEMM both precisions ran: bf16 (half the bytes, tensor cores) is faster than true fp32
    const f32 = back.kinds['gemm.f32']!.points;
    const bf16 = new Map(back.kinds['gemm.bf16']!.points.map((p) => [p.label.replace(' bf16', ''), p]));
    const both = f32.filter((p) => bf16.has(p.label.replace(' f32', ''))).sort((a, b) => b.flops - a.flops);
    expect(both.length).toBeGreaterThan(0);
    expect(bf16.get(both[0]!.label.replace(' f32', ''))!.us).toBeLessThan(both[0]!.us);
  }, 300_000);
});
