// Dynamic occupancy on the CUDA backend (backend_cuda_sparse.cc): a tick where only some tenants have inputs
// runs only their launches / entries / segments. On a mixed fleet, for masks of one tenant, every other
// tenant, ~10% and a contiguous run: the sparse tick (LOOM_CUDA_SPARSE=always) matches the full graph
// (LOOM_CUDA_SPARSE=never) within 1e-5 and the CPU backend within 1e-4, on its eager first run and on its
// captured graph; full ticks after masked ones are right; inactive tenants' output slots keep their last
// outputs through the general-form tick and hold at most zeros after a staged one (its coarse copies); the
// stats counters move; auto measures at load; the live entries of cuBLASLt launches (LOOM_CUDA_LT=force) run on
// another path and match the CPU backend.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writePlanDir } from '../../codegen/index.js';
import type { Tensor } from '../../ir/tensor.js';
import { type LoadedPlan, type NativeAddon, loadPlan } from '../../runtime/index.js';
import type { NativeHandle } from '../../runtime/native-addon.js';
import { planFleet } from '../../src/planner/index.js';
import { type TestTenant, mixedFleet } from '../planner/fleet-helpers.js';
import { worstErrors } from '../runtime/precision-fleet.js';
import { GPU_SKIP_REASON } from './gpu-env.js';
import { feedsFor, loadCudaWith } from './masked-fleet.js';

const SAME_CALLS = 1e-5; // cuBLAS may pick another algorithm for another batch count
const VS_CPU = 1e-4;

