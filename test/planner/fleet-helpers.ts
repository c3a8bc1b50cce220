// Shared helpers of the planner tests: build tenants from zoo models / files, run a plan through the
// simulator and compare every tenant with onnxruntime on its own model.
import { importModelBytes, importModelFile } from '../../src/onnx/import.js';
import { canonicalize } from '../../src/pipeline.js';
import type { ImportOptions } from '../../src/onnx/import.js';
import type { Plan, TenantInput } from '../../src/planner/plan.js';
import type { Tensor } from '../../ir/tensor.js';
import { makeFeeds, relativeError, runOrt } from '../oracle/harness.js';
import { simulateTick } from '../support/plan-simulator.js';

export interface TestTenant {
  readonly input: TenantInput;
  readonly model: Uint8Array | string; // what onnxruntime runs
  readonly intRange?: number;
}

export function tenantFromBytes(id: string, bytes: Uint8Array, maxBatch: number, opts: ImportOptions = {}): TestTenant {
  const graph = canonicalize(importModelBytes(bytes, opts));
  return { input: { id, model: `${id}.onnx`, graph, maxBatch, sloMs: null }, model: bytes };
}

export function tenantFromFile(id: string, file: string, maxBatch: number, opts: ImportOptions = {}, intRange?: number): TestTenant {
  const graph = canonicalize(importModelFile(file, opts));
  return { input: { id, model: file, graph, maxBatch, sloMs: null }, model: file, ...(intRange ? { intRange } : {}) };
}

// Runs one tick with `rows` rows per tenant (default maxBatch) and returns the worst error per tenant.
export async function checkFleet(plan: Plan, tenants: readonly TestTenant[], rows?: (t: TestTenant) => number): Promise<Record<string, number>> {
  const feeds: Record<string, Record<string, Tensor>> = {};
  tenants.forEach((t, i) => {
    const batch = rows ? rows(t) : t.input.maxBatch;
    feeds[t.input.id] = makeFeeds(t.input.graph, { batch, seed: 100 + i, intRange: t.intRange ?? 50 });
  });
  const got = simulateTick(plan, feeds);
  const errors: Record<string, number> = {};
  for (const t of tenants) {
    const want = await runOrt(t.model, feeds[t.input.id]!);
    let worst = 0;
    for (const [name, w] of Object.entries(want)) {
      const g = got[t.input.id]?.[name];
      if (!g) throw new Error(`tenant ${t.input.id}: no output ${name}`);
      worst = Math.max(worst, relativeError(g, w));
    }
    errors[t.input.id] = worst;
  }
  return errors;
}
