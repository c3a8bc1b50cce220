// Fleets planned by planFleet and executed by the plan simulator match onnxruntime per tenant.
import { describe, expect, it } from 'vitest';
import { generateModel } from '../../models/index.js';
import { planFleetDetailed } from '../../src/planner/index.js';
import { type TestTenant, checkFleet, mixedFleet, tenantFromBytes } from './fleet-helpers.js';

describe('planned fleets match onnxruntime per tenant', () => {
  it('8 MLPs (different seeds): each layer is one strided gemm launch with 8 entries', async () => {
    const ts = Array.from({ length: 8 }, (_, i) => tenantFromBytes(`mlp${i}`, generateModel('mlp', { seed: 10 + i, sizes: [64, 128, 128, 10] }).bytes, 4));
    const { plan } = planFleetDetailed(ts.map((t) => t.input));
    expect(plan.launches.map((l) => l.kind)).toEqual(['gemm', 'gemm', 'gemm']);
    for (const l of plan.launches) {
      if (l.kind !== 'gemm') throw new Error('expected gemm');
      expect(l.entries).toHaveLength(8);
      expect(l.strides).not.toBeNull();
      expect(new Set(l.entries.map((e) => e.tenant)).size).toBe(8);
    }
    const full = await checkFleet(plan, ts);
    for (const [id, e] of Object.entries(full)) expect(e, id).toBeLessThanOrEqual(1e-4);
    const partial = await checkFleet(plan, ts, () => 2); // fewer rows than maxBatch
    for (const [id, e] of Object.entries(partial)) expect(e, id).toBeLessThanOrEqual(1e-4);
  });

  it('a mixed fleet of 17 tenants (zoo, torch exports, PP-OCR) in one plan', async () => {
    const ts: TestTenant[] = mixedFleet({ ppocr: true });
    const { plan, stepsPerTenant } = planFleetDetailed(ts.map((t) => t.input));
    expect(plan.tenants).toHaveLength(17);
    const layers = plan.tenants.reduce((a, t) => a + t.layers, 0);
    const steps = stepsPerTenant.reduce((a, b) => a + b, 0);
    // the point of the planner: on one stream, far fewer launches per tick than the tenants' layers; on lanes
    // (the default here) GEMMs of different shapes run side by side instead of grouped, and the lanes' tick is
    // shorter still
    const one = planFleetDetailed(
      ts.map((t) => t.input),
      { maxLanes: 1 },
    ).plan;
    expect(one.launches.length).toBeLessThan(layers / 2);
    expect(one.launches.length).toBeLessThan(steps / 2);
    expect(one.cost.predictedTickUs).toBeLessThan(one.cost.ungroupedTickUs / 2);
    expect(plan.lanes ?? 1).toBeGreaterThan(1);
    expect(plan.cost.criticalPathUs!).toBeLessThan(one.cost.predictedTickUs);
    const errors = await checkFleet(plan, ts);
    for (const [id, e] of Object.entries(errors)) expect(e, id).toBeLessThanOrEqual(1e-4);
    console.log(`mixed fleet: ${plan.tenants.length} tenants, ${layers} layers, ${steps} steps, ${plan.launches.length} launches, ${plan.stages} stages`);
  });
});
