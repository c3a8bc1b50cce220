// bench/cost-model.ts against recorded ticks (--measured): no device, the plan's predicted tick against a
// bench/space-time.ts result's space-time device p50; a file that is not such a result, or lacks the fleet, is
// refused by name.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readMeasuredTicks, runCostModel } from '../../bench/cost-model.js';

const RECORDED = path.resolve(import.meta.dirname, '../../bench/results/2026-12-07-NVIDIA-H100-80GB-HBM3-space-time-branched.json');
const work = mkdtempSync(path.join(os.tmpdir(), 'loom-cost-model-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('bench/cost-model.ts --measured', () => {
  it("reads a space-time result's device ticks and prices a fleet against them", async () => {
    const measured = readMeasuredTicks(RECORDED);
    expect(measured.device).toBe('NVIDIA H100 80GB HBM3');
    expect(measured.ticks.get('mlp-b1')).toBeCloseTo(96.2, 0);
    const r = await runCostModel({
      fleets: ['mlp-b1'],
      backend: 'cpu',
      tolerancePct: 25,
      iters: 1,
      tenantsScale: 1,
      work,
      nvcc: 'off',
      branching: 'auto',
      measured,
    });
    const row = r.rows[0]!;
    expect(r.device).toBe('NVIDIA H100 80GB HBM3');
    expect(row.measuredUs).toBe(measured.ticks.get('mlp-b1'));
    expect(row.predictedUs).toBeGreaterThan(0);
    expect(row.errorPct).toBeCloseTo(((row.predictedUs - row.measuredUs) / row.measuredUs) * 100, 6);
    expect(row.check.launches).toEqual([]);
  });

  it('refuses a file that is not a space-time result, and a fleet the file lacks', async () => {
    const bad = path.join(work, 'not-space-time.json');
    writeFileSync(bad, JSON.stringify({ rows: [] }));
    expect(() => readMeasuredTicks(bad)).toThrow(/has no measured space-time fleet/);
    expect(() => readMeasuredTicks(path.join(work, 'missing.json'))).toThrow(/--measured: cannot read/);
    const measured = readMeasuredTicks(RECORDED);
    await expect(
      runCostModel({ fleets: ['resnet18'], backend: 'cpu', tolerancePct: 25, iters: 1, tenantsScale: 1, work, nvcc: 'off', measured }),
    ).rejects.toThrow(/has no space-time tick of fleet 'resnet18'/);
  });
});
