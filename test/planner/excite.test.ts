// Squeeze-and-excite blocks as one kernel (src/planner/lower-excite.ts): a MobileNetV3's pool → 1×1 conv → 1×1
// conv → scale runs as one squeeze_excite launch serving every tenant, computes what onnxruntime computes
// (simulator and CPU backend, tenant by tenant, tenants with their own weights), and blocks the kernel should
// not take (an image too large for one block) keep the separate launches.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writePlanDir } from '../../codegen/index.js';
import type { Tensor } from '../../ir/tensor.js';
import { generateModel } from '../../models/index.js';
import { loadPlan } from '../../runtime/index.js';
import { planFleet } from '../../src/planner/index.js';
import { makeFeeds } from '../oracle/harness.js';
import { worstErrors } from '../runtime/precision-fleet.js';
import { checkFleet, tenantFromBytes } from './fleet-helpers.js';

const mobilenet = (seed: number, resolution: number, maxBatch: number) =>
  tenantFromBytes(`mobilenet-${seed}`, generateModel('mobilenet', { seed, resolution, classes: 10, widthMult: 0.25 }).bytes, maxBatch);
const fleet = [mobilenet(1, 32, 2), mobilenet(2, 32, 2)];
const inputs = fleet.map((t) => t.input);
const opOf = (l: { kind: string; op?: { op: string } }) => (l.kind === 'kernel' ? l.op!.op : l.kind);
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('squeeze-and-excite as one kernel', () => {
  const fused = planFleet(inputs); // the default (plan-fleet.ts)
  const apart = planFleet(inputs, { squeezeExcite: false });

  it('each block is one launch over both tenants, in place of a reduce, two GEMMs and a scale', () => {
    const se = fused.launches.filter((l) => opOf(l) === 'squeeze_excite');
    expect(se.length).toBeGreaterThan(5);
    for (const l of se) expect(l.info.tenants).toEqual([0, 1]);
    expect(apart.launches.some((l) => opOf(l) === 'squeeze_excite')).toBe(false);
    expect(apart.launches.length - fused.launches.length).toBe(3 * se.length);
    const reduces = (p: typeof fused) => p.launches.filter((l) => opOf(l) === 'reduce').length;
    expect(reduces(apart) - reduces(fused)).toBe(se.length);
  });

  it('computes what onnxruntime computes, tenant by tenant, fused or apart (simulator)', async () => {
    for (const plan of [fused, apart]) for (const [id, e] of Object.entries(await checkFleet(plan, fleet))) expect(e, id).toBeLessThanOrEqual(1e-4);
  });

  it('the CPU backend runs the fused plan as it runs the separate launches', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'loom-excite-'));
    dirs.push(root);
    const feeds: Record<string, Record<string, Tensor>> = {};
    fleet.forEach((t, i) => {
      feeds[t.input.id] = makeFeeds(t.input.graph, { batch: 2, seed: 40 + i });
    });
    const outs = [];
    for (const [name, plan] of [
      ['fused', fused],
      ['apart', apart],
    ] as const) {
      await writePlanDir(plan, path.join(root, name), { nvcc: 'off' });
      const loaded = await loadPlan(path.join(root, name), { backend: 'cpu', threads: 2 });
      outs.push(await loaded.runTick(feeds));
      loaded.close();
    }
    for (const [id, e] of Object.entries(worstErrors(outs[0]!, outs[1]!))) expect(e, id).toBeLessThanOrEqual(1e-5);
  });

  it("timm's form (ReduceMean over the spatial axes, keepdims) is the same block: one launch, onnxruntime's values", async () => {
    const timm = [1, 2].map((seed) =>
      tenantFromBytes(`timm-${seed}`, generateModel('mobilenet', { seed, resolution: 32, classes: 10, widthMult: 0.25, sePool: 'mean' }).bytes, 1),
    );
    const plan = planFleet(
      timm.map((t) => t.input),
      { squeezeExcite: true },
    );
    const se = plan.launches.filter((l) => opOf(l) === 'squeeze_excite');
    expect(se.length).toBe(fused.launches.filter((l) => opOf(l) === 'squeeze_excite').length);
    expect(plan.launches.filter((l) => opOf(l) === 'reduce')).toHaveLength(1); // the classifier's pool
    for (const [id, e] of Object.entries(await checkFleet(plan, timm))) expect(e, id).toBeLessThanOrEqual(1e-4);
  });

  it('a block whose image is too large for one block keeps the separate launches', () => {
    // at 640² the early blocks pool images past SE_MAX_IMAGE_ELEMS values; at 32² every block is one kernel
    const big = planFleet([mobilenet(3, 640, 1).input], { squeezeExcite: true });
    const small = planFleet([mobilenet(3, 32, 1).input], { squeezeExcite: true });
    const count = (p: typeof big, op: string) => p.launches.filter((l) => opOf(l) === op).length;
    const kept = count(small, 'squeeze_excite') - count(big, 'squeeze_excite');
    expect(kept).toBeGreaterThan(0);
    expect(count(big, 'squeeze_excite')).toBeGreaterThan(0);
    expect(count(big, 'reduce') - count(small, 'reduce')).toBe(kept);
  });
});
