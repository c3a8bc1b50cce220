// The io gather kernel (native/src/backend_cuda_io_gather.cu): a staged sparse tick whose coarse input copies
// would move at least twice its live bytes (and 128 KB or more) reads the live inputs with one kernel straight
// from the pinned staging buffer. 64 MLPs with 784 inputs each (200 KB of inputs a tick): masks of every 4th
// tenant, ~10% scattered, one tenant, and a contiguous half (that one copies), each against the CPU backend and
// the full graph, several ticks per mask (eager first run, capture, replays), with the gather counter moving
// only where the rule picks it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writePlanDir } from '../../codegen/index.js';
import { generateModel } from '../../models/index.js';
import { type LoadedPlan, loadPlan } from '../../runtime/index.js';
import { planFleet } from '../../src/planner/index.js';
import { type TestTenant, tenantFromBytes } from '../planner/fleet-helpers.js';
import { worstErrors } from '../runtime/precision-fleet.js';
import { GPU_SKIP_REASON } from './gpu-env.js';
import { feedsFor, loadCudaWith } from './masked-fleet.js';

const TENANTS = 64;
const VS_CPU = 1e-4;
const SAME = 1e-5;

const gathered = (p: LoadedPlan): number => Number(p.backendInfo().sparseGatheredTicks ?? Number.NaN);

describe.skipIf(GPU_SKIP_REASON !== null)('CUDA backend: sparse ticks gather their inputs from staging', () => {
  let dir = '';
  let ts: TestTenant[] = [];
  let cpu: LoadedPlan;
  let sparse: LoadedPlan;
  let full: LoadedPlan;

  beforeAll(async () => {
    ts = Array.from({ length: TENANTS }, (_, i) => tenantFromBytes(`mlp-${i}`, generateModel('mlp', { seed: 40 + i, sizes: [784, 32, 10] } as never).bytes, 1));
    dir = mkdtempSync(path.join(tmpdir(), 'loom-gather-'));
    await writePlanDir(planFleet(ts.map((t) => t.input)), dir, { nvcc: 'auto' });
    cpu = await loadPlan(dir, { backend: 'cpu' });
    sparse = await loadCudaWith(dir, { LOOM_CUDA_SPARSE: 'always' });
    full = await loadCudaWith(dir, { LOOM_CUDA_SPARSE: 'never' });
  });

  afterAll(() => {
    cpu?.close();
    sparse?.close();
    full?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const cases: Array<[string, (i: number) => boolean, boolean]> = [
    ['every 4th tenant', (i) => i % 4 === 1, true],
    ['~10% scattered', (i) => (i * 37) % 64 < 7, true],
    ['one tenant', (i) => i === 37, false], // 3 KB: one copy
    ['a contiguous half', (i) => i < TENANTS / 2, false], // copies move only live bytes
  ];

  for (const [name, live, gathers] of cases) {
    it(`${name}: matches the CPU backend and the full graph; ${gathers ? 'gathered' : 'copied'}`, async () => {
      expect(Number.isNaN(gathered(sparse)), 'the backend reports sparseGatheredTicks').toBe(false);
      const before = gathered(sparse);
      for (let rep = 0; rep < 4; rep++) {
        const feeds = feedsFor(ts, 1000 + 10 * rep + name.length, live);
        const s = await sparse.runTick(feeds);
        expect(Object.keys(s).sort()).toEqual(Object.keys(feeds).sort());
        expect(worstErrors(s, await cpu.runTick(feeds)), `${name}, tick ${rep}: vs CPU`).toSatisfy((e: Record<string, number>) =>
          Object.values(e).every((x) => x <= VS_CPU),
        );
        expect(worstErrors(s, await full.runTick(feeds)), `${name}, tick ${rep}: vs full graph`).toSatisfy((e: Record<string, number>) =>
          Object.values(e).every((x) => x <= SAME),
        );
      }
      expect(gathered(sparse) - before, `${name}: gathered ticks`).toBe(gathers ? 4 : 0);
    });
  }
});
