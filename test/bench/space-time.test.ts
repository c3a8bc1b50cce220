// bench/space-time.ts: the row arithmetic (device ticks, ST/SO and ST/TO, issue 13's targets) from a made-up
// loom bench result, the table, the arguments, and one run on the CPU backend (small fleets, no device time:
// the ratios come out on wall clock only). No timing assertions.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchResult } from '../../src/measure/index.js';
import { FLEETS, scaleFleet } from '../../bench/fleet-table.js';
import {
  SPACE_TIME_FLEETS,
  type SpaceTimeEntry,
  TARGET_SPACE_ONLY,
  TARGET_TIME_ONLY,
  formatSpaceTime,
  parseSpaceTimeArgs,
  runSpaceTime,
  spaceTimeRow,
  writeSpaceTime,
} from '../../bench/space-time.js';

type Mode = BenchResult['modes'][number];
const stats = (x: number) => ({ n: 5, p50: x, p99: x * 2, mean: x, min: x, max: x * 2 });
const mode = (m: Mode['mode'], launches: number, wall: number, device: number | null, err = 0): Mode => ({
  mode: m,
  semantics: m,
  plans: m === 'space-only' ? 12 : 1,
  launchesPerTick: launches,
  flopsPerTick: 1,
  bytesPerTick: 1,
  tickUs: stats(wall),
  deviceTickUs: device === null ? null : stats(device),
  inferencesPerSec: 1,
  flopsPerSec: 1,
  bytesPerSec: 1,
  spaceTimeSpeedup: 1,
  maxRelErrorVsSpaceTime: err,
  samplesUs: [wall],
});
const bench = (to: number | null, so: number | null, st: number | null): Pick<BenchResult, 'modes' | 'fleet'> => ({
  modes: [mode('time-only', 507, 3000, to), mode('space-only', 507, 1500, so, 2e-6), mode('space-time', 142, 1000, st)],
  fleet: { tenantCount: 12 } as BenchResult['fleet'],
});
const base = (fleet: string) => ({ fleet, description: `${fleet} fleet`, seconds: {} });

describe('space-time rows', () => {
  it('device ticks, both ratios and the targets', () => {
    const r = spaceTimeRow(base('zoo-mix'), bench(2460, 830, 1210)); // issue 13's held-out fleet numbers
    expect(r.tenants).toBe(12);
    expect(r.modes['space-only']).toEqual({ plans: 12, launches: 507, wallP50Us: 1500, deviceP50Us: 830 });
    expect(r.device.vsSpaceOnly).toBeCloseTo(1210 / 830, 12);
    expect(r.device.vsTimeOnly).toBeCloseTo(1210 / 2460, 12);
    expect(r.wall.vsSpaceOnly).toBeCloseTo(1000 / 1500, 12);
    expect(r.wall.vsTimeOnly).toBeCloseTo(1000 / 3000, 12);
    expect(r.targets).toEqual({ spaceOnly: false, timeOnly: true });
    expect(r.maxRelErrorVsSpaceTime).toBe(2e-6);
    expect(spaceTimeRow(base('f'), bench(1600, 1000, 800)).targets).toEqual({ spaceOnly: true, timeOnly: true }); // at both bounds
    expect(spaceTimeRow(base('f'), bench(1000, 1000, 501)).targets).toEqual({ spaceOnly: true, timeOnly: false });
    expect([TARGET_SPACE_ONLY, TARGET_TIME_ONLY]).toEqual([0.8, 0.5]);
  });

  it('no device time (CPU): no device ratios, no verdict, the wall ratios stand', () => {
    const r = spaceTimeRow(base('cpu'), bench(null, null, null));
    expect(r.device).toEqual({ vsSpaceOnly: null, vsTimeOnly: null });
    expect(r.targets).toEqual({ spaceOnly: null, timeOnly: null });
    expect(r.wall.vsSpaceOnly).toBeCloseTo(2 / 3, 12);
  });

  it('the table: one line per fleet, a failed fleet named with its reason', () => {
    const entries: SpaceTimeEntry[] = [
      { status: 'measured', row: spaceTimeRow(base('zoo-mix'), bench(2460, 830, 1210)) },
      { status: 'measured', row: spaceTimeRow(base('mlp-b1'), bench(400, 150, 100)) },
      { status: 'failed', fleet: 'resnet18', description: '32 resnet18', reason: 'out of memory' },
    ];
    const text = formatSpaceTime(entries, { date: '2026-12-06', backend: 'cuda', device: 'Fake GPU', ticks: 100 });
    expect(text).toMatch(/^zoo-mix\s+12\s+507\/507\/142\s+2\.46 ms\s+830\.0 µs\s+1\.21 ms\s+1\.46x\s+0\.49x\s+n\/y\s+0\.67x\s+0\.33x$/m);
    expect(text).toMatch(/^mlp-b1 .* 0\.67x\s+0\.25x\s+y\/y /m);
    expect(text).toMatch(/^resnet18 .*FAILED/m);
    expect(text).toContain('resnet18: 32 resnet18; FAILED: out of memory');
    expect(text).toContain('ST/SO ≤ 0.8x / ST/TO ≤ 0.5x');
  });

  it('arguments: every bench fleet by default, the demo among them; unknown names refused', () => {
    expect(SPACE_TIME_FLEETS).toEqual(['demo', ...Object.keys(FLEETS)]);
    expect(SPACE_TIME_FLEETS).toContain('zoo-mix');
    const { opts } = parseSpaceTimeArgs([]);
    expect(opts.fleets.map((f) => (f.kind === 'demo' ? 'demo' : f.spec.name))).toEqual(SPACE_TIME_FLEETS);
    expect(opts).toMatchObject({ backend: 'cuda', ticks: 100, warmup: 10 });
    const scaled = parseSpaceTimeArgs(['--fleets', 'lstm', '--tenants-scale', '0.1']).opts.fleets[0]!;
    expect(scaled.kind === 'table' && scaled.spec.groups[0]!.count).toBe(12);
    expect(() => parseSpaceTimeArgs(['--fleets', 'nope'])).toThrow(/unknown fleet 'nope'/);
    expect(() => parseSpaceTimeArgs(['--ticks', '0'])).toThrow(/--ticks/);
  });
});

