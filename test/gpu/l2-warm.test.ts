// L2 warm-up of a full tick's first weights (native/src/backend_cuda_l2warm.cc, LOOM_CUDA_L2_WARM): a kernel on a
// side stream prefetches the first GEMM weights into L2 while the tick's inputs are copied. A hint that must
// change no output: 8 MLPs 1024-1024-256-10 (42 MB of weights, 33.5 MB of them in the first layer) under a
// budget of 8 MB and of half the L2, ticks run one at a time and staged (three in flight, copies on the compute
// stream and through the copy stream), against the plan without it and the CPU backend, tenant by tenant; the
// budget, the launches and the notes as backendInfo() reports them; a plan with under 4 MB of weights does
// not warm.
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

const VS_CPU = 1e-4;
const SAME = 1e-6;
const MiB = 1 << 20;

const mlps = (n: number, sizes: number[], seed: number): TestTenant[] =>
  Array.from({ length: n }, (_, i) => tenantFromBytes(`mlp-${i}`, generateModel('mlp', { seed: seed + i, sizes } as never).bytes, 1));
const warmBytes = (p: LoadedPlan): number => Number(p.backendInfo().l2WarmBytes ?? Number.NaN);
const warmLaunches = (p: LoadedPlan): number => Number(p.backendInfo().l2WarmLaunches ?? Number.NaN);
const note = (p: LoadedPlan): string => String(p.backendInfo().l2WarmNote ?? '');

describe.skipIf(GPU_SKIP_REASON !== null)('CUDA backend: L2 warm-up of the first weights', () => {
  let dir = '';
  let small = '';
  let ts: TestTenant[] = [];
  const loaded: LoadedPlan[] = [];
  const keep = (p: LoadedPlan): LoadedPlan => {
    loaded.push(p);
    return p;
  };

  beforeAll(async () => {
    ts = mlps(8, [1024, 1024, 256, 10], 70);
    dir = mkdtempSync(path.join(tmpdir(), 'loom-l2warm-'));
    await writePlanDir(planFleet(ts.map((t) => t.input)), dir, { nvcc: 'auto' });
    small = mkdtempSync(path.join(tmpdir(), 'loom-l2warm-small-'));
    await writePlanDir(planFleet(mlps(4, [784, 32, 10], 90).map((t) => t.input)), small, { nvcc: 'auto' });
  });

  afterAll(() => {
    for (const p of loaded) p.close();
    for (const d of [dir, small]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it('warms the budget it is given, says so, and stays off where it is off or the weights are small', async () => {
    const off = keep(await loadCudaWith(dir, { LOOM_CUDA_L2_WARM: 'off' }));
    const eight = keep(await loadCudaWith(dir, { LOOM_CUDA_L2_WARM: '8' }));
    const half = keep(await loadCudaWith(dir, { LOOM_CUDA_L2_WARM: 'on' }));
    const auto = keep(await loadCudaWith(dir, {}));
    const tiny = keep(await loadCudaWith(small, { LOOM_CUDA_L2_WARM: 'on' }));
    process.stdout.write(`L2 warm: ${note(eight)} | ${note(half)} | ${note(auto)} | ${note(tiny)}\n`);
    expect(warmBytes(off)).toBe(0);
    expect(note(off)).toContain('LOOM_CUDA_L2_WARM=off: no L2 warm-up');
    expect(warmBytes(eight)).toBe(8 * MiB); // the first layer alone is 33.5 MB
    expect(note(eight)).toContain('prefetches the first 8.4 MB of its GEMM weights into L2');
    expect(warmBytes(half)).toBeGreaterThan(8 * MiB);
    expect(warmBytes(half)).toBeLessThanOrEqual(40 * MiB); // half the L2 of an H100 or H200: 25 MiB
    expect([0, warmBytes(half)]).toContain(warmBytes(auto));
    expect(warmBytes(tiny)).toBe(0);
    expect(note(tiny)).toMatch(/no L2 warm-up \(the tick's GEMMs read 0\.\d MB of weights, below 4\.2 MB\)/);
    await expect(loadCudaWith(dir, { LOOM_CUDA_L2_WARM: '12' })).rejects.toThrow(/LOOM_CUDA_L2_WARM must be auto, on, off, 8, 16, 24, 32 or 48, got '12'/);
  });

  it('changes no output: ticks one at a time, vs the plan without it and the CPU backend', async () => {
    const cpu = keep(await loadPlan(dir, { backend: 'cpu' }));
    const off = keep(await loadCudaWith(dir, { LOOM_CUDA_L2_WARM: 'off' }));
    const warm = keep(await loadCudaWith(dir, { LOOM_CUDA_L2_WARM: '8' }));
    const before = warmLaunches(warm);
    for (let tick = 0; tick < 4; tick++) {
      const feeds = feedsFor(ts, 300 + 20 * tick, () => true);
      const got = await warm.runTick(feeds);
      for (const [id, e] of Object.entries(worstErrors(got, await cpu.runTick(feeds)))) expect(e, `tick ${tick}: ${id} vs CPU`).toBeLessThanOrEqual(VS_CPU);
      for (const [id, e] of Object.entries(worstErrors(got, await off.runTick(feeds))))
        expect(e, `tick ${tick}: ${id} vs no warm-up`).toBeLessThanOrEqual(SAME);
    }
    expect(warmLaunches(warm) - before).toBe(4);
    expect(warmLaunches(off)).toBe(0);
  });

  for (const overlap of ['never', 'always'] as const) {
    it(`changes no output: staged ticks in flight together, LOOM_CUDA_OVERLAP=${overlap}`, async () => {
      const cpu = keep(await loadPlan(dir, { backend: 'cpu' }));
      const warm = keep(await loadCudaWith(dir, { LOOM_CUDA_L2_WARM: 'on', LOOM_CUDA_OVERLAP: overlap, LOOM_CUDA_SPARSE: 'never' }, { pipelineDepth: 3 }));
      const before = warmLaunches(warm);
      const feeds = [0, 1, 2, 3, 4].map((k) => feedsFor(ts, 700 + 30 * k, () => true));
      const outs = await Promise.all(feeds.map((f) => warm.runTick(f)));
      for (let k = 0; k < feeds.length; k++)
        for (const [id, e] of Object.entries(worstErrors(outs[k]!, await cpu.runTick(feeds[k]!)))) expect(e, `tick ${k}: ${id}`).toBeLessThanOrEqual(VS_CPU);
      expect(warmLaunches(warm) - before).toBe(feeds.length);
    });
  }
});
