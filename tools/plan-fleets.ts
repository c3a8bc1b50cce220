// The fleets whose compiled plans are hashed to prove a refactor changed no plan (tools/plan-hashes.ts).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { type ZooKind, type ZooOptions, writeZooModel } from '../models/index.js';
import { demoFleet, writeDemoFleet } from '../src/fleet/demo.js';

export const HASHED_FILES = ['plan.json', 'weights.bin', 'kernels.cu', 'client.ts'] as const;

interface ZooFleet {
  readonly tenants: ReadonlyArray<{ readonly kind: ZooKind; readonly options: Record<string, unknown> }>;
  readonly precision: string;
  readonly maxBatch: number;
}

const SMALL: Partial<Record<ZooKind, Record<string, unknown>>> = {
  resnet18: { width: 8, resolution: 32, classes: 10 },
  encoder: { layers: 2, hidden: 32, heads: 2, ffn: 64, seq: 8, vocabSize: 100, maxPositions: 16 },
};

const zooFleet = (kind: ZooKind, n: number, precision = 'fp32'): ZooFleet => ({
  tenants: Array.from({ length: n }, () => ({ kind, options: SMALL[kind] ?? {} })),
  precision,
  maxBatch: 2,
});

// name → how its models are made
export const PLAN_FLEETS: Readonly<Record<string, 'demo' | 'demo-small' | ZooFleet>> = {
  demo: 'demo',
  'demo-small': 'demo-small',
  mlp: zooFleet('mlp', 3),
  lstm: zooFleet('lstm', 3),
  gru: zooFleet('gru', 2),
  resnet18: zooFleet('resnet18', 2),
  encoder: zooFleet('encoder', 2),
  mobilenet: zooFleet('mobilenet', 2),
  squeezenet: zooFleet('squeezenet', 2),
  'mlp-bf16': zooFleet('mlp', 2, 'bf16'),
  mixed: {
    tenants: (['mlp', 'lstm', 'gru', 'resnet18', 'encoder', 'mobilenet', 'squeezenet'] as const).map((kind) => ({ kind, options: SMALL[kind] ?? {} })),
    precision: 'fp16',
    maxBatch: 3,
  },
};

// Writes the fleet's models and manifest under dir; returns the manifest path.
export function writeHashFleet(name: string, dir: string): string {
  const spec = PLAN_FLEETS[name];
  if (spec === undefined) throw new Error(`unknown fleet '${name}' (known: ${Object.keys(PLAN_FLEETS).join(', ')})`);
  if (spec === 'demo' || spec === 'demo-small') return writeDemoFleet(dir, demoFleet(spec === 'demo-small'));
  const tenants = spec.tenants.map((t, i) => {
    const model = `models/${t.kind}-${i + 1}.onnx`;
    writeZooModel(t.kind, { ...t.options, seed: 1000 + 17 * i } as ZooOptions<typeof t.kind>, path.join(dir, model));
    return { id: `${t.kind}-${i + 1}`, model, maxBatch: spec.maxBatch };
  });
  const manifest = path.join(dir, 'fleet.json');
  writeFileSync(manifest, `${JSON.stringify({ tenants, precision: spec.precision }, null, 2)}\n`);
  return manifest;
}
