// A mixed fleet for the sharding tests: five architectures (MLPs, LSTMs, GRUs, two encoder shapes), each a few
// tenants with their own weights; written as ONNX with a manifest in a temp dir.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateModel } from '../../models/index.js';

interface Arch {
  readonly prefix: string;
  readonly kind: string;
  readonly count: number;
  readonly maxBatch: number;
  readonly opts: Record<string, unknown>;
}

export const MIXED: readonly Arch[] = [
  { prefix: 'mlp', kind: 'mlp', count: 6, maxBatch: 4, opts: { sizes: [32, 64, 64, 10] } },
  { prefix: 'lstm', kind: 'lstm', count: 3, maxBatch: 3, opts: { hidden: 8, inputSize: 6, seqLen: 3, classes: 4 } },
  { prefix: 'gru', kind: 'gru', count: 3, maxBatch: 2, opts: { hidden: 12, inputSize: 6, seqLen: 4, classes: 4 } },
  { prefix: 'enc', kind: 'encoder', count: 2, maxBatch: 2, opts: { layers: 1, hidden: 32, heads: 2, ffn: 64, seq: 8, vocabSize: 50, maxPositions: 16 } },
  { prefix: 'encb', kind: 'encoder', count: 2, maxBatch: 1, opts: { layers: 2, hidden: 16, heads: 2, ffn: 32, seq: 8, vocabSize: 50, maxPositions: 16 } },
];

// The tenant ids of one architecture.
export const idsOf = (a: Arch): string[] => Array.from({ length: a.count }, (_, i) => `${a.prefix}${i}`);

// Writes models/ and fleet.json (sloMs per tenant id where given); returns the manifest path.
export function writeFleet(archs: readonly Arch[], slo: Readonly<Record<string, number>> = {}): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'loom-shard-'));
  mkdirSync(path.join(dir, 'models'));
  const tenants: unknown[] = [];
  let seed = 1;
  for (const a of archs) {
    for (const id of idsOf(a)) {
      writeFileSync(path.join(dir, 'models', `${id}.onnx`), generateModel(a.kind as never, { ...a.opts, seed: seed++ } as never).bytes);
      tenants.push({ id, model: `models/${id}.onnx`, maxBatch: a.maxBatch, ...(slo[id] !== undefined ? { sloMs: slo[id] } : {}) });
    }
  }
  writeFileSync(path.join(dir, 'fleet.json'), JSON.stringify({ tenants, precision: 'fp32' }));
  return path.join(dir, 'fleet.json');
}
