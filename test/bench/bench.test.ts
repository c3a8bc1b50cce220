// loom bench on a small fleet, CPU backend, few ticks. No timing assertions: what is checked is that the
// three modes compute the same thing, launch what they say, and that the results JSON is complete.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readPlanDir } from '../../codegen/index.js';
import { toNumbers } from '../../ir/tensor.js';
import {
  BENCH_MODES,
  type BenchResult,
  benchFleet,
  benchInputs,
  formatBench,
  openModes,
  percentile,
  tickStats,
  writeBaselines,
} from '../../src/measure/index.js';
import { readPlanManifest } from '../../src/fleet/manifest-copy.js';
import { planFleetDetailed } from '../../src/planner/index.js';
import { readManifest } from '../../src/fleet/manifest.js';
import { loadTenants } from '../../src/fleet/tenants.js';
import { compileBenchFleet, FLEET } from './fleet-fixture.js';

let planDir = '';
let manifestFile = '';

beforeAll(async () => {
  ({ planDir, manifest: manifestFile } = await compileBenchFleet());
});

describe('planFleet grouping', () => {
  it("'none' makes one launch per tenant step, one tenant each, in tenant order; the default is unchanged", () => {
    const tenants = loadTenants(readManifest(manifestFile));
    const grouped = planFleetDetailed(tenants);
    const explicit = planFleetDetailed(tenants, { grouping: 'space-time' });
    expect(explicit.plan).toEqual(grouped.plan);
    const none = planFleetDetailed(tenants, { grouping: 'none' });
    const steps = none.stepsPerTenant.reduce((a, b) => a + b, 0);
    expect(none.stepsPerTenant).toEqual(grouped.stepsPerTenant);
    expect(none.plan.launches).toHaveLength(steps);
    expect(none.plan.stages).toBe(steps);
    expect(none.plan.launches.every((l) => l.info.tenants.length === 1 && l.info.sources.length === 1)).toBe(true);
    const order = none.plan.launches.map((l) => l.info.tenants[0]!);
    expect(order).toEqual([...order].sort((a, b) => a - b)); // tenants one after another
    expect(grouped.plan.launches.length).toBeLessThan(steps);
    expect(() => planFleetDetailed(tenants, { grouping: 'sideways' as never })).toThrow(/grouping 'sideways'/);
  });
});

