// End to end on the native CPU backend: zoo / exporter models → planFleet → writePlanDir → loadPlan →
// runTick, every tenant against onnxruntime on its own original model (fp32, rel. error ≤ 1e-4).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writePlanDir } from '../../codegen/index.js';
import type { Tensor } from '../../ir/tensor.js';
import { generateModel } from '../../models/index.js';
import { loadPlan } from '../../runtime/index.js';
import { planFleet } from '../../src/planner/index.js';
import { makeFeeds, relativeError, runOrt } from '../oracle/harness.js';
import { type TestTenant, mixedFleet, tenantFromBytes } from '../planner/fleet-helpers.js';

// Compiles the fleet, runs ticks on the CPU backend and returns each tenant's worst error per tick.
async function runFleet(
  ts: readonly TestTenant[],
  rowsPerTick: ReadonlyArray<(t: TestTenant) => number>,
  threads?: number,
): Promise<Array<Record<string, number>>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'loom-e2e-'));
  try {
    await writePlanDir(planFleet(ts.map((t) => t.input)), dir, { nvcc: 'off' });
    const loaded = await loadPlan(dir, threads ? { backend: 'cpu', threads } : { backend: 'cpu' });
    try {
      const reports: Array<Record<string, number>> = [];
      for (const [tick, rows] of rowsPerTick.entries()) {
        const feeds: Record<string, Record<string, Tensor>> = {};
        ts.forEach((t, i) => {
          feeds[t.input.id] = makeFeeds(t.input.graph, { batch: rows(t), seed: 100 + i + 1000 * tick, intRange: t.intRange ?? 50 });
        });
        const got = await loaded.runTick(feeds);
        const errors: Record<string, number> = {};
        for (const t of ts) {
          const want = await runOrt(t.model, feeds[t.input.id]!);
          let worst = 0;
          for (const [name, w] of Object.entries(want)) {
            const g = got[t.input.id]?.[name];
            if (!g) throw new Error(`tenant ${t.input.id}: no output ${name}`);
            expect(g.shape, `${t.input.id}/${name}`).toEqual(w.shape);
            worst = Math.max(worst, relativeError(g, w));
          }
          errors[t.input.id] = worst;
        }
        reports.push(errors);
      }
      return reports;
    } finally {
      loaded.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('planFleet → LaunchPlan → native CPU backend matches onnxruntime per tenant', () => {
  it('8 MLPs with different weights, full and partial batches', async () => {
    const ts = Array.from({ length: 8 }, (_, i) => tenantFromBytes(`mlp${i}`, generateModel('mlp', { seed: 10 + i, sizes: [64, 128, 128, 10] }).bytes, 4));
    const reports = await runFleet(ts, [(t) => t.input.maxBatch, () => 2, () => 1], 16); // more threads than work items
    for (const r of reports) for (const [id, e] of Object.entries(r)) expect(e, id).toBeLessThanOrEqual(1e-4);
  });

  it('a mixed fleet of 17 tenants (zoo, torch exports, PP-OCR)', async () => {
    const ts: TestTenant[] = mixedFleet({ ppocr: true });
    const reports = await runFleet(ts, [(t) => t.input.maxBatch, () => 1], 8);
    for (const r of reports) for (const [id, e] of Object.entries(r)) expect(e, id).toBeLessThanOrEqual(1e-4);
  });
});