function bytesOf(t: Tensor): Buffer {
  const d = t.data as ArrayBufferView;
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

function info(p: LoadedPlan, key: string): number {
  return Number(p.backendInfo()[key]);
}

function expectClose(errs: Record<string, number>, tol: number, what: string): void {
  for (const [id, e] of Object.entries(errs)) expect(e, `${what}: ${id}`).toBeLessThanOrEqual(tol);
}

// LOOM_CUDA_SPARSE is read when the backend is created: set it only around the load.
const loadWith = (dir: string, mode: string): Promise<LoadedPlan> => loadCudaWith(dir, { LOOM_CUDA_SPARSE: mode });

describe.skipIf(GPU_SKIP_REASON !== null)('CUDA backend: sparse ticks for partly occupied fleets', () => {
  let dir = '';
  let ts: TestTenant[] = [];
  let cpu: LoadedPlan;
  let sparse: LoadedPlan; // LOOM_CUDA_SPARSE=always
  let full: LoadedPlan; // LOOM_CUDA_SPARSE=never

  beforeAll(async () => {
    ts = mixedFleet({ moreZoo: true });
    dir = mkdtempSync(path.join(tmpdir(), 'loom-occupancy-'));
    await writePlanDir(planFleet(ts.map((t) => t.input)), dir, { nvcc: 'auto' });
    cpu = await loadPlan(dir, { backend: 'cpu' });
    sparse = await loadWith(dir, 'always');
    full = await loadWith(dir, 'never');
  });

  afterAll(() => {
    cpu?.close();
    sparse?.close();
    full?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const masks = (): Array<[string, (i: number) => boolean]> => {
    const n = ts.length;
    return [
      ['tenant 0 only', (i) => i === 0],
      ['the middle tenant only', (i) => i === Math.floor(n / 2)],
      ['every other tenant', (i) => i % 2 === 0],
      ['~10% of tenants', (i) => i % 10 === 3],
      ['a contiguous run', (i) => i >= 1 && i <= 4],
      ['all but the last', (i) => i < n - 1],
    ];
  };

  it('modes and stats are reported', () => {
    expect(sparse.backendInfo().sparseMode).toBe('always');
    expect(full.backendInfo().sparseMode).toBe('never');
    expect(info(sparse, 'sparseAvailable'), String(sparse.backendInfo().sparseNote ?? '')).toBe(1);
    expect(info(full, 'sparseAvailable')).toBe(0);
    expect(info(sparse, 'sparseTableSlots')).toBeGreaterThan(0);
  });

  it('masked ticks match the full graph (1e-5) and the CPU backend (1e-4): eager first run, capture, replays', async () => {
    const sparseBefore = info(sparse, 'sparseTicks');
    const fullBefore = info(full, 'fullTicks');
    let ticks = 0;
    for (const [m, [name, live]] of masks().entries()) {
      const want = await cpu.runTick(feedsFor(ts, 100 + 50 * m, live));
      // three ticks per mask: eager (checked) first run, then captured graph, then a graph replay; new inputs each
      for (let rep = 0; rep < 3; rep++) {
        const feeds = feedsFor(ts, 100 + 50 * m + rep, live);
        const s = await sparse.runTick(feeds);
        const f = await full.runTick(feeds);
        ticks++;
        expect(Object.keys(s).sort(), name).toEqual(Object.keys(feeds).sort());
        expectClose(worstErrors(s, f), SAME_CALLS, `${name}, tick ${rep}: sparse vs full graph`);
        if (rep === 0) expectClose(worstErrors(s, want), VS_CPU, `${name}: sparse vs CPU backend`);
      }
    }
    expect(info(sparse, 'sparseTicks') - sparseBefore).toBe(ticks);
    expect(info(full, 'fullTicks') - fullBefore).toBe(ticks);
    expect(info(full, 'sparseTicks')).toBe(0);
    expect(info(sparse, 'sparseCaptures')).toBeGreaterThan(0);
    expect(info(sparse, 'sparseGraphs')).toBeGreaterThan(0);
  });

  it('masked ticks of cuBLASLt launches (LOOM_CUDA_LT=force; a launch with every entry live keeps its call, the live entries of others move to the skinny kernel or cuBLAS) match the CPU backend', async () => {
    const lt = await loadCudaWith(dir, { LOOM_CUDA_SPARSE: 'always', LOOM_CUDA_LT: 'force' });
    try {
      for (const [m, [name, live]] of masks().entries()) {
        for (let rep = 0; rep < 2; rep++) {
          const feeds = feedsFor(ts, 700 + 50 * m + rep, live);
          expectClose(worstErrors(await lt.runTick(feeds), await cpu.runTick(feeds)), VS_CPU, `${name}, tick ${rep}: LT sparse vs CPU backend`);
        }
      }
      const all = feedsFor(ts, 990, () => true);
      expectClose(worstErrors(await lt.runTick(all), await cpu.runTick(all)), VS_CPU, 'LT full tick');
    } finally {
      lt.close();
    }
  });

  it('a tick where every tenant is live runs the full graph', async () => {
    const before = info(sparse, 'fullTicks');
    const feeds = feedsFor(ts, 7, () => true);
    expectClose(worstErrors(await sparse.runTick(feeds), await cpu.runTick(feeds)), VS_CPU, 'all live');
    expect(info(sparse, 'fullTicks') - before).toBe(1);
  });

  it('full ticks after masked ticks are right (no stale state), and back', async () => {
    const all = feedsFor(ts, 300, () => true);
    const some = feedsFor(ts, 400, (i) => i % 3 === 1);
    for (const feeds of [all, some, all, some, feedsFor(ts, 500, () => true)]) {
      expectClose(worstErrors(await sparse.runTick(feeds), await cpu.runTick(feeds)), VS_CPU, 'alternating');
    }
  });

  // runTick returns live tenants' outputs only: read the others' slots through the addon (a general-form tick
  // with the same mask that asks for them; outside the sparse tick's copies they are read from device memory)
  async function inactiveSlots(p: LoadedPlan, liveIndex: number, mask: Uint8Array) {
    const inner = p as unknown as { addon?: NativeAddon; handle?: NativeHandle };
    if (!inner.addon || !inner.handle) throw new Error("this test reads the loaded plan's addon and handle (runtime/load-plan.ts ResidentPlan)");
    const slots = p.plan.tenants.flatMap((t, i) =>
      i === liveIndex ? [] : t.outputs.map((io) => ({ id: t.id, name: io.name, offset: io.ref.offset, bytes: io.bytes })),
    );
    const raw = await inner.addon.runTick(
      inner.handle,
      [],
      slots.map((s) => ({ offset: s.offset, bytes: s.bytes })),
      mask,
    );
    return { inner: inner as { addon: NativeAddon; handle: NativeHandle }, slots, raw };
  }

  it("a general-form sparse tick leaves inactive tenants' output slots untouched", async () => {
    const first = await sparse.runTick(feedsFor(ts, 600, () => true));
    const liveIndex = Math.floor(ts.length / 2);
    const mask = new Uint8Array(ts.length);
    mask[liveIndex] = 1;
    const inner = sparse as unknown as { addon: NativeAddon; handle: NativeHandle };
    const live = ts[liveIndex]!;
    const ins = sparse.plan.tenants[liveIndex]!.inputs;
    for (let rep = 0; rep < 3; rep++) {
      const feed = feedsFor(ts, 700 + rep, (i) => i === liveIndex)[live.input.id]!;
      await inner.addon.runTick(
        inner.handle,
        ins.map((io) => ({ offset: io.ref.offset, data: new Uint8Array(bytesOf(feed[io.name]!)) })),
        [],
        mask,
      );
    }
    const { slots, raw } = await inactiveSlots(sparse, liveIndex, mask);
    slots.forEach((s, k) => {
      const want = bytesOf(first[s.id]![s.name]!);
      expect(Buffer.from(raw[k]!).subarray(0, want.length).equals(want), `${s.id}/${s.name} was overwritten by a sparse tick`).toBe(true);
    });
  });

  it("a staged sparse tick writes inactive tenants' output slots with nothing but zeros (no other tenant's bytes)", async () => {
    const first = await sparse.runTick(feedsFor(ts, 800, () => true));
    const liveIndex = Math.floor(ts.length / 3);
    const mask = new Uint8Array(ts.length);
    mask[liveIndex] = 1;
    for (let rep = 0; rep < 3; rep++) await sparse.runTick(feedsFor(ts, 900 + rep, (i) => i === liveIndex));
    const { slots, raw } = await inactiveSlots(sparse, liveIndex, mask);
    slots.forEach((s, k) => {
      const want = bytesOf(first[s.id]![s.name]!);
      const got = Buffer.from(raw[k]!).subarray(0, want.length);
      // its coarse input copies may span an inactive tenant's output slot: the staging bytes there are zeros
      expect(got.equals(want) || got.every((b) => b === 0), `${s.id}/${s.name} holds bytes that are neither its own nor zeros`).toBe(true);
    });
  });

  it('LOOM_CUDA_SPARSE=auto measures at load and picks per mask', async () => {
    const auto = await loadWith(dir, 'auto');
    try {
      expect(auto.backendInfo().sparseMode).toBe('auto');
      expect(info(auto, 'sparseCalibrated')).toBe(1);
      expect(info(auto, 'sparseFullWallUs')).toBeGreaterThan(0);
      const one = feedsFor(ts, 800, (i) => i === 0);
      for (let rep = 0; rep < 4; rep++) expectClose(worstErrors(await auto.runTick(one), await cpu.runTick(one)), VS_CPU, 'auto, one tenant');
      expect(info(auto, 'sparseTicks') + info(auto, 'fullTicks')).toBe(4);
      const stats = auto.backendInfo();
      const keys = Object.keys(stats).filter((k) => k.startsWith('sparse') || k.endsWith('Ticks'));
      process.stdout.write(`auto, one of ${ts.length} tenants live: ${JSON.stringify(Object.fromEntries(keys.map((k) => [k, stats[k]])))}\n`);
    } finally {
      auto.close();
    }
  });

  it('a bad LOOM_CUDA_SPARSE value fails the load and names the variable', async () => {
    await expect(loadWith(dir, 'sometimes')).rejects.toThrow(/LOOM_CUDA_SPARSE/);
  });
});
