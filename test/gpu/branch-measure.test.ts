// `loom compile --branching measure` on the GPU (src/fleet/branch-measure.ts): the fleet planned batched and
// branched, both plans timed on the CUDA backend (CUDA events around captured ticks), the faster one kept as the
// plan directory with both ticks in plan.json's cost.branches.measured.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateModel } from '../../models/index.js';
import { loadPlan } from '../../runtime/index.js';
import { compileFleet } from '../../src/fleet/compile.js';
import { GPU_SKIP_REASON } from './gpu-env.js';

describe.skipIf(GPU_SKIP_REASON !== null)('--branching measure on the CUDA backend', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'loom-gpu-branch-measure-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('times the batched and branched plans on the GPU and keeps the faster', async () => {
    mkdirSync(path.join(dir, 'models'));
    const tenants = [1, 2, 3].map((seed) => {
      const id = `mobilenet-${seed}`;
      writeFileSync(path.join(dir, 'models', `${id}.onnx`), generateModel('mobilenet', { seed, resolution: 32, classes: 10, widthMult: 0.25 }).bytes);
      return { id, model: `models/${id}.onnx`, maxBatch: 1 };
    });
    writeFileSync(path.join(dir, 'fleet.json'), JSON.stringify({ tenants, precision: 'fp32' }));
    const out = path.join(dir, 'plan');
    const r = await compileFleet(path.join(dir, 'fleet.json'), out, { branching: 'measure', measureBackend: 'cuda', nvcc: 'auto' });
    const b = r.plan!.cost.branches!;
    const m = b.measured!;
    process.stdout.write(`branching measure: batched ${m.batchedUs.toFixed(1)} us, branched ${m.branchedUs.toFixed(1)} us on ${m.device}\n`);
    expect(m.backend).toBe('cuda');
    expect(m.device.length).toBeGreaterThan(0);
    expect(m.batchedUs).toBeGreaterThan(0);
    expect(m.branchedUs).toBeGreaterThan(0);
    expect(b.tenants.length > 0).toBe(m.branchedUs < m.batchedUs);
    const onDisk = JSON.parse(readFileSync(path.join(out, 'plan.json'), 'utf8')) as { cost: { branches: typeof b } };
    expect(onDisk.cost.branches).toEqual(b);
    expect(readdirSync(dir).filter((n) => n.includes('.branching-'))).toEqual([]);
    expect(existsSync(path.join(out, 'weights.bin'))).toBe(true);
    const p = await loadPlan(out, { backend: 'cuda' });
    try {
      expect(p.benchTick(5).deviceUs.length).toBe(5);
    } finally {
      p.close();
    }
  });
});
