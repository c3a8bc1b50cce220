// The fleet the row-bucket tests share (test/runtime/tick-rows.test.ts on the CPU, test/gpu/tick-rows.test.ts on
// CUDA): MLPs at maxBatch 8 (GEMMs that scale with the rows), an encoder (dense layers scale with rowsUnit = seq,
// attention does not), a ResNet (per-image convs, a scaled classifier) and an LSTM (time-major: nothing scales).
// `pad` is an MLP fed 8 rows to force a tick at every row.
import type { Tensor } from '../../ir/tensor.js';
import { generateModel } from '../../models/index.js';
import { makeFeeds } from '../oracle/harness.js';
import { type TestTenant, tenantFromBytes } from '../planner/fleet-helpers.js';

export type Feeds = Record<string, Record<string, Tensor>>;

export const zooTenant = (id: string, kind: Parameters<typeof generateModel>[0], o: object, maxBatch: number): TestTenant =>
  tenantFromBytes(id, generateModel(kind, o as never).bytes, maxBatch);

export function rowsFleet(): TestTenant[] {
  return [
    zooTenant('mlp-0', 'mlp', { seed: 1, sizes: [32, 64, 10] }, 8),
    zooTenant('mlp-1', 'mlp', { seed: 2, sizes: [32, 64, 10] }, 8),
    zooTenant('mlp-2', 'mlp', { seed: 3, sizes: [48, 96, 64, 10], linear: 'matmul', activation: 'relu' }, 8),
    zooTenant('pad', 'mlp', { seed: 4, sizes: [16, 32, 4] }, 8),
    zooTenant('enc', 'encoder', { seed: 7, layers: 1, hidden: 64, heads: 2, ffn: 128, seq: 16, vocabSize: 100, maxPositions: 32 }, 4),
    zooTenant('resnet', 'resnet18', { seed: 13, width: 8, resolution: 32, classes: 10 }, 4),
    zooTenant('lstm', 'lstm', { seed: 12, hidden: 32, inputSize: 16, seqLen: 4 }, 4),
  ];
}

// Inputs for the tenants named in `rows`, each with that many rows, seeded per tenant.
export function rowsFeeds(ts: readonly TestTenant[], rows: Readonly<Record<string, number>>, seed: number): Feeds {
  const feeds: Feeds = {};
  ts.forEach((t, i) => {
    const r = rows[t.input.id];
    if (r !== undefined) feeds[t.input.id] = makeFeeds(t.input.graph, { batch: r, seed: seed + i, intRange: 50 });
  });
  return feeds;
}
