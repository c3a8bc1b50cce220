// Rows per tenant reach the backend (issue 12, item 3): the planner marks GEMMs whose m scales with a tenant's
// request rows (problem.rowsUnit), and a tick whose live tenants carry few rows runs those GEMMs at m' =
// rowsUnit · bucket (the most rows of a live tenant rounded up to a power of two). On the CPU backend: the same
// answers as onnxruntime and as a full-rows tick, with different rows per tenant, in full and partial ticks, and
// fewer GEMM rows run (handleInfo gemmRows, lastRowsBucket).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLaunchPlan, loadWeights, parseLaunchPlan, readPlanDir, writePlanDir } from '../../codegen/index.js';
import type { Launch } from '../../ir/contract/launch.js';
import type { Plan } from '../../ir/contract/plan.js';
import { type LoadedPlan, loadPlan } from '../../runtime/index.js';
import { TickScheduler } from '../../runtime/serve/index.js';
import { loadNativeAddon } from '../../runtime/native-addon.js';
import { planFleet } from '../../src/planner/index.js';
import { makeFeeds, relativeError, runOrt } from '../oracle/harness.js';
import { rowsFeeds, rowsFleet, zooTenant } from './rows-fleet.js';

const zoo = zooTenant;
const fleet = rowsFleet;

// Per tenant: [GEMM entries in launches that scale, all GEMM entries].
function scaledEntries(plan: Plan | { tenants: readonly { id: string }[]; launches: readonly Launch[] }): Record<string, [number, number]> {
  const out: Record<string, [number, number]> = {};
  for (const l of plan.launches) {
    if (l.kind === 'kernel') continue;
    const groups = l.kind === 'gemm' ? [{ problem: l.problem, entries: l.entries }] : l.groups;
    for (const g of groups) {
      for (const e of g.entries) {
        const r = (out[plan.tenants[e.tenant]!.id] ??= [0, 0]);
        if (g.problem.rowsUnit !== undefined) r[0]++;
        r[1]++;
      }
    }
  }
  return out;
}

describe('the planner marks the GEMMs whose m scales with the rows', () => {
  it('MLPs, the encoder and the ResNet classifier scale; the LSTM (time-major) and per-image conv entries run every row', () => {
    const ts = fleet();
    const plan = planFleet(ts.map((t) => t.input));
    const s = scaledEntries(plan);
    for (const id of ['mlp-0', 'mlp-1', 'mlp-2', 'pad']) expect(s[id]![0], id).toBe(s[id]![1]);
    expect(s.lstm![0]).toBe(0);
    // encoder: the dense layers (rows = batch·seq, rowsUnit = seq) scale; the per-(batch, head) attention products do not
    expect(s.enc![0]).toBeGreaterThan(0);
    expect(s.enc![0]).toBeLessThan(s.enc![1]);
    expect(s.resnet![0]).toBe(1); // its fc Gemm; every conv runs per image
    for (const l of plan.launches) {
      if (l.kind !== 'gemm') continue;
      const unit = l.problem.rowsUnit;
      if (unit === undefined) continue;
      expect(l.problem.transA).toBe(false);
      expect(l.problem.m % unit).toBe(0);
      const maxBatch = ts[l.entries[0]!.tenant]!.input.maxBatch;
      expect(l.problem.m / unit, l.info.label).toBe(maxBatch);
    }
  });

  it('a tenant of maxBatch 1 never scales (its rows are always all of them)', () => {
    const plan = planFleet([zoo('one', 'mlp', { seed: 1, sizes: [8, 8, 2] }, 1).input]);
    expect(scaledEntries(plan).one![0]).toBe(0);
  });
});

