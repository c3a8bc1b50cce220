// Programmatic dependent launch on the CUDA backend (native/src/backend_cuda_pdl.cuh, LOOM_CUDA_PDL): a Loom
// kernel right after another Loom kernel on its stream is scheduled while that one still runs, and waits for it
// to finish before reading its results (under `prefetch` a skinny-GEMM kernel first prefetches its first weight
// lines into L2; `noprefetch` leaves that out; `auto` is one of the two). It must change no output: the mixed test fleet (18 tenants, chains of
// generated kernels, epilogue and skinny / tiled GEMM kernels) on lanes and on one stream, captured and eager,
// full and masked ticks, against the same plan without it and the CPU backend, tenant by tenant.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writePlanDir } from '../../codegen/index.js';
import type { Tensor } from '../../ir/tensor.js';
import type { BackendEnv } from '../../runtime/backend-env.js';
import { type LoadedPlan, type LoadPlanOptions, loadPlan } from '../../runtime/index.js';
import { planFleet } from '../../src/planner/index.js';
import { makeFeeds } from '../oracle/harness.js';
import { type TestTenant, mixedFleet } from '../planner/fleet-helpers.js';
import { worstErrors } from '../runtime/precision-fleet.js';
import { GPU_SKIP_REASON } from './gpu-env.js';
import { loadCudaWith } from './masked-fleet.js';

type Feeds = Record<string, Record<string, Tensor>>;

// Loom's own kernels on as many GEMM launches as take them: the most Loom-kernel-after-Loom-kernel pairs
const OWN_KERNELS: BackendEnv = { LOOM_CUDA_TILE: 'force', LOOM_CUDA_FUSE: 'force', LOOM_CUDA_LT: 'off' };

