// The full tick with its copies in one graph (native/src/backend_cuda_io_graph.cc, LOOM_CUDA_IO_GRAPH=on): the
// input and output copies captured as memcpy nodes with the launches, one graph per host layout, its copies
// pointed at whichever staging buffers a tick comes through. It must change no output: the mixed test fleet
// through runTick one tick at a time and several in flight (the staging sets and result blocks in turn: the copies
// retargeted), full and masked ticks mixed, benchTick (the pinned staging: a second layout), and a failing tick
// among ticks in flight (the io graphs are dropped and captured again), against the CPU backend and the same plan
// without it, tenant by tenant.
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
import { type Feeds, feedsFor, loadCudaWith } from './masked-fleet.js';

const VS_CPU = 1e-4;
const SAME = 1e-6;
const num = (p: LoadedPlan, key: string): number => Number(p.backendInfo()[key] ?? Number.NaN);

describe.skipIf(GPU_SKIP_REASON !== null)('CUDA backend: a full tick as one graph with its copies', () => {
  let dir = '';
  let ts: TestTenant[] = [];
  let cpu: LoadedPlan;
  const loaded: LoadedPlan[] = [];
  const keep = (p: LoadedPlan): LoadedPlan => {
    loaded.push(p);
    return p;
  };
  const expectClose = (got: Awaited<ReturnType<LoadedPlan['runTick']>>, want: Awaited<ReturnType<LoadedPlan['runTick']>>, limit: number, what: string) => {
    expect(Object.keys(got).sort(), what).toEqual(Object.keys(want).sort());
    for (const [id, e] of Object.entries(worstErrors(got, want))) expect(e, `${what}: ${id}`).toBeLessThanOrEqual(limit);
  };

  beforeAll(async () => {
    ts = mixedFleet({ moreZoo: true });
    dir = mkdtempSync(path.join(tmpdir(), 'loom-io-graph-'));
    await writePlanDir(planFleet(ts.map((t) => t.input)), dir, { nvcc: 'auto' });
    cpu = keep(await loadPlan(dir, { backend: 'cpu' }));
  });

  afterAll(() => {
    for (const p of loaded) p.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('says whether it is on; a wrong value fails the load', async () => {
    const on = keep(await loadCudaWith(dir, { LOOM_CUDA_IO_GRAPH: 'on' }));
    const off = keep(await loadCudaWith(dir, { LOOM_CUDA_IO_GRAPH: 'off' }));
    expect(String(on.backendInfo().ioGraphNote)).toContain('LOOM_CUDA_IO_GRAPH=on: a full tick is one graph launch with its copies');
    expect(String(off.backendInfo().ioGraphNote)).toContain('LOOM_CUDA_IO_GRAPH off');
    // captured at a layout's first full tick: at load only where the load times full ticks (LOOM_CUDA_SPARSE=auto)
    expect(num(on, 'ioGraphs')).toBeLessThanOrEqual(1);
    expect(num(off, 'ioGraphs')).toBe(0);
    await expect(loadCudaWith(dir, { LOOM_CUDA_IO_GRAPH: 'yes' })).rejects.toThrow("LOOM_CUDA_IO_GRAPH must be auto, on or off, got 'yes'");
  });

  it('runTick one tick at a time: full and masked ticks match the CPU backend and the plan without it', async () => {
    const on = keep(await loadCudaWith(dir, { LOOM_CUDA_IO_GRAPH: 'on' }));
    const off = keep(await loadCudaWith(dir, { LOOM_CUDA_IO_GRAPH: 'off' }));
    const masks: Array<[string, (i: number) => boolean]> = [
      ['full', () => true],
      ['every other tenant', (i) => i % 2 === 0],
      ['full again', () => true],
      ['one tenant', (i) => i === 3],
      ['full, third time', () => true],
    ];
    for (const [what, live] of masks) {
      const feeds = feedsFor(ts, 100 + what.length, live);
      const got = await on.runTick(feeds);
      expectClose(got, await cpu.runTick(feeds), VS_CPU, `${what} vs CPU`);
      expectClose(got, await off.runTick(feeds), SAME, `${what} vs no io graph`);
    }
    process.stdout.write(`io graph: ${String(on.backendInfo().ioGraphNote)}; ${num(on, 'ioGraphTicks')} ticks, ${num(on, 'ioGraphs')} graphs\n`);
    expect([1, 2]).toContain(num(on, 'ioGraphs')); // the staging sets' layout (and the pinned staging's, if timed at load)
    expect(num(on, 'ioGraphTicks')).toBeGreaterThanOrEqual(3); // the full ones (a masked tick may run full too)
    expect(num(off, 'ioGraphTicks')).toBe(0);
    const p50 = (l: LoadedPlan) => [...l.benchTick(50).deviceUs].sort((x, y) => x - y)[25]!.toFixed(1);
    process.stdout.write(`mixed fleet device tick p50: io graph ${p50(on)} us, copies around the graph ${p50(off)} us\n`);
    expect(num(on, 'ioGraphs')).toBe(2); // benchTick's full ticks copy through the pinned staging: its own layout
  });

  it('runTick with ticks in flight through every staging set and result block: matches the CPU backend', async () => {
    const on = keep(await loadCudaWith(dir, { LOOM_CUDA_IO_GRAPH: 'on', LOOM_CUDA_OVERLAP: 'never' }, { pipelineDepth: 3 }));
    const masks: ((i: number) => boolean)[] = [() => true, () => true, (i) => i % 3 !== 0, () => true, () => true, (i) => i === 2, () => true];
    for (let round = 0; round < 3; round++) {
      const feeds: Feeds[] = masks.map((live, m) => feedsFor(ts, 2000 * (round + 1) + 37 * m, live));
      const outs = await Promise.all(feeds.map((f) => on.runTick(f)));
      for (let m = 0; m < feeds.length; m++) expectClose(outs[m]!, await cpu.runTick(feeds[m]!), VS_CPU, `round ${round}, tick ${m}`);
    }
    expect(num(on, 'ioGraphs')).toBeGreaterThanOrEqual(1);
    expect(num(on, 'ioGraphRetargets')).toBeGreaterThan(0); // the staging sets take turns
  });

  it('a failing tick among ticks in flight fails alone; the io graphs are captured again and the next ticks are right', async () => {
    const on = keep(
      await loadCudaWith(dir, { LOOM_CUDA_IO_GRAPH: 'on', LOOM_CUDA_OVERLAP: 'never' }, { pipelineDepth: 3, testFaults: { ticks: 1, after: 2 } }),
    );
    const feeds = [0, 1, 2, 3, 4].map((k) => feedsFor(ts, 7000 + 100 * k, () => true));
    const settled = await Promise.allSettled(feeds.map((f) => on.runTick(f)));
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    for (const k of [0, 1, 3, 4]) {
      const r = settled[k] as PromiseFulfilledResult<Awaited<ReturnType<LoadedPlan['runTick']>>>;
      expectClose(r.value, await cpu.runTick(feeds[k]!), VS_CPU, `tick ${k}`);
    }
    const again = feedsFor(ts, 9000, () => true);
    expectClose(await on.runTick(again), await cpu.runTick(again), VS_CPU, 'the tick after');
    expect(num(on, 'cudaRecoveries')).toBe(1);
    expect(num(on, 'ioGraphTicks')).toBeGreaterThanOrEqual(4);
  });
});
