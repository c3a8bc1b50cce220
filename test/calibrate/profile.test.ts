// The device profile reader: a valid profile reads back with its hash; a bad or foreign file is refused
// with one line naming what is wrong (ir/files.ts limits: size, file type).
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_PROFILE_BYTES, type DeviceProfile, costModelFromProfile, profileJson, readProfile } from '../../src/calibrate/profile.js';
import type { KindFit } from '../../src/planner/cost-fit.js';
import { makeFifo } from '../support/fifo.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'loom-profile-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const fit: KindFit = {
  overheadUs: 3,
  flopsPerS: 1e13,
  bytesPerS: 1e12,
  correction: [
    [0.5, 1.1],
    [2, 0.9],
  ],
};
const VALID: DeviceProfile = {
  format: 'loom-device-profile',
  version: 1,
  name: 'Test Card 80GB',
  backend: 'cuda',
  date: '2026-12-06T12:00:00.000Z',
  device: { driver: '580.1', computeCapability: '9.0', sms: 132 },
  settings: { quick: true, reps: 20, loom: '0.1.0' },
  launchOverheadUs: 2.1,
  concurrency: [{ label: 'gemm', soloUs: 10, pairUs: 12, overlap: 0.8 }],
  kinds: {
    'gemm.f32': { fit, points: [{ label: 'gemm 1x256x256 x1 f32', flops: 131072, bytes: 264192, us: 4.2 }] },
    'gemm.epilogue': { fit: { ...fit, flopsPerS: 0, correction: [] }, points: [{ label: 'gemm+bias+relu', flops: 0, bytes: 1024, us: -0.2 }] },
    'kernel.eltwise': { fit: { ...fit, flopsPerS: 0 }, points: [] },
    // tick.io points are differences of timings too: noise makes small ones negative (seen on an H100)
    'tick.io': { fit: { ...fit, flopsPerS: 0, correction: [] }, points: [{ label: 'tick io 0 B', flops: 0, bytes: 0, us: -4.33 }] },
  },
};

function write(name: string, v: unknown): string {
  const f = path.join(dir, name);
  writeFileSync(f, typeof v === 'string' ? v : JSON.stringify(v));
  return f;
}

const mutate = (f: (p: Record<string, unknown>) => void): Record<string, unknown> => {
  const p = JSON.parse(JSON.stringify(VALID)) as Record<string, unknown>;
  f(p);
  return p;
};

