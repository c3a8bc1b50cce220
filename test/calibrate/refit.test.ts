// `loom calibrate --refit`: a profile's GEMM points re-keyed by today's kinds (m = 1 points into
// gemm_matvec.<math>) and fitted again, other kinds kept; the m = 1 points priced by their own fit.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fitKind } from '../../src/calibrate/fit.js';
import { type DeviceProfile, profileJson, readProfile } from '../../src/calibrate/profile.js';
import { refitProfile } from '../../src/calibrate/refit.js';
import { kindUs } from '../../src/planner/cost-fit.js';
import { loomInProcess } from '../support/loom-cli.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'loom-refit-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// m = 1 GEMMs read at 2.6 TB/s, 16-row ones at 1 TB/s, both after 3 µs: one fit cannot price both
function point(m: number, n: number, k: number, batch: number) {
  const flops = 2 * m * n * k * batch;
  const bytes = 4 * batch * (m * k + k * n + m * n);
  const us = 3 + (bytes / (m === 1 ? 2.6e12 : 1e12)) * 1e6;
  return { label: `gemm ${m}x${n}x${k} x${batch} f32`, flops, bytes, us };
}
const points = [1, 16].flatMap((m) => [256, 1024, 4096].flatMap((n) => [1, 4, 16, 64].map((b) => point(m, n, n, b))));
const fit = fitKind(points, { compute: true });
const OLD: DeviceProfile = {
  format: 'loom-device-profile',
  version: 1,
  name: 'Test Card',
  backend: 'cuda',
  date: '2026-12-06T12:00:00.000Z',
  device: {},
  settings: { quick: false, reps: 20, loom: '0.1.0' },
  launchOverheadUs: 2,
  concurrency: [],
  kinds: {
    'gemm.f32': { fit, points },
    'kernel.eltwise': { fit: { overheadUs: 2, flopsPerS: 0, bytesPerS: 1e12, correction: [] }, points: [] },
  },
};

const loom = loomInProcess;

const err = (f: typeof fit, ps: typeof points) => Math.max(...ps.map((p) => Math.abs(Math.log(kindUs(f, p.flops, p.bytes) / p.us))));

describe('refitProfile', () => {
  it('splits the m = 1 points into gemm_matvec.f32 and fits both kinds again; other kinds kept', () => {
    const { profile, changed } = refitProfile(OLD);
    expect(Object.keys(profile.kinds).sort()).toEqual(['gemm.f32', 'gemm_matvec.f32', 'kernel.eltwise']);
    expect(changed).toEqual(['gemm_matvec.f32 (12 points)', 'gemm.f32 (12 points)']);
    expect(profile.kinds['kernel.eltwise']).toEqual(OLD.kinds['kernel.eltwise']);
    const ones = points.filter((p) => p.label.startsWith('gemm 1x'));
    expect(profile.kinds['gemm_matvec.f32']!.points).toEqual(ones);
    // the m = 1 points priced within 10% by their own fit, and no worse than by the shared one
    expect(err(profile.kinds['gemm_matvec.f32']!.fit, ones)).toBeLessThan(Math.log(1.1));
    expect(err(profile.kinds['gemm_matvec.f32']!.fit, ones)).toBeLessThanOrEqual(err(fit, ones) + 1e-9);
    // a second refit changes nothing
    expect(refitProfile(profile).changed).toEqual([]);
  });

  it('loom calibrate --refit writes a profile the reader accepts, and refuses a point that is not a grid label', async () => {
    const src = path.join(dir, 'old.json');
    writeFileSync(src, profileJson(OLD));
    const out = path.join(dir, 'new.json');
    const r = await loom('calibrate', '--refit', src, '--out', out);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/refitted gemm_matvec\.f32 \(12 points\), gemm\.f32 \(12 points\)/);
    expect(Object.keys(readProfile(out).profile.kinds)).toContain('gemm_matvec.f32');
    const bad = path.join(dir, 'bad.json');
    writeFileSync(bad, profileJson({ ...OLD, kinds: { ...OLD.kinds, 'gemm.f32': { fit, points: [{ ...points[0]!, label: 'gemm what' }] } } }));
    const b = await loom('calibrate', '--refit', bad, '--out', out);
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/refit: point 'gemm what' of kind gemm\.f32 is not a GEMM grid label/);
  });
});
