// Manifest precisions end to end on the native CPU backend: manifest (precision) → compileFleet → loadPlan →
// runTick for a mixed fleet of 17 tenants, every tenant against onnxruntime fp32 on its own model:
// bf16 / fp16 ≤ 2e-2 (half GEMM operands, f32 accumulation; see limitFor for the one bf16 exception) and
// close to the plan simulator; tf32 plans run true fp32 on the CPU (≤ 1e-4).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPlanDir } from '../../codegen/index.js';
import { loadPlan } from '../../runtime/index.js';
import { planFleet } from '../../src/planner/index.js';
import { simulateTick } from '../support/plan-simulator.js';
import { EMU_SKIP_REASON } from '../native/emu-env.js';
import {
  type PrecisionFleet,
  compilePrecision,
  fleetFeeds,
  limitFor,
  ortOutputs,
  report,
  tickErrors,
  worstErrors,
  writeFleetModels,
} from './precision-fleet.js';

describe('manifest precisions on the CPU backend match onnxruntime fp32 per tenant', () => {
  let root = '';
  let fleet: PrecisionFleet;

  beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), 'loom-precision-'));
    mkdirSync(path.join(root, 'models'));
    fleet = writeFleetModels(path.join(root, 'models'));
  });

  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  for (const [precision, dt] of [
    ['bf16', 'bf16'],
    ['fp16', 'f16'],
  ] as const) {
    it(`${precision}: every tenant within 2e-2, full and partial batches`, async () => {
      const dir = path.join(root, precision);
      const tenants = await compilePrecision(fleet, precision, dir, 'off');
      const compiled = planFleet(tenants, { precision });
      const plan = readPlanDir(dir);
      expect(plan.precision).toBe(precision);
      const gemms = plan.launches.filter((l) => l.kind !== 'kernel');
      expect(gemms.length).toBeGreaterThan(0);
      for (const l of gemms) expect(l.dtype).toBe(dt);
      expect(plan.weights.blobs.some((b) => b.dtype === dt)).toBe(true);
      const loaded = await loadPlan(dir, { backend: 'cpu' });
      try {
        for (const [tick, rows] of [undefined, () => 1].entries()) {
          const feeds = fleetFeeds(fleet, tenants, 300 + 1000 * tick, rows);
          const errs = await tickErrors(loaded, feeds, await ortOutputs(fleet, feeds));
          expect(Object.keys(errs)).toHaveLength(fleet.tenantCount);
          report(`${precision} CPU backend vs onnxruntime fp32 (tick ${tick})`, errs);
          for (const [id, e] of Object.entries(errs)) expect(e, `${precision} ${id}`).toBeLessThanOrEqual(limitFor(precision, id));
        }
        // the backend adds nothing to the precision's own error: it matches the plan simulator (the same
        // half operands, f64 accumulation) far more closely than either matches fp32
        const feeds = fleetFeeds(fleet, tenants, 300);
        const vsSim = worstErrors(await loaded.runTick(feeds), simulateTick(compiled, feeds));
        report(`${precision} CPU backend vs plan simulator`, vsSim);
        for (const [id, e] of Object.entries(vsSim)) expect(e, `${precision} ${id} vs simulator`).toBeLessThanOrEqual(5e-3);
        // the generated CUDA kernels of the half plan (operand casts, half im2col) compiled for the host: the same
        // GEMMs as the CPU backend, so only the kernels can differ
        if (EMU_SKIP_REASON === null) {
          const emu = await loadPlan(dir, { backend: 'cuda-emu' });
          try {
            const vsCpu = worstErrors(await emu.runTick(feeds), await loaded.runTick(feeds));
            for (const [id, e] of Object.entries(vsCpu)) expect(e, `${precision} ${id}: cuda-emu vs cpu`).toBeLessThanOrEqual(1e-4);
          } finally {
            emu.close();
          }
        }
      } finally {
        loaded.close();
      }
    });
  }

  it('tf32: the plan says tf32 (fp32 launches); the CPU backend computes true fp32 (≤ 1e-4)', async () => {
    const dir = path.join(root, 'tf32');
    const tenants = await compilePrecision(fleet, 'tf32', dir, 'off');
    const plan = readPlanDir(dir);
    for (const l of plan.launches) if (l.kind !== 'kernel') expect(l.dtype).toBe('f32');
    const loaded = await loadPlan(dir, { backend: 'cpu' });
    try {
      const feeds = fleetFeeds(fleet, tenants, 500);
      const errs = await tickErrors(loaded, feeds, await ortOutputs(fleet, feeds));
      for (const [id, e] of Object.entries(errs)) expect(e, id).toBeLessThanOrEqual(1e-4);
    } finally {
      loaded.close();
    }
  });
});