describe('bench modes', () => {
  it('time-only, space-only and space-time compute the same outputs for every tenant', async () => {
    const plan = readPlanDir(planDir);
    const scratch = mkdtempSync(path.join(os.tmpdir(), 'loom-bench-modes-'));
    const baselines = await writeBaselines(plan, readPlanManifest(planDir), scratch);
    expect(baselines.spaceOnly.map((b) => b.tenant)).toEqual(FLEET.map((t) => t.id));
    const runners = await openModes(planDir, baselines, { backend: 'cpu' });
    try {
      const inputs = benchInputs(plan);
      const outs = [];
      for (const r of runners) outs.push(await r.tick(inputs));
      const [ref, ...others] = [outs[2]!, outs[0]!, outs[1]!]; // space-time first
      let compared = 0;
      for (const t of plan.tenants) {
        for (const io of t.outputs) {
          const want = toNumbers(ref[t.id]![io.name]!);
          expect(want.every(Number.isFinite)).toBe(true);
          expect(want.some((v) => v !== 0)).toBe(true);
          for (const o of others) {
            const got = o[t.id]![io.name]!;
            expect(got.shape).toEqual(ref[t.id]![io.name]!.shape);
            const g = toNumbers(got);
            let diff = 0;
            for (let i = 0; i < g.length; i++) diff = Math.max(diff, Math.abs(g[i]! - want[i]!));
            expect(diff, `${t.id}/${io.name}`).toBeLessThanOrEqual(1e-5);
            compared++;
          }
        }
      }
      expect(compared).toBe(2 * plan.tenants.reduce((a, t) => a + t.outputs.length, 0));
      // launch counts: time-only = every tenant step; space-only = the tenants' own plans; the plan fewer
      const layers = plan.tenants.reduce((a, t) => a + t.layers, 0);
      const [timeOnly, spaceOnly, spaceTime] = runners.map((r) => r.plans.reduce((a, p) => a + p.launches.length, 0));
      expect(timeOnly).toBe(layers);
      expect(spaceOnly).toBeLessThanOrEqual(layers);
      expect(spaceTime).toBeLessThan(spaceOnly!);
      expect(runners[1]!.plans).toHaveLength(plan.tenants.length);
    } finally {
      for (const r of runners) r.close();
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('benchFleet returns every field the JSON promises', async () => {
    const phases = new Set<string>();
    const r: BenchResult = await benchFleet(planDir, { backend: 'cpu', ticks: 3, warmup: 1, threads: 1, onProgress: (p) => phases.add(p.phase) });
    expect([...phases]).toEqual(['prepare', 'warm-up', 'measure']);
    expect(r.format).toBe('loom-bench');
    expect(r.version).toBe(1);
    expect(Number.isNaN(Date.parse(r.date))).toBe(false);
    expect(r.backend).toBe('cpu');
    expect(r.device).toBe(os.cpus()[0]!.model);
    expect(r.host.cpus).toBe(os.cpus().length);
    expect(r.host.loadAverage).toHaveLength(2);
    expect(r.settings).toEqual({ ticks: 3, warmup: 1, threads: 1, rows: 'maxBatch' });
    const plan = readPlanDir(planDir);
    expect(r.fleet.tenants.map((t) => t.id)).toEqual(FLEET.map((t) => t.id));
    expect(r.fleet.rowsPerTick).toBe(FLEET.reduce((a, t) => a + t.maxBatch, 0));
    expect(r.fleet.launches).toBe(plan.launches.length);
    expect(r.fleet.tenantLayers).toBe(plan.tenants.reduce((a, t) => a + t.layers, 0));
    expect(r.modes.map((m) => m.mode)).toEqual([...BENCH_MODES]);
    for (const m of r.modes) {
      expect(m.semantics.length).toBeGreaterThan(20);
      expect(m.samplesUs).toHaveLength(3);
      expect(m.tickUs.n).toBe(3);
      expect(m.tickUs.p50).toBeGreaterThan(0);
      expect(m.tickUs.p99).toBeGreaterThanOrEqual(m.tickUs.p50);
      expect(m.deviceTickUs).toBeNull();
      expect(m.inferencesPerSec).toBeCloseTo(r.fleet.rowsPerTick / (m.tickUs.p50 / 1e6), 6);
      expect(m.flopsPerSec).toBeCloseTo(m.flopsPerTick / (m.tickUs.p50 / 1e6), 0);
      expect(m.bytesPerSec).toBeCloseTo(m.bytesPerTick / (m.tickUs.p50 / 1e6), 0);
      expect(m.flopsPerTick).toBeGreaterThan(0);
      expect(m.maxRelErrorVsSpaceTime).toBeLessThanOrEqual(1e-5);
    }
    const [timeOnly, spaceOnly, spaceTime] = r.modes;
    expect(timeOnly!.launchesPerTick).toBe(r.fleet.tenantLayers);
    expect(spaceOnly!.plans).toBe(FLEET.length);
    expect(spaceTime!.launchesPerTick).toBe(r.fleet.launches);
    expect(spaceTime!.launchesPerTick).toBeLessThan(timeOnly!.launchesPerTick);
    expect(spaceTime!.spaceTimeSpeedup).toBe(1);
    expect(timeOnly!.spaceTimeSpeedup).toBeCloseTo(timeOnly!.tickUs.p50 / spaceTime!.tickUs.p50, 9);
    // the same work in every mode: only the grouping differs
    expect(timeOnly!.flopsPerTick).toBe(spaceTime!.flopsPerTick);
    expect(spaceOnly!.flopsPerTick).toBe(spaceTime!.flopsPerTick);
    const text = formatBench(r);
    for (const s of ['time-only', 'space-only', 'space-time', 'launches/tick', 'tick p50', 'tick p99', 'inferences/s', 'FLOP/s', 'speedup'])
      expect(text).toContain(s);
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  });

  it('percentiles are nearest-rank over measured samples', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([5], 99)).toBe(5);
    const s = tickStats([...Array.from({ length: 100 }, (_, i) => i + 1)].reverse());
    expect([s.p50, s.p99, s.min, s.max, s.mean, s.n]).toEqual([50, 99, 1, 100, 50.5, 100]);
  });

  it('a plan dir without its manifest copy needs --manifest; the copy is a usable manifest', () => {
    const copy = readPlanManifest(planDir);
    expect(copy.tenants.map((t) => [t.id, t.maxBatch])).toEqual(FLEET.map((t) => [t.id, t.maxBatch]));
    expect(copy.tenants.every((t) => existsSync(t.modelPath))).toBe(true);
    const bare = mkdtempSync(path.join(os.tmpdir(), 'loom-bench-bare-'));
    expect(() => readPlanManifest(bare)).toThrow(/no manifest\.json.*--manifest/);
    expect(readPlanManifest(bare, manifestFile).tenants).toHaveLength(FLEET.length);
  });
});
