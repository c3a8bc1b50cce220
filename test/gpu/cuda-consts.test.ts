// Per-tenant constants on the CUDA backend: a fleet of three HF BERT exports with every f32 constant scaled
// differently plus scalar-op chains (one within ELT_MAX_PARAMS differing constants, one past it) is planned
// into eltwise launches whose segments carry params (the generated kernel reads seg.params). Every tenant
// matches the CPU backend and onnxruntime (fp32 ≤ 1e-4), on full ticks and on ticks where some tenants are
// absent (the compacted segment table keeps each segment's params).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writePlanDir } from '../../codegen/index.js';
import type { Tensor } from '../../ir/tensor.js';
import { type LoadedPlan, loadPlan } from '../../runtime/index.js';
import { planFleet } from '../../src/planner/index.js';
import { makeFeeds, runOrt } from '../oracle/harness.js';
import { ortUnavailable } from '../support/ort.js';
import { bertCopies, chainFleet } from '../planner/const-fleets.js';
import type { TestTenant } from '../planner/fleet-helpers.js';
import { worstErrors } from '../runtime/precision-fleet.js';
import { GPU_SKIP_REASON } from './gpu-env.js';

type Feeds = Record<string, Record<string, Tensor>>;
type Outs = Record<string, Record<string, Tensor>>;

function feedsFor(ts: readonly TestTenant[], seed: number, rows: (t: TestTenant, i: number) => number): Feeds {
  const feeds: Feeds = {};
  ts.forEach((t, i) => {
    const r = rows(t, i);
    if (r > 0) feeds[t.input.id] = makeFeeds(t.input.graph, { batch: r, seed: seed + i, intRange: t.intRange ?? 50 });
  });
  return feeds;
}

describe.skipIf(GPU_SKIP_REASON !== null)('CUDA backend: eltwise launches with per-tenant constants (params)', () => {
  let dir = '';
  let ts: TestTenant[] = [];
  let cpu: LoadedPlan;
  let gpu: LoadedPlan;

  beforeAll(async () => {
    ts = [...bertCopies(), ...chainFleet(5), ...chainFleet(18)];
    const plan = planFleet(ts.map((t) => t.input));
    const merged = plan.launches.filter((l) => l.kind === 'kernel' && l.op.op === 'eltwise' && l.op.program.some((i) => i.op === 'param'));
    process.stdout.write(`cuda-consts: ${plan.launches.length} launches, ${merged.length} eltwise launches with params\n`);
    expect(merged.length).toBeGreaterThanOrEqual(4);
    dir = mkdtempSync(path.join(tmpdir(), 'loom-gpu-consts-'));
    await writePlanDir(plan, dir, { nvcc: 'auto' });
    cpu = await loadPlan(dir, { backend: 'cpu' });
    gpu = await loadPlan(dir, { backend: 'cuda' });
  });

  afterAll(() => {
    cpu?.close();
    gpu?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('every tenant matches the CPU backend and onnxruntime (fp32, rel. error ≤ 1e-4), full and partial ticks', async () => {
    const ticks: Array<(t: TestTenant, i: number) => number> = [(t) => t.input.maxBatch, (_t, i) => (i % 3 === 1 ? 0 : 1)];
    for (const [k, rows] of ticks.entries()) {
      const feeds = feedsFor(ts, 40 + 1000 * k, rows);
      const [g, c] = [await gpu.runTick(feeds), await cpu.runTick(feeds)];
      expect(Object.keys(g).sort()).toEqual(Object.keys(feeds).sort());
      const vsCpu = worstErrors(g, c);
      process.stdout.write(`tick ${k}: GPU vs CPU ${JSON.stringify(vsCpu)}\n`);
      for (const [id, e] of Object.entries(vsCpu)) expect(e, `${id} vs CPU`).toBeLessThanOrEqual(1e-4);
      const noOrt = ortUnavailable();
      if (noOrt !== null) {
        process.stdout.write(`${noOrt}\n`);
        continue;
      }
      const ort: Outs = {};
      for (const t of ts) if (feeds[t.input.id]) ort[t.input.id] = await runOrt(t.model, feeds[t.input.id]!);
      for (const [id, e] of Object.entries(worstErrors(g, ort))) expect(e, `${id} vs onnxruntime`).toBeLessThanOrEqual(1e-4);
    }
  });
});
