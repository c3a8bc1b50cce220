// Batch or branch (src/planner/branches.ts): a group of equal tenants planned as parallel branches (each
// tenant's chain of launches on a lane of its own) computes what each tenant's model computes, shares no launch
// between branched tenants, waits for no other branch, and is chosen by 'auto' only where the cost model says
// the tick gets shorter.
import { describe, expect, it } from 'vitest';
import { checkLaunchPlan } from '../../codegen/validate.js';
import { buildLaunchPlan } from '../../codegen/build.js';
import { laneOrderViolation, launchDependencies } from '../../ir/contract/dependencies.js';
import { generateModel } from '../../models/index.js';
import { planFleet } from '../../src/planner/index.js';
import { BRANCH_MIN_GAIN, branchKeyed, chooseBranches } from '../../src/planner/branches.js';
import { H100_FP32, costModel } from '../../src/planner/cost.js';
import { simulateLanes } from '../../src/planner/lane-sim.js';
import type { Step } from '../../src/planner/steps.js';
import { checkFleet, tenantFromBytes } from './fleet-helpers.js';
import { formatTotals } from '../../src/cli/inspect.js';
import { renderReport } from '../../src/report/index.js';

// three MobileNets (deep chains of small launches) and two MLPs of another shape, every tenant its own weights
const fleet = [
  ...[1, 2, 3].map((seed) => tenantFromBytes(`mobilenet-${seed}`, generateModel('mobilenet', { seed, resolution: 32, classes: 10, widthMult: 0.25 }).bytes, 1)),
  ...[4, 5].map((seed) => tenantFromBytes(`mlp-${seed}`, generateModel('mlp', { seed, sizes: [64, 128, 10] }).bytes, 2)),
];
const inputs = fleet.map((t) => t.input);
const tenantsOf = (l: { info: { tenants: readonly number[] } }) => l.info.tenants;

describe('batch or branch', () => {
  const batched = planFleet(inputs, { branching: 'never' });
  const branched = planFleet(inputs, { branching: 'all' });

  it("'all' gives each tenant of a group launches of its own, on a lane of its own, with no wait on another branch", () => {
    expect(branched.cost.branches?.tenants).toEqual([0, 1, 2, 3, 4]);
    expect(batched.cost.branches).toBeUndefined();
    for (const l of branched.launches) expect(tenantsOf(l).length, l.info.label).toBe(1);
    expect(batched.launches.some((l) => tenantsOf(l).length > 1)).toBe(true);
    // every tenant's chain alone on its lane: no launch waits for another lane
    const laneOfTenant = new Map<number, Set<number>>();
    for (const l of branched.launches) {
      const t = tenantsOf(l)[0]!;
      laneOfTenant.set(t, (laneOfTenant.get(t) ?? new Set()).add(l.lane ?? 0));
    }
    for (const [t, lanes] of laneOfTenant) expect(lanes.size, `tenant ${t}`).toBe(1);
    expect(new Set([...laneOfTenant.values()].map((s) => [...s][0])).size).toBe(5);
    expect(branched.launches.filter((l) => (l.after?.length ?? 0) > 0)).toEqual([]);
    expect(laneOrderViolation(branched.launches, launchDependencies(branched.launches))).toBeNull();
    expect(() => checkLaunchPlan(buildLaunchPlan(branched).plan)).not.toThrow();
  });

  it('loom inspect and the HTML report name the branched tenants and the batched prediction', () => {
    const text = formatTotals(branched);
    expect(text).toMatch(
      /branches {5}5 tenants as parallel branches, not batched with their equals \(predicted [\d.]+ [µu]s batched\): mobilenet-1, mobilenet-2, mobilenet-3 and 2 more/,
    );
    expect(formatTotals(batched)).not.toMatch(/branches/);
    const html = renderReport(branched as never);
    expect(html).toContain('batched instead');
    expect(html).toContain('parallel branches: mobilenet-1, mobilenet-2, mobilenet-3 and 2 more');
  });

  it('branched and batched plans compute what onnxruntime computes, tenant by tenant', async () => {
    for (const plan of [batched, branched]) {
      const errors = await checkFleet(plan, fleet);
      for (const [id, e] of Object.entries(errors)) expect(e, id).toBeLessThanOrEqual(1e-4);
    }
  });

  it("'auto' branches only what the cost model says shortens the tick, and records the batched prediction", () => {
    const auto = planFleet(inputs, { branching: 'auto' });
    const b = auto.cost.branches;
    if (b === undefined) {
      expect(auto.launches.length).toBe(batched.launches.length);
      return;
    }
    expect(b.tenants.length).toBeGreaterThan(1);
    expect(auto.cost.criticalPathUs!).toBeLessThan(b.batchedUs);
  });

  it("'auto' branches a deep chain whose batched launches cost well above one tenant's, and keeps shallow groups batched", () => {
    // a device whose launches are as slow per byte as per launch: three MobileNets batched cost ~1.6x one
    const slow = costModel({ bandwidth: 3e10 });
    const auto = planFleet(inputs, { branching: 'auto', costModel: slow });
    expect(auto.cost.branches?.tenants).toEqual([0, 1, 2]);
    expect(auto.cost.criticalPathUs!).toBeLessThanOrEqual(BRANCH_MIN_GAIN * auto.cost.branches!.batchedUs);
    expect(planFleet(inputs, { branching: 'never', costModel: slow }).cost.branches).toBeUndefined();
  });

  it('one lane leaves nothing to branch; an unknown mode is refused', () => {
    expect(planFleet(inputs, { branching: 'all', maxLanes: 1 }).cost.branches).toBeUndefined();
    expect(() => planFleet(inputs, { branching: 'sometimes' as never })).toThrow(/branching 'sometimes' is not supported/);
  });

  it('a group larger than the lanes stays batched: branched onto fewer lanes it would be batching done worse', () => {
    const many = planFleet(inputs, { branching: 'all', maxLanes: 2 });
    // the MobileNet group (3) does not fit 2 lanes; the MLP pair does
    expect(many.cost.branches?.tenants).toEqual([3, 4]);
  });
});