describe.skipIf(GPU_SKIP_REASON !== null)('CUDA: programmatic dependent launch between Loom kernels', () => {
  let dir = '';
  let ts: TestTenant[] = [];
  const loaded: LoadedPlan[] = [];

  const load = async (env: BackendEnv, opts: LoadPlanOptions = {}): Promise<LoadedPlan> => {
    const l = await loadCudaWith(dir, env, opts);
    loaded.push(l);
    return l;
  };
  const feedsFor = (seed: number, rows: (t: TestTenant, i: number) => number): Feeds => {
    const feeds: Feeds = {};
    ts.forEach((t, i) => {
      const r = rows(t, i);
      if (r > 0) feeds[t.input.id] = makeFeeds(t.input.graph, { batch: r, seed: seed + i, intRange: t.intRange ?? 50 });
    });
    return feeds;
  };

  beforeAll(async () => {
    ts = mixedFleet({ moreZoo: true });
    dir = mkdtempSync(path.join(tmpdir(), 'loom-gpu-pdl-'));
    await writePlanDir(planFleet(ts.map((t) => t.input)), dir, { nvcc: 'auto' });
  });

  afterAll(() => {
    for (const l of loaded) l.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('launches Loom kernels programmatically where the device has it, and says so', async () => {
    const on = await load({ ...OWN_KERNELS, LOOM_CUDA_PDL: 'auto' });
    const off = await load({ ...OWN_KERNELS, LOOM_CUDA_PDL: 'off' });
    const info = on.backendInfo();
    process.stdout.write(`PDL: ${String(info.pdlNote)}; ${String(info.pdlLaunches)} programmatic launches of ${String(info.kernelNodes)} kernel nodes\n`);
    expect(info.graph, String(info.graphNote ?? '')).toBe(1);
    if (Number(info.ccMajor) >= 9) expect(Number(info.pdlLaunches)).toBeGreaterThan(0);
    else expect(String(info.pdlNote)).toContain('sm_90');
    expect(off.backendInfo().pdlLaunches).toBe(0);
    expect(String(off.backendInfo().pdlNote)).toContain('LOOM_CUDA_PDL=off');
    const bare = await load({ ...OWN_KERNELS, LOOM_CUDA_PDL: 'noprefetch' });
    const fetching = await load({ ...OWN_KERNELS, LOOM_CUDA_PDL: 'prefetch' });
    if (Number(info.ccMajor) >= 9) {
      expect(String(fetching.backendInfo().pdlNote)).toContain('prefetch their first weights into L2 before waiting (2 k steps a row');
      expect(String(bare.backendInfo().pdlNote)).toContain('LOOM_CUDA_PDL=noprefetch');
      expect(String(bare.backendInfo().pdlNote)).not.toContain('prefetch their');
      for (const l of [bare, fetching]) expect(l.backendInfo().pdlLaunches).toBe(info.pdlLaunches);
    }
  });

  it('changes no output: lanes and one stream, graph and eager, full and masked ticks, vs PDL off and the CPU backend', async () => {
    const cpu = await loadPlan(dir, { backend: 'cpu' });
    loaded.push(cpu);
    const off = await load({ ...OWN_KERNELS, LOOM_CUDA_PDL: 'off' });
    const variants: Array<[string, LoadedPlan]> = [
      ['lanes, graph', await load({ ...OWN_KERNELS, LOOM_CUDA_PDL: 'auto' })],
      ['lanes, graph, no prefetch', await load({ ...OWN_KERNELS, LOOM_CUDA_PDL: 'noprefetch' })],
      ['lanes, graph, prefetch', await load({ ...OWN_KERNELS, LOOM_CUDA_PDL: 'prefetch' })],
      ['prefetch 8 steps, masked ticks', await load({ ...OWN_KERNELS, LOOM_CUDA_PDL: 'prefetch', LOOM_CUDA_PDL_PREFETCH: '8', LOOM_CUDA_SPARSE: 'always' })],
      ['one stream, graph', await load({ ...OWN_KERNELS, LOOM_CUDA_PDL: 'auto', LOOM_CUDA_LANES: 'off' })],
      ['lanes, eager', await load({ ...OWN_KERNELS, LOOM_CUDA_PDL: 'auto' }, { debug: { graph: false } })],
      ['default paths', await load({ LOOM_CUDA_PDL: 'auto' })],
      ['default paths, masked ticks', await load({ LOOM_CUDA_PDL: 'auto', LOOM_CUDA_SPARSE: 'always' })],
      ['masked ticks', await load({ ...OWN_KERNELS, LOOM_CUDA_PDL: 'auto', LOOM_CUDA_SPARSE: 'always' })],
    ];
    const ticks: Array<[string, Feeds]> = [
      ['full', feedsFor(11, (t) => t.input.maxBatch)],
      ['one row, a third absent', feedsFor(23, (_, i) => (i % 3 === 2 ? 0 : 1))],
      ['full again', feedsFor(37, (t) => t.input.maxBatch)],
    ];
    for (const [what, feeds] of ticks) {
      const ref = await off.runTick(feeds);
      const c = await cpu.runTick(feeds);
      for (const [name, l] of variants) {
        // twice: a masked tick's first run is eager, its second replays the mask's captured graph
        for (const run of [1, 2]) {
          const g = await l.runTick(feeds);
          expect(Object.keys(g).sort(), `${name}, ${what}`).toEqual(Object.keys(feeds).sort());
          // the same kernels in the same order on the same paths: only the paths chosen at load may differ
          for (const [id, e] of Object.entries(worstErrors(g, ref))) expect(e, `${name}, ${what} (run ${run}): ${id} vs PDL off`).toBeLessThanOrEqual(1e-5);
          for (const [id, e] of Object.entries(worstErrors(g, c)))
            expect(e, `${name}, ${what} (run ${run}): ${id} vs the CPU backend`).toBeLessThanOrEqual(1e-4);
        }
      }
    }
    const p50 = (l: LoadedPlan) => [...l.benchTick(50).deviceUs].sort((x, y) => x - y)[25]!.toFixed(1);
    process.stdout.write(`mixed fleet device tick p50: PDL ${p50(variants[0]![1])} us, off ${p50(off)} us (Loom kernels where they fit)\n`);
  });
});
