// `loom inspect --diff`: two compiled fleets that differ by one tenant added, one removed, one with new
// weights, one with a new graph and one with a new maxBatch.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeZooModel } from '../../models/index.js';
import { compileFleet } from '../../src/fleet/compile.js';
import { diffPlanDirs } from '../../src/fleet/plan-diff.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(path.join(os.tmpdir(), 'loom-plan-diff-'));
const model = (name: string, sizes: number[], seed: number) => {
  writeZooModel('mlp', { sizes, seed }, path.join(dir, `${name}.onnx`));
  return `${name}.onnx`;
};

async function fleet(name: string, tenants: { id: string; model: string; maxBatch: number }[]): Promise<string> {
  const manifest = path.join(dir, `${name}.json`);
  writeFileSync(manifest, JSON.stringify({ tenants, precision: 'fp32' }));
  await compileFleet(manifest, path.join(dir, name), { nvcc: 'off' });
  return path.join(dir, name);
}

const small = [16, 12, 4];
const oldPlan = fleet('old', [
  { id: 'keep', model: model('keep', small, 1), maxBatch: 2 },
  { id: 'reweigh', model: model('reweigh', small, 2), maxBatch: 2 },
  { id: 'reshape', model: model('reshape', small, 3), maxBatch: 2 },
  { id: 'rebatch', model: model('rebatch', small, 4), maxBatch: 2 },
  { id: 'leaves', model: model('leaves', small, 5), maxBatch: 2 },
]);
const newPlan = oldPlan.then(() =>
  fleet('new', [
    { id: 'keep', model: 'keep.onnx', maxBatch: 2 },
    { id: 'reweigh', model: model('reweigh', small, 20), maxBatch: 2 }, // the same files, rewritten
    { id: 'reshape', model: model('reshape', [16, 24, 4], 3), maxBatch: 2 },
    { id: 'rebatch', model: 'rebatch.onnx', maxBatch: 4 },
    { id: 'joins', model: model('joins', small, 6), maxBatch: 2 },
  ]),
);

describe('diffPlanDirs', () => {
  it('names tenants added, removed and changed (graph, weights, settings), and launches gone and new', async () => {
    const d = diffPlanDirs(await oldPlan, await newPlan);
    expect(d.tenants.added).toEqual(['joins']);
    expect(d.tenants.removed).toEqual(['leaves']);
    expect(d.tenants.unchanged).toBe(1); // keep
    const changed = Object.fromEntries(d.tenants.changed.map((c) => [c.id, c]));
    expect(Object.keys(changed).sort()).toEqual(['rebatch', 'reshape', 'reweigh']);
    expect(changed.reweigh!.changes).toEqual(['weights']);
    expect(changed.reshape!.changes).toEqual(['graph', 'weights']);
    expect(changed.reshape!.details).toEqual([]); // same layers, same I/O: the hidden width changed
    expect(changed.rebatch!.changes).toContain('settings');
    expect(changed.rebatch!.details).toContain('maxBatch 2 → 4');
    expect(d.launches.gone.length + d.launches.new.length).toBeGreaterThan(0); // reshape's widths need grouped GEMMs
    expect(d.totals.before.tenants).toBe(5);
    expect(d.totals.after.arenas.weights).toBeGreaterThan(d.totals.before.arenas.weights); // reshape grew
  });

  it('says which launches a tenant joined and left when only membership changes', async () => {
    const a = await fleet('swap-a', [
      { id: 'stay', model: model('stay', small, 7), maxBatch: 1 },
      { id: 'leaves', model: 'leaves.onnx', maxBatch: 1 },
    ]);
    const b = await fleet('swap-b', [
      { id: 'stay', model: 'stay.onnx', maxBatch: 1 },
      { id: 'joins', model: 'joins.onnx', maxBatch: 1 },
    ]);
    const d = diffPlanDirs(a, b);
    expect(d.tenants).toMatchObject({ added: ['joins'], removed: ['leaves'], changed: [], unchanged: 1 });
    expect(d.launches).toMatchObject({ before: 2, after: 2, kept: 0, gone: [], new: [] });
    expect(d.launches.regrouped).toEqual([
      { shape: 'gemm 1x12x16', before: 2, after: 2, joined: ['joins'], left: ['leaves'] },
      { shape: 'gemm 1x4x12', before: 2, after: 2, joined: ['joins'], left: ['leaves'] },
    ]);
  });

  it('finds nothing between a plan and itself', async () => {
    const d = diffPlanDirs(await oldPlan, await oldPlan);
    expect(d.tenants).toEqual({ added: [], removed: [], changed: [], unchanged: 5 });
    expect(d.launches).toMatchObject({ regrouped: [], gone: [], new: [] });
  });

  it('loom inspect --diff prints the changes; --json gives the same data', async () => {
    const [a, b] = [await oldPlan, await newPlan];
    const run = (...extra: string[]) =>
      spawnSync(process.execPath, [path.join(ROOT, 'bin/loom.js'), 'inspect', '--diff', a, b, ...extra], { encoding: 'utf8', timeout: 120_000 });
    const text = run();
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toContain('tenants    5 → 5: 1 added, 1 removed, 3 changed, 1 unchanged');
    expect(text.stdout).toMatch(/^ {2}\+ joins$/m);
    expect(text.stdout).toMatch(/^ {2}- leaves$/m);
    expect(text.stdout).toContain('  ~ reweigh: weights\n');
    expect(text.stdout).toContain(
      '  ~ rebatch: graph, settings (I/O (input:f32[2,16]) -> (output:f32[2,4]) → (input:f32[4,16]) -> (output:f32[4,4]); maxBatch 2 → 4)',
    );
    expect(text.stdout).toMatch(/^predicted {2}tick /m);
    expect(text.stdout).toMatch(/^memory {5}.* on the device: weights .* → /m);
    const json = run('--json');
    expect(json.status, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(JSON.parse(JSON.stringify(diffPlanDirs(a, b))));
    const bad = run('--html', 'x.html');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--diff prints text or --json');
  });
});
