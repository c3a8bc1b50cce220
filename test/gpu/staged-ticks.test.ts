// Staged, pipelined ticks on the CUDA backend (native/src/backend_cuda_staged.cc): several ticks in flight
// through the staging sets, full and sparse, copied directly on the compute stream (LOOM_CUDA_OVERLAP=never)
// or through the copy stream and device buffers (always), match the CPU backend tenant by tenant, settle in
// call order, and a failed tick among them fails alone.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writePlanDir } from '../../codegen/index.js';
import { type LoadedPlan, loadPlan } from '../../runtime/index.js';
import { planFleet } from '../../src/planner/index.js';
import { type TestTenant, mixedFleet } from '../planner/fleet-helpers.js';
import { worstErrors } from '../runtime/precision-fleet.js';
import { GPU_SKIP_REASON } from './gpu-env.js';
import { feedsFor, loadCudaWith as loadWith } from './masked-fleet.js';

const VS_CPU = 1e-4;

describe.skipIf(GPU_SKIP_REASON !== null)('CUDA backend: staged, pipelined ticks', () => {
  let dir = '';
  let ts: TestTenant[] = [];
  let cpu: LoadedPlan;

  beforeAll(async () => {
    ts = mixedFleet({ moreZoo: true });
    dir = mkdtempSync(path.join(tmpdir(), 'loom-staged-'));
    await writePlanDir(planFleet(ts.map((t) => t.input)), dir, { nvcc: 'auto' });
    cpu = await loadPlan(dir, { backend: 'cpu' });
  });

  afterAll(() => {
    cpu?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // full ticks, every other tenant, one tenant: in flight together, in call order
  const masks: ((i: number) => boolean)[] = [() => true, (i) => i % 2 === 0, (i) => i === 1, () => true, (i) => i % 3 !== 0, () => true];

  for (const overlap of ['never', 'always'] as const) {
    it(`LOOM_CUDA_OVERLAP=${overlap}: ticks in flight together match the CPU backend and settle in order`, async () => {
      const gpu = await loadWith(dir, { LOOM_CUDA_OVERLAP: overlap, LOOM_CUDA_SPARSE: 'always' }, { pipelineDepth: 3 });
      try {
        for (let round = 0; round < 2; round++) {
          const feeds = masks.map((live, m) => feedsFor(ts, 1000 * (round + 1) + 50 * m, live));
          const order: number[] = [];
          const outs = await Promise.all(
            feeds.map((f, m) =>
              gpu.runTick(f).then((o) => {
                order.push(m);
                return o;
              }),
            ),
          );
          expect(order).toEqual(feeds.map((_, m) => m));
          for (let m = 0; m < feeds.length; m++) {
            const want = await cpu.runTick(feeds[m]!);
            expect(Object.keys(outs[m]!).sort()).toEqual(Object.keys(want).sort());
            for (const [id, e] of Object.entries(worstErrors(outs[m]!, want))) expect(e, `round ${round}, tick ${m}: ${id}`).toBeLessThanOrEqual(VS_CPU);
          }
        }
        const info = gpu.backendInfo();
        expect(Number(info.stagedTicksCuda)).toBe(2 * masks.length);
        expect(Number(info.stagedOverlapped)).toBe(overlap === 'always' ? 2 * masks.length : 0);
        expect(Number(info.sparseTicks)).toBeGreaterThan(0);
      } finally {
        gpu.close();
      }
    });
  }

  it('a failing tick among ticks in flight fails alone; the next ones are right', async () => {
    const gpu = await loadWith(dir, { LOOM_CUDA_OVERLAP: 'always' }, { pipelineDepth: 3, testFaults: { ticks: 1, after: 1 } });
    try {
      const feeds = [0, 1, 2, 3].map((k) => feedsFor(ts, 5000 + 100 * k, () => true));
      const settled = await Promise.allSettled(feeds.map((f) => gpu.runTick(f)));
      expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      for (const k of [0, 2, 3]) {
        const r = settled[k] as PromiseFulfilledResult<Awaited<ReturnType<LoadedPlan['runTick']>>>;
        for (const [id, e] of Object.entries(worstErrors(r.value, await cpu.runTick(feeds[k]!)))) expect(e, `tick ${k}: ${id}`).toBeLessThanOrEqual(VS_CPU);
      }
    } finally {
      gpu.close();
    }
  });
});