describe('ticks at a row bucket on the CPU backend', () => {
  const ts = fleet();
  let dir: string;
  let plan: LoadedPlan;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'loom-rows-'));
    await writePlanDir(planFleet(ts.map((t) => t.input)), dir, { nvcc: 'off' });
    plan = await loadPlan(dir, { backend: 'cpu', threads: 2 });
  });
  afterAll(() => {
    plan?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const feedsFor = (rows: Record<string, number>, seed: number) => rowsFeeds(ts, rows, seed);

  const info = (): Record<string, number> => {
    const i = plan.backendInfo();
    return { fullRows: Number(i.fullRows), lastRowsBucket: Number(i.lastRowsBucket), gemmRows: Number(i.gemmRows), bucketTicks: Number(i.rowBucketTicks) };
  };

  // One tick as given (at its bucket) and the same tenants' inputs with `pad` at 8 rows (a full-rows tick): each
  // tenant against onnxruntime and (but `pad`, fed other rows there) against the full-rows tick, for the rows it has.
  async function checkTick(rows: Record<string, number>, seed: number, bucket: number): Promise<void> {
    const feeds = feedsFor(rows, seed);
    const got = await plan.runTick(feeds);
    expect(info().lastRowsBucket, 'bucket').toBe(bucket);
    const full = await plan.runTick({ ...feeds, pad: feedsFor({ pad: 8 }, 999).pad! });
    expect(info().lastRowsBucket).toBe(info().fullRows);
    for (const [id, f] of Object.entries(feeds)) {
      const t = ts.find((x) => x.input.id === id)!;
      const want = await runOrt(t.model, f);
      expect(Object.keys(got[id]!).sort(), id).toEqual(Object.keys(want).sort());
      for (const [name, w] of Object.entries(want)) {
        const g = got[id]![name]!;
        expect(g.shape, `${id}/${name}`).toEqual(w.shape);
        expect(relativeError(g, w), `${id}/${name} vs onnxruntime`).toBeLessThanOrEqual(1e-4);
        if (id !== 'pad') expect(relativeError(g, full[id]![name]!), `${id}/${name} vs the full-rows tick`).toBeLessThanOrEqual(1e-5);
      }
    }
  }

  it('a full tick at every row, then one with different rows per tenant (bucket 4), every tenant live', async () => {
    expect(info().fullRows).toBe(8);
    await checkTick({ 'mlp-0': 8, 'mlp-1': 8, 'mlp-2': 8, pad: 8, enc: 4, resnet: 4, lstm: 4 }, 10, 8);
    await checkTick({ 'mlp-0': 1, 'mlp-1': 3, 'mlp-2': 2, pad: 4, enc: 1, resnet: 2, lstm: 3 }, 20, 4);
  });

  it('partly occupied ticks (sparse) at buckets 2 and 1, after ticks that left other rows behind', async () => {
    await checkTick({ 'mlp-1': 2, enc: 1, lstm: 2 }, 30, 2);
    await checkTick({ 'mlp-0': 1 }, 40, 1);
    await checkTick({ resnet: 1, 'mlp-2': 1 }, 50, 1);
    await checkTick({ 'mlp-2': 5, enc: 3 }, 60, 8); // 5 rounds up to 8 = every row
  });

  it("loom serve's scheduler batches requests and their rows reach the backend (1-row requests run at bucket 1)", async () => {
    const s = new TickScheduler(plan, {});
    const before = info().gemmRows;
    const x = rowsFeeds(ts, { 'mlp-0': 1, enc: 1 }, 70);
    const [a, b] = await Promise.all([s.submit('mlp-0', x['mlp-0']!), s.submit('enc', x.enc!)]);
    expect(info().lastRowsBucket).toBe(1);
    expect(info().gemmRows - before).toBeGreaterThan(0);
    for (const [id, got] of [
      ['mlp-0', a!],
      ['enc', b!],
    ] as const) {
      const want = await runOrt(ts.find((t) => t.input.id === id)!.model, x[id]!);
      for (const [name, w] of Object.entries(want)) expect(relativeError(got[name]!, w), `${id}/${name}`).toBeLessThanOrEqual(1e-4);
    }
    await s.close();
  });

  it('runs fewer GEMM rows at a smaller bucket, in proportion for a fleet of MLPs', async () => {
    const dir2 = mkdtempSync(path.join(tmpdir(), 'loom-rows-mlp-'));
    try {
      const wide = zoo('wide', 'mlp', { seed: 5, sizes: [64, 256, 256, 8] }, 64);
      await writePlanDir(planFleet([wide.input]), dir2, { nvcc: 'off' });
      const p = await loadPlan(dir2, { backend: 'cpu', threads: 2 });
      try {
        const rowsRun = async (rows: number): Promise<number> => {
          const before = Number(p.backendInfo().gemmRows);
          await p.runTick({ wide: makeFeeds(wide.input.graph, { batch: rows, seed: rows }) });
          return Number(p.backendInfo().gemmRows) - before;
        };
        const layers = 3;
        expect(await rowsRun(64)).toBe(64 * layers);
        expect(await rowsRun(1)).toBe(1 * layers);
        expect(Number(p.backendInfo().lastRowsBucket)).toBe(1);
        expect(await rowsRun(5)).toBe(8 * layers);
        expect(await rowsRun(33)).toBe(64 * layers);
        expect(Number(p.backendInfo().rowBucketTicks)).toBe(2);
      } finally {
        p.close();
      }
    } finally {
      rmSync(dir2, { recursive: true, force: true });
    }
  });
});

describe('problem.rowsUnit in the contract', () => {
  // the MLP's first GEMM with `problem` merged in, as plan.json text and as the parsed object
  const withProblem = (problem: object) => {
    const plan = planFleet([zoo('m', 'mlp', { seed: 1, sizes: [8, 16, 4] }, 4).input]);
    const lp = buildLaunchPlan(plan).plan;
    const i = lp.launches.findIndex((l) => l.kind === 'gemm');
    const launches = lp.launches.map((l, j) => (j === i && l.kind === 'gemm' ? { ...l, problem: { ...l.problem, ...problem } } : l));
    return { ...lp, launches };
  };

  it('the JS validator refuses a rowsUnit that does not divide m or sits on a transposed A', () => {
    expect(() => parseLaunchPlan(JSON.stringify(withProblem({})))).not.toThrow();
    expect(() => parseLaunchPlan(JSON.stringify(withProblem({ rowsUnit: 3 })))).toThrow(/rowsUnit: 3 does not divide m = 4/);
    expect(() => parseLaunchPlan(JSON.stringify(withProblem({ rowsUnit: 0 })))).toThrow(/rowsUnit: expected an integer >= 1/);
    expect(() => parseLaunchPlan(JSON.stringify(withProblem({ rowsUnit: 1, transA: true, lda: 4 })))).toThrow(/transposed A/);
  });

  it('the native plan check refuses them too', async () => {
    const dir2 = mkdtempSync(path.join(tmpdir(), 'loom-rows-bad-'));
    try {
      await writePlanDir(planFleet([zoo('m', 'mlp', { seed: 1, sizes: [8, 16, 4] }, 4).input]), dir2, { nvcc: 'off' });
      const weights = loadWeights(dir2, readPlanDir(dir2));
      const addon = loadNativeAddon();
      expect(() => addon.create(withProblem({ rowsUnit: 3 }), weights, { backend: 'cpu' })).toThrow(/rowsUnit 3 must divide m = 4/);
      addon.destroy(addon.create(withProblem({ rowsUnit: 2 }), weights, { backend: 'cpu' }));
    } finally {
      rmSync(dir2, { recursive: true, force: true });
    }
  });
});