describe('readProfile', () => {
  it('accepts a profile whose strided GEMMs are all matrix-vector products (gemm_matvec.f32 only)', () => {
    const only = mutate((p) => {
      const kinds = p.kinds as Record<string, unknown>;
      kinds['gemm_matvec.f32'] = kinds['gemm.f32'];
      delete kinds['gemm.f32'];
    });
    expect(Object.keys(readProfile(write('matvec-only.json', only)).profile.kinds)).toContain('gemm_matvec.f32');
  });

  it('reads a valid profile back, hashed over its bytes, and makes a calibrated cost model of it', () => {
    const text = profileJson(VALID);
    const f = write('ok.json', text);
    const p = readProfile(f);
    expect(p.profile).toEqual(VALID);
    expect(p.hash).toBe(createHash('sha256').update(text).digest('hex'));
    const m = costModelFromProfile(p);
    expect(m.calibrated?.profile).toEqual({ name: 'Test Card 80GB', hash: p.hash, date: VALID.date });
    expect(m.device).toContain('Test Card 80GB');
    expect(Object.keys(m.calibrated!.fits)).toEqual(['gemm.f32', 'gemm.epilogue', 'kernel.eltwise', 'tick.io']);
    expect(m.calibrated?.sms).toBe(132); // the card's SMs: the wave floor of GEMMs with few output blocks
    const noSms = mutate((q) => delete (q.device as Record<string, unknown>).sms);
    expect(costModelFromProfile(readProfile(write('no-sms.json', profileJson(noSms as unknown as DeviceProfile)))).calibrated?.sms).toBeUndefined();
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['not JSON', '{"format": ', /is not valid JSON/],
    ['an array', [], /the file must be an object, got an array/],
    [
      'a launch plan',
      { format: 'loom-launchplan', version: 1 },
      /field format must be 'loom-device-profile', got "loom-launchplan" \(is this a device profile/,
    ],
    ['version 2', mutate((p) => (p.version = 2)), /field version is 2; this Loom reads version 1 \(recalibrate/],
    ['no name', mutate((p) => delete p.name), /field name must be a string, got undefined/],
    ['a huge name', mutate((p) => (p.name = 'x'.repeat(5000))), /field name must be 1\.\.200 characters, got 5000/],
    ['a foreign backend', mutate((p) => (p.backend = 'tpu')), /field backend must be 'cpu' or 'cuda', got "tpu"/],
    ['a bad date', mutate((p) => (p.date = 'yesterday')), /field date must be an ISO 8601 date/],
    ['no kinds', mutate((p) => delete p.kinds), /field kinds must be an object/],
    ['an unknown kind', mutate((p) => ((p.kinds as Record<string, unknown>)['conv.f32'] = VALID.kinds['gemm.f32'])), /kinds\.conv\.f32 is not a launch kind/],
    ['no gemm.f32', mutate((p) => delete (p.kinds as Record<string, unknown>)['gemm.f32']), /field kinds has no 'gemm\.f32'/],
    [
      'a negative rate',
      mutate((p) => ((p.kinds as Record<string, { fit: Record<string, unknown> }>)['gemm.f32']!.fit.bytesPerS = -1)),
      /kinds\.gemm\.f32\.fit\.bytesPerS must be >= 0, got -1/,
    ],
    [
      'a non-finite overhead',
      mutate((p) => ((p.kinds as Record<string, { fit: Record<string, unknown> }>)['gemm.f32']!.fit.overheadUs = 'Infinity')),
      /kinds\.gemm\.f32\.fit\.overheadUs must be a finite number, got "Infinity"/,
    ],
    [
      'a correction out of order',
      mutate(
        (p) =>
          ((p.kinds as Record<string, { fit: Record<string, unknown> }>)['gemm.f32']!.fit.correction = [
            [2, 1],
            [1, 1],
          ]),
      ),
      /correction must be in ascending order/,
    ],
    [
      'a zero correction factor',
      mutate((p) => ((p.kinds as Record<string, { fit: Record<string, unknown> }>)['gemm.f32']!.fit.correction = [[1, 0]])),
      /correction\[0\]\[1\] must be a positive factor, got 0/,
    ],
    [
      'too many points',
      mutate(
        (p) =>
          ((p.kinds as Record<string, { points: unknown[] }>)['gemm.f32']!.points = Array.from({ length: 10_001 }, () => ({
            label: 'x',
            flops: 0,
            bytes: 0,
            us: 1,
          }))),
      ),
      /kinds\.gemm\.f32\.points has 10001 entries, more than the 10000 a profile may hold/,
    ],
    [
      'a negative time',
      mutate((p) => ((p.kinds as Record<string, { points: Array<Record<string, unknown>> }>)['gemm.f32']!.points[0]!.us = -3)),
      /kinds\.gemm\.f32\.points\[0\]\.us must be >= 0, got -3/,
    ],
    [
      'an overlap past 1',
      mutate((p) => ((p.concurrency as Array<Record<string, unknown>>)[0]!.overlap = 1.5)),
      /concurrency\[0\]\.overlap must be in \[0, 1\], got 1\.5/,
    ],
    ['deep nesting', `${'['.repeat(300)}${']'.repeat(300)}`, /nested more than 256 levels deep/],
    [
      'no strided GEMM kind',
      mutate((p) => delete (p.kinds as Record<string, unknown>)['gemm.f32']),
      /field kinds has no 'gemm\.f32' or 'gemm_matvec\.f32' \(a profile needs gemm\.f32 or gemm_matvec\.f32 and kernel\.eltwise; recalibrate\)/,
    ],
  ];
  for (const [what, v, msg] of bad) {
    it(`refuses ${what}, naming the file and the field`, () => {
      const f = write(`${what.replace(/\W+/g, '-')}.json`, v);
      expect(() => readProfile(f)).toThrow(msg);
      expect(() => readProfile(f)).toThrow(new RegExp(`device profile '${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}'`));
    });
  }

  it('refuses a file past the size limit before reading it, a folder, a FIFO and a missing file', () => {
    const big = path.join(dir, 'big.json');
    writeFileSync(big, '');
    truncateSync(big, MAX_PROFILE_BYTES + 1);
    expect(() => readProfile(big)).toThrow(/device profile '.*big.json' is 16777217 bytes, more than the limit of 16777216 bytes/);
    expect(() => readProfile(dir)).toThrow(/is a directory, not a regular file/);
    const fifo = path.join(dir, 'fifo.json');
    makeFifo(fifo);
    expect(() => readProfile(fifo)).toThrow(/not a regular file/);
    expect(() => readProfile(path.join(dir, 'missing.json'))).toThrow(/cannot open device profile '.*missing.json': ENOENT/);
  });
});
