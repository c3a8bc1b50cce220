import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateModel } from '../../models/index.js';
import { type CompileProgress, compileFleet } from '../../src/fleet/compile.js';
import { manifestFromFiles } from '../../src/fleet/manifest.js';
import { planTotals } from '../../src/fleet/summary.js';
import { expectLoomError } from '../support/errors.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'loom-fleet-compile-'));
mkdirSync(path.join(dir, 'models'));
const files = [1, 2, 3].map((seed) => {
  const f = path.join(dir, 'models', `m${seed}.onnx`);
  writeFileSync(f, generateModel('mlp', { seed, sizes: [12, 10, 4] }).bytes);
  return f;
});

describe('compileFleet', () => {
  it('reports progress and writes the same plan twice', async () => {
    const events: CompileProgress[] = [];
    const a = await compileFleet(files, path.join(dir, 'a'), { maxBatch: 2, nvcc: 'off', onProgress: (p) => events.push(p) });
    const b = await compileFleet(manifestFromFiles(files, { maxBatch: 2 }), path.join(dir, 'b'), { nvcc: 'off' });
    expect(readFileSync(path.join(dir, 'a/plan.json'))).toEqual(readFileSync(path.join(dir, 'b/plan.json')));
    expect(a.files).toContain('plan.json');
    expect(a.tenants.map((t) => t.id)).toEqual(['m1', 'm2', 'm3']);
    expect(events[0]).toMatchObject({ done: 0, total: 5 });
    expect(events[0]!.label).toContain('m1');
    expect(events.map((e) => e.done)).toEqual([...events.map((e) => e.done)].sort((x, y) => x - y));
    expect(events.at(-1)).toMatchObject({ done: 5, total: 5 });
    const totals = planTotals(b.plan!);
    expect(totals.tenants).toBe(3);
    expect(totals.launches).toBeLessThan(totals.tenantLayers); // three same-shape MLPs share launches
  });

  it('--emit ir writes canonical IR per tenant and plans nothing', async () => {
    const r = await compileFleet(files.slice(0, 2), path.join(dir, 'ir'), { emit: 'ir' });
    expect(r.plan).toBeNull();
    expect(r.files).toEqual([path.join('ir', 'm1.ir'), path.join('ir', 'm2.ir'), 'dump.json']); // dump.json: what --from ir restarts with
    expect(readFileSync(path.join(dir, 'ir/ir/m2.ir'), 'utf8')).toContain('Gemm');
  });

  it('rejects a mix of manifest and model files', async () => {
    await expect(compileFleet(['fleet.json', files[0]!], path.join(dir, 'x'))).rejects.toThrow(/either one manifest/);
    await expect(compileFleet(files, path.join(dir, 'x'), { emit: 'ptx' as never })).rejects.toThrow(/emit/);
    expectLoomError(() => manifestFromFiles(files, { maxBatch: 9999 }), 'MANIFEST', '--max-batch');
  });
});
