// The mixed fleet of the precision tests (CPU: test/runtime/precision.test.ts, GPU: test/gpu/cuda-precision.test.ts):
// zoo MLPs, LSTM, encoders, small CNNs and real PyTorch exports written as ONNX files with a manifest that
// names the precision, compiled through compileFleet (manifest → import → plan → plan dir) like `loom compile`.
import { copyFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import type { Tensor } from '../../ir/tensor.js';
import { generateModel } from '../../models/index.js';
import type { LoadedPlan } from '../../runtime/index.js';
import { compileFleet } from '../../src/fleet/compile.js';
import type { TenantInput } from '../../src/planner/index.js';
import { makeFeeds, relativeError, runOrt } from '../oracle/harness.js';

const TORCH = path.resolve(import.meta.dirname, '../../models/torch/onnx');

type Zoo = Parameters<typeof generateModel>[0];
interface Spec {
  readonly id: string;
  readonly zoo?: readonly [Zoo, object];
  readonly torch?: string;
  readonly maxBatch: number;
  readonly intRange?: number;
}

const SPECS: readonly Spec[] = [
  { id: 'mlp-a0', zoo: ['mlp', { seed: 1, sizes: [32, 64, 10] }], maxBatch: 4 },
  { id: 'mlp-a1', zoo: ['mlp', { seed: 2, sizes: [32, 64, 10] }], maxBatch: 4 },
  { id: 'mlp-a2', zoo: ['mlp', { seed: 3, sizes: [32, 64, 10], linear: 'matmul', activation: 'relu' }], maxBatch: 4 },
  { id: 'mlp-b0', zoo: ['mlp', { seed: 4, sizes: [48, 96, 64, 10] }], maxBatch: 2 },
  { id: 'mlp-b1', zoo: ['mlp', { seed: 5, sizes: [48, 96, 64, 10] }], maxBatch: 3 },
  { id: 'lstm-z', zoo: ['lstm', { seed: 12, hidden: 32, inputSize: 16, seqLen: 4 }], maxBatch: 2 },
  { id: 'enc-1', zoo: ['encoder', { seed: 7, layers: 1, hidden: 64, heads: 2, ffn: 128, seq: 16, vocabSize: 100, maxPositions: 32 }], maxBatch: 2 },
  { id: 'enc-2', zoo: ['encoder', { seed: 8, layers: 2, hidden: 64, heads: 2, ffn: 128, seq: 16, vocabSize: 100, maxPositions: 32 }], maxBatch: 2 },
  { id: 'resnet', zoo: ['resnet18', { seed: 13, width: 8, resolution: 32, classes: 10 }], maxBatch: 2 },
  { id: 'mobilenet', zoo: ['mobilenet', { seed: 9, resolution: 32, classes: 10, widthMult: 0.25 }], maxBatch: 2 },
  { id: 'squeezenet', zoo: ['squeezenet', { seed: 10, resolution: 32, classes: 10 }], maxBatch: 2 },
  { id: 'torch-mlp', torch: 'torch_mlp.onnx', maxBatch: 3 },
  { id: 'cnn-bn', torch: 'torch_cnn_bn.onnx', maxBatch: 2 },
  { id: 'bert-tiny', torch: 'hf_bert_tiny.onnx', maxBatch: 2, intRange: 500 },
  { id: 'mlp-fixed1', torch: 'torch_mlp_fixed1.onnx', maxBatch: 3 },
  { id: 'lstm', torch: 'torch_lstm.onnx', maxBatch: 2 },
  { id: 'gru-bidir', torch: 'torch_gru_bidir.onnx', maxBatch: 2 },
];

export type Precision = 'fp32' | 'tf32' | 'bf16' | 'fp16';

// Error bound vs onnxruntime fp32 per precision (issue: bf16/fp16 ≤ 2e-2, tf32 ≤ 5e-3). One exception:
// the zoo squeezenet (random weights, 8 fire modules, no normalization) loses up to 2.7e-2 at bf16 on the test
// inputs in exact arithmetic too: the plan simulator (bf16 operands, f64 accumulation) gives the same error, so
// it is bf16 itself, not a backend; it gets 4e-2 and the backends are also held to the simulator.
export function limitFor(precision: Precision, id: string): number {
  if (precision === 'bf16') return id === 'squeezenet' ? 4e-2 : 2e-2;
  if (precision === 'fp16') return 2e-2;
  if (precision === 'tf32') return 5e-3;
  return 1e-4;
}
export type Feeds = Record<string, Record<string, Tensor>>;
export type Outs = Record<string, Record<string, Tensor>>;

export interface PrecisionFleet {
  readonly modelDir: string;
  readonly files: Readonly<Record<string, string>>; // tenant id → ONNX file (what onnxruntime runs)
  readonly intRange: Readonly<Record<string, number>>;
  readonly tenantCount: number;
}

// Writes every model once into `modelDir` (zoo models generated, exports copied).
export function writeFleetModels(modelDir: string): PrecisionFleet {
  const files: Record<string, string> = {};
  const intRange: Record<string, number> = {};
  for (const s of SPECS) {
    const file = path.join(modelDir, `${s.id}.onnx`);
    if (s.zoo) writeFileSync(file, generateModel(s.zoo[0], s.zoo[1] as never).bytes);
    else copyFileSync(path.join(TORCH, s.torch!), file);
    files[s.id] = file;
    intRange[s.id] = s.intRange ?? 50;
  }
  return { modelDir, files, intRange, tenantCount: SPECS.length };
}

// manifest.<precision>.json → compileFleet → outDir; returns the tenants (their graphs make the feeds).
export async function compilePrecision(fleet: PrecisionFleet, precision: Precision, outDir: string, nvcc: 'auto' | 'off'): Promise<readonly TenantInput[]> {
  const manifest = path.join(fleet.modelDir, `manifest.${precision}.json`);
  writeFileSync(manifest, JSON.stringify({ tenants: SPECS.map((s) => ({ id: s.id, model: `${s.id}.onnx`, maxBatch: s.maxBatch })), precision }));
  const r = await compileFleet(manifest, outDir, { nvcc });
  expect(r.plan?.precision).toBe(precision);
  return r.tenants;
}

export function fleetFeeds(fleet: PrecisionFleet, tenants: readonly TenantInput[], seed: number, rows?: (t: TenantInput) => number): Feeds {
  const feeds: Feeds = {};
  tenants.forEach((t, i) => {
    feeds[t.id] = makeFeeds(t.graph, { batch: rows ? rows(t) : t.maxBatch, seed: seed + i, intRange: fleet.intRange[t.id] ?? 50 });
  });
  return feeds;
}

export async function ortOutputs(fleet: PrecisionFleet, feeds: Feeds): Promise<Outs> {
  const out: Outs = {};
  for (const [id, f] of Object.entries(feeds)) out[id] = await runOrt(fleet.files[id]!, f);
  return out;
}

// Worst relative error per tenant of `got` against `want` (every tenant and output of `want`).
export function worstErrors(got: Outs, want: Outs): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [id, outs] of Object.entries(want)) {
    let e = 0;
    for (const [name, w] of Object.entries(outs)) {
      const g = got[id]?.[name];
      if (!g) throw new Error(`tenant ${id}: no output ${name}`);
      expect(g.shape, `${id}/${name}`).toEqual(w.shape);
      e = Math.max(e, relativeError(g, w));
    }
    out[id] = e;
  }
  return out;
}

export async function tickErrors(loaded: LoadedPlan, feeds: Feeds, want: Outs): Promise<Record<string, number>> {
  return worstErrors(await loaded.runTick(feeds), want);
}

export function report(title: string, errs: Record<string, number>): void {
  const worst = Math.max(...Object.values(errs));
  process.stdout.write(
    `${title}: worst ${worst.toExponential(2)}\n${Object.entries(errs)
      .map(([id, e]) => `  ${id.padEnd(12)} ${e.toExponential(2)}`)
      .join('\n')}\n`,
  );
}
