// A small mixed fleet compiled once per test file: three MLPs (two share a shape), a GRU and an encoder.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateModel } from '../../models/index.js';
import { compileFleet } from '../../src/fleet/compile.js';

export const FLEET = [
  { id: 'mlp-a', kind: 'mlp', opts: { seed: 11, sizes: [24, 16, 8] }, maxBatch: 3 },
  { id: 'mlp-b', kind: 'mlp', opts: { seed: 12, sizes: [24, 16, 8] }, maxBatch: 3 },
  { id: 'mlp-c', kind: 'mlp', opts: { seed: 13, sizes: [24, 32, 4], activation: 'relu' }, maxBatch: 2 },
  { id: 'gru-a', kind: 'gru', opts: { seed: 14, hidden: 8, inputSize: 4, seqLen: 3, classes: 4 }, maxBatch: 2 },
  { id: 'enc-a', kind: 'encoder', opts: { seed: 15, layers: 1, hidden: 16, heads: 2, ffn: 32, seq: 4, vocabSize: 30 }, maxBatch: 2 },
] as const;

// Writes the models and manifest under a new temp folder and compiles them; returns the folder and plan dir.
export async function compileBenchFleet(): Promise<{ root: string; planDir: string; manifest: string }> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'loom-bench-test-'));
  mkdirSync(path.join(root, 'models'));
  for (const t of FLEET) writeFileSync(path.join(root, 'models', `${t.id}.onnx`), generateModel(t.kind, t.opts as never).bytes);
  const manifest = path.join(root, 'fleet.json');
  writeFileSync(manifest, JSON.stringify({ tenants: FLEET.map((t) => ({ id: t.id, model: `models/${t.id}.onnx`, maxBatch: t.maxBatch })), precision: 'fp32' }));
  const planDir = path.join(root, 'plan');
  await compileFleet(manifest, planDir, { nvcc: 'off' });
  return { root, planDir, manifest };
}
