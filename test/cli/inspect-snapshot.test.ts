// Golden snapshot of `loom inspect` for a fixed fleet: a change to the planner, the cost model or the table
// shows up as a reviewed diff of test/cli/__snapshots__/inspect-fleet.txt (update with `vitest -u`).
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readPlanDir } from '../../codegen/index.js';
import { generateModel } from '../../models/index.js';
import { formatLaunchTable, formatTotals } from '../../src/cli/inspect.js';
import { compileFleet } from '../../src/fleet/compile.js';

const FLEET = [
  { id: 'mlp-a', kind: 'mlp', opts: { seed: 1, sizes: [64, 48, 8] }, maxBatch: 4 },
  { id: 'mlp-b', kind: 'mlp', opts: { seed: 2, sizes: [64, 48, 8] }, maxBatch: 4 },
  { id: 'mlp-c', kind: 'mlp', opts: { seed: 3, sizes: [64, 48, 8], activation: 'relu' }, maxBatch: 4 },
  { id: 'gru-a', kind: 'gru', opts: { seed: 4, hidden: 16, inputSize: 8, seqLen: 3, classes: 4 }, maxBatch: 2 },
  { id: 'enc-a', kind: 'encoder', opts: { seed: 5, layers: 1, hidden: 32, heads: 2, ffn: 64, seq: 8, vocabSize: 50 }, maxBatch: 2 },
] as const;

describe('loom inspect snapshot', () => {
  it('a fixed fleet gives the reviewed launch table and totals', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'loom-inspect-'));
    mkdirSync(path.join(dir, 'models'));
    for (const t of FLEET) writeFileSync(path.join(dir, 'models', `${t.id}.onnx`), generateModel(t.kind, t.opts as never).bytes);
    const manifest = path.join(dir, 'fleet.json');
    writeFileSync(
      manifest,
      JSON.stringify({ tenants: FLEET.map((t) => ({ id: t.id, model: `models/${t.id}.onnx`, maxBatch: t.maxBatch })), precision: 'fp32' }),
    );
    await compileFleet(manifest, path.join(dir, 'plan'), { nvcc: 'off' });
    const plan = readPlanDir(path.join(dir, 'plan'));
    await expect(`${formatLaunchTable(plan)}\n\n${formatTotals(plan)}\n`).toMatchFileSnapshot('__snapshots__/inspect-fleet.txt');
  });
});