describe('bench/space-time.ts on the CPU backend', () => {
  let work: string;
  let result: Awaited<ReturnType<typeof runSpaceTime>>;

  beforeAll(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'loom-space-time-test-'));
    result = await runSpaceTime({
      fleets: [
        { kind: 'table', spec: scaleFleet(FLEETS['zoo-mix']!, 0.34) },
        { kind: 'table', spec: scaleFleet(FLEETS['mlp-b1']!, 0.05) },
      ],
      work,
      backend: 'cpu',
      ticks: 2,
      warmup: 0,
      quietProgress: true,
    });
  }, 600_000);

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('measures every fleet through loom bench: three modes that agree, wall ratios, no device numbers', () => {
    expect(result.entries.map((e) => e.status)).toEqual(['measured', 'measured']);
    for (const e of result.entries) {
      if (e.status !== 'measured') continue;
      const r = e.row;
      expect(r.modes['space-only'].plans, r.fleet).toBe(r.tenants);
      expect(r.modes['time-only'].launches, r.fleet).toBeGreaterThanOrEqual(r.modes['space-time'].launches);
      expect(r.modes['space-time'].deviceP50Us).toBeNull();
      expect(r.wall.vsSpaceOnly).toBeGreaterThan(0);
      expect(r.maxRelErrorVsSpaceTime).toBeLessThanOrEqual(1e-4);
      expect(result.bench[r.fleet]!.modes.map((m) => m.mode)).toEqual(['time-only', 'space-only', 'space-time']);
      expect('samplesUs' in result.bench[r.fleet]!.modes[0]!).toBe(false);
    }
    expect(result.table).toMatch(/^zoo-mix\s+4\s/m);
    expect(existsSync(path.join(work, 'zoo-mix', 'plan', 'plan.json'))).toBe(true);
  });

  it('writes the JSON and the .txt copy', () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'loom-space-time-out-'));
    try {
      const files = writeSpaceTime(result, out);
      expect(path.basename(files.json)).toMatch(/^\d{4}-\d\d-\d\d-.+-space-time\.json$/);
      const json = JSON.parse(readFileSync(files.json, 'utf8')) as { format: string; version: number; entries: unknown[] };
      expect([json.format, json.version, json.entries.length]).toEqual(['loom-space-time', 1, 2]);
      expect(readFileSync(files.txt, 'utf8')).toBe(`${result.table}\n`);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('a fleet that cannot be measured is a FAILED row, not the end of the run', async () => {
    const bad = await runSpaceTime({
      fleets: [{ kind: 'table', spec: { name: 'broken', groups: [{ kind: 'mlp', count: 0, batch: 1, options: { sizes: [4, 2] } }] } }],
      work,
      backend: 'cpu',
      ticks: 1,
      warmup: 0,
      quietProgress: true,
    });
    expect(bad.entries).toHaveLength(1);
    expect(bad.entries[0]!.status).toBe('failed');
    expect(bad.table).toMatch(/broken: .*FAILED: .*positive integer count/);
  });
});
