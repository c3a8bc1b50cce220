// A branched plan on the CUDA backend (src/planner/branches.ts): the mixed test fleet with every group that fits
// the lanes run as parallel branches (a lane per tenant, up to 16) computes what the CPU backend and the batched
// plan compute, tenant by tenant; its tick is one captured graph over all its lanes, the critical path's lanes at
// high stream priority (and the same outputs with LOOM_CUDA_PRIORITY=off).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writePlanDir } from '../../codegen/index.js';
import type { Tensor } from '../../ir/tensor.js';
import { type LoadedPlan, loadPlan } from '../../runtime/index.js';
import { planFleet } from '../../src/planner/index.js';
import { makeFeeds } from '../oracle/harness.js';
import { type TestTenant, mixedFleet } from '../planner/fleet-helpers.js';
import { worstErrors } from '../runtime/precision-fleet.js';
import { GPU_SKIP_REASON } from './gpu-env.js';

describe.skipIf(GPU_SKIP_REASON !== null)('CUDA backend on a branched plan', () => {
  let dir = '';
  let ts: TestTenant[] = [];
  const loaded: LoadedPlan[] = [];

  beforeAll(async () => {
    ts = mixedFleet({ moreZoo: true });
    dir = mkdtempSync(path.join(tmpdir(), 'loom-gpu-branches-'));
    for (const [name, branching] of [
      ['branched', 'auto'],
      ['batched', 'never'],
    ] as const)
      await writePlanDir(
        planFleet(
          ts.map((t) => t.input),
          { branching },
        ),
        path.join(dir, name),
        { nvcc: 'auto' },
      );
  });

  afterAll(() => {
    for (const l of loaded) l.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('matches the CPU backend and the batched plan on the GPU, tenant by tenant (fp32, ≤ 1e-4)', async () => {
    const branched = await loadPlan(path.join(dir, 'branched'), { backend: 'cuda' });
    const batched = await loadPlan(path.join(dir, 'batched'), { backend: 'cuda' });
    const cpu = await loadPlan(path.join(dir, 'branched'), { backend: 'cpu' });
    loaded.push(branched, batched, cpu);
    const b = branched.plan.cost.branches;
    expect(b?.tenants.length ?? 0, 'the mixed fleet has groups that fit the lanes').toBeGreaterThan(1);
    expect(branched.plan.lanes ?? 1).toBeGreaterThan(8);
    const info = branched.backendInfo();
    expect(info.graph, String(info.graphNote ?? '')).toBe(1);
    expect(info.lanes, String(info.lanesNote ?? '')).toBe(branched.plan.lanes);
    expect(branched.plan.priorityLanes?.length ?? 0, 'the branched plan names its critical lanes').toBeGreaterThan(0);
    expect(info.priorityLanes, String(info.lanesNote ?? '')).toBe(branched.plan.priorityLanes!.length);
    process.env.LOOM_CUDA_PRIORITY = 'off';
    const flat = await loadPlan(path.join(dir, 'branched'), { backend: 'cuda' }).finally(() => delete process.env.LOOM_CUDA_PRIORITY);
    loaded.push(flat);
    expect(flat.backendInfo().priorityLanes, String(flat.backendInfo().lanesNote ?? '')).toBe(0);
    for (const seed of [5, 6]) {
      const feeds: Record<string, Record<string, Tensor>> = {};
      ts.forEach((t, i) => {
        feeds[t.input.id] = makeFeeds(t.input.graph, { batch: t.input.maxBatch, seed: seed * 100 + i, intRange: t.intRange ?? 50 });
      });
      const [g, c, s, f] = [await branched.runTick(feeds), await cpu.runTick(feeds), await batched.runTick(feeds), await flat.runTick(feeds)];
      for (const [id, e] of Object.entries(worstErrors(g, c))) expect(e, `${id} vs the CPU backend`).toBeLessThanOrEqual(1e-4);
      for (const [id, e] of Object.entries(worstErrors(g, f))) expect(e, `${id} vs normal priority`).toBeLessThanOrEqual(1e-6);
      for (const [id, e] of Object.entries(worstErrors(g, s))) expect(e, `${id} vs the batched plan`).toBeLessThanOrEqual(1e-4);
    }
    const p50 = (l: LoadedPlan) => [...l.benchTick(50).deviceUs].sort((x, y) => x - y)[25]!.toFixed(1);
    process.stdout.write(
      `branched mixed fleet: ${branched.plan.launches.length} launches on ${branched.plan.lanes} lanes, device tick p50 ${p50(branched)} us (priority lanes ${branched.plan.priorityLanes!.join(',')}; all at normal priority ${p50(flat)} us)\n`,
    );
  });
});
