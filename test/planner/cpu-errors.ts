// One tick of a planned fleet on the CPU backend (the plan written by codegen, read back by the addon), each
// tenant compared with onnxruntime on its own model: the worst relative error per tenant. `backend` 'cuda-emu':
// the same with the plan's generated CUDA kernels compiled for the host.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writePlanDir } from '../../codegen/index.js';
import type { Plan } from '../../ir/contract/plan.js';
import type { Tensor } from '../../ir/tensor.js';
import { loadPlan } from '../../runtime/index.js';
import { makeFeeds, relativeError, runOrt } from '../oracle/harness.js';
import type { TestTenant } from './fleet-helpers.js';

export async function cpuErrors(plan: Plan, tenants: readonly TestTenant[], backend: 'cpu' | 'cuda-emu' = 'cpu'): Promise<Record<string, number>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'loom-cpu-tick-'));
  try {
    await writePlanDir(plan, dir, { nvcc: 'off' });
    const loaded = await loadPlan(dir, { backend, threads: 2 });
    try {
      const feeds: Record<string, Record<string, Tensor>> = {};
      tenants.forEach((t, i) => {
        feeds[t.input.id] = makeFeeds(t.input.graph, { batch: t.input.maxBatch, seed: 300 + i, intRange: t.intRange ?? 50 });
      });
      const got = await loaded.runTick(feeds);
      const errors: Record<string, number> = {};
      for (const t of tenants) {
        const want = await runOrt(t.model, feeds[t.input.id]!);
        errors[t.input.id] = Math.max(...Object.entries(want).map(([name, w]) => relativeError(got[t.input.id]![name]!, w)));
      }
      return errors;
    } finally {
      loaded.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