describe('branchKeyed', () => {
  it("makes a branched tenant's keys its own and leaves the others alone", () => {
    const step = (id: number, tenant: number): Step => ({ kind: 'gemm', id, tenant, key: 'k', deps: [] }) as unknown as Step;
    const steps = [step(0, 0), step(1, 1), step(2, 2)];
    const keyed = branchKeyed(steps, new Set([1, 2]));
    expect(keyed[0]).toBe(steps[0]);
    expect(new Set(keyed.map((s) => s.key)).size).toBe(3);
    expect(keyed.map((s) => s.id)).toEqual([0, 1, 2]);
  });

  it("chooses nothing under 'never' or with one lane", () => {
    expect(chooseBranches([], [0, 0], 10, H100_FP32, 'fp32', 8, 'never')).toBeNull();
    expect(chooseBranches([], [0, 0], 10, H100_FP32, 'fp32', 1, 'all')).toBeNull();
  });
});

describe('the laned tick as the device runs it (lane-sim)', () => {
  const at = (lane: number, us: number, demand: number, after: number[] = []) => ({ lane, us, demand, after });
  it('launches that ask little of the device overlap fully; launches that ask all of it take their sum', () => {
    expect(simulateLanes([at(0, 10, 0.1), at(1, 10, 0.1)])).toBeCloseTo(10);
    expect(simulateLanes([at(0, 10, 1), at(1, 10, 1)])).toBeCloseTo(20);
    expect(simulateLanes([at(0, 10, 0.5), at(1, 10, 1)])).toBeCloseTo(15);
  });
  it('one lane is the launches in order; a wait holds a launch until its dependency ends', () => {
    expect(simulateLanes([at(0, 3, 0.1), at(0, 4, 0.1), at(0, 5, 0.1)])).toBeCloseTo(12);
    // lane 1's launch waits for lane 0's second launch
    expect(simulateLanes([at(0, 3, 0.1), at(0, 4, 0.1), at(1, 5, 0.1, [1])])).toBeCloseTo(12);
    expect(() => simulateLanes([at(0, 3, 0.1, [1]), at(1, 1, 0.1, [0])])).toThrow(/never ran/);
  });
});
