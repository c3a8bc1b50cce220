// The demo fleet: a mixed set of zoo models with different seeds (so a tenant mix-up shows as a wrong answer),
// written as real ONNX files plus a manifest, exactly what a user would hand to `loom compile`.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fail } from '../../ir/errors.js';
import { type ZooKind, type ZooOptions, writeZooModel } from '../../models/index.js';

export interface DemoTenant {
  readonly id: string;
  readonly kind: ZooKind;
  readonly options: Readonly<Record<string, unknown>>; // zoo options besides the seed
  readonly seed: number;
}

export const DEMO_MAX_BATCH = 4;

// 8 MLPs (two widths, two activations, Gemm and MatMul forms) + 4 LSTMs + 2 ResNet-18 + 2 encoders.
// `small` keeps every architecture but shrinks widths and resolutions so the whole demo runs in seconds.
export function demoFleet(small: boolean): DemoTenant[] {
  const mlpA = small ? { sizes: [64, 48, 48, 10] } : { sizes: [784, 512, 512, 10] };
  const mlpB = small ? { sizes: [32, 96, 10] } : { sizes: [256, 1024, 10] };
  const lstm = small ? { hidden: 32, inputSize: 16, seqLen: 4 } : {};
  const resnet = small ? { width: 8, resolution: 32, classes: 10 } : { resolution: 64 };
  const encoder = small ? { layers: 2, hidden: 32, heads: 2, ffn: 64, seq: 8, vocabSize: 100, maxPositions: 16 } : {};
  const out: DemoTenant[] = [];
  for (let i = 0; i < 8; i++) {
    const options = {
      ...(i < 6 ? mlpA : mlpB),
      activation: i % 3 === 2 ? 'relu' : 'gelu',
      linear: i % 4 === 3 ? 'matmul' : 'gemm',
    };
    out.push({ id: `mlp-${i + 1}`, kind: 'mlp', options, seed: 101 + i });
  }
  for (let i = 0; i < 4; i++) out.push({ id: `lstm-${i + 1}`, kind: 'lstm', options: lstm, seed: 201 + i });
  for (let i = 0; i < 2; i++) out.push({ id: `resnet-${i + 1}`, kind: 'resnet18', options: resnet, seed: 301 + i });
  for (let i = 0; i < 2; i++) out.push({ id: `encoder-${i + 1}`, kind: 'encoder', options: encoder, seed: 401 + i });
  return out;
}

// Writes <dir>/models/<id>.onnx and <dir>/fleet.json; returns the manifest's path.
export function writeDemoFleet(dir: string, tenants: readonly DemoTenant[], onModel?: (t: DemoTenant, i: number) => void): string {
  try {
    mkdirSync(path.join(dir, 'models'), { recursive: true });
  } catch (e) {
    fail('IO', `cannot create demo folder '${dir}': ${(e as Error).message}`);
  }
  const entries = tenants.map((t, i) => {
    onModel?.(t, i);
    const model = `models/${t.id}.onnx`;
    writeZooModel(t.kind, { ...t.options, seed: t.seed } as ZooOptions<typeof t.kind>, path.join(dir, model));
    return { id: t.id, model, maxBatch: DEMO_MAX_BATCH };
  });
  const manifest = path.join(dir, 'fleet.json');
  try {
    writeFileSync(manifest, `${JSON.stringify({ tenants: entries, precision: 'fp32' }, null, 2)}\n`);
  } catch (e) {
    fail('IO', `cannot write '${manifest}': ${(e as Error).message}`);
  }
  return manifest;
}
