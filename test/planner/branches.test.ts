// Batch or branch (src/planner/branches.ts): a group of equal tenants planned as parallel branches (each
// tenant's chain of launches on a lane of its own) computes what each tenant's model computes, shares no launch
// between branched tenants and waits for no other branch; groups larger than the lanes stay batched.
import { describe, expect, it } from 'vitest';
import { checkLaunchPlan } from '../../codegen/validate.js';
import { buildLaunchPlan } from '../../codegen/build.js';
import { laneOrderViolation, launchDependencies } from '../../ir/contract/dependencies.js';
import { generateModel } from '../../models/index.js';
import { planFleet } from '../../src/planner/index.js';
import { BRANCH_MAX_LANES, BRANCH_TOLERANCE, branchKeyed, branchingPays, chooseBranches } from '../../src/planner/branches.js';
import { H100_FP32 } from '../../src/planner/cost.js';
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
  const branched = planFleet(inputs, { branching: 'auto' });

  it("'auto' gives each tenant of a group that fits the lanes launches of its own, on a lane of its own, with no wait on another branch", () => {
    expect(branched.cost.branches?.tenants).toEqual([0, 1, 2, 3, 4]);
    expect(batched.cost.branches).toBeUndefined();
    for (const l of branched.launches) expect(tenantsOf(l).length, l.info.label).toBe(1);
    expect(batched.launches.some((l) => tenantsOf(l).length > 1)).toBe(true);
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
    // the batched prediction is recorded; the laned tick is predicted by lane-sim
    expect(branched.cost.branches!.batchedUs).toBeGreaterThan(0);
    expect(branched.cost.criticalPathUs!).toBeGreaterThan(0);
  });

  it('loom inspect and the HTML report name the branched tenants and the batched prediction', () => {
    const text = formatTotals(branched);
    expect(text).toMatch(
      /branches {5}5 tenants as parallel branches, not batched with their equals \(predicted [\d.]+ [µu]s branched, [\d.]+ [µu]s batched\): mobilenet-1, mobilenet-2, mobilenet-3 and 2 more/,
    );
    expect(formatTotals(batched)).not.toMatch(/branches/);
    const html = renderReport(branched as never);
    expect(html).toContain('batched instead');
    expect(html).toContain('parallel branches: mobilenet-1, mobilenet-2, mobilenet-3 and 2 more');
  });

  it("'auto' batches where the cost model predicts branches slower, and says so", () => {
    // A contrived card: no fixed launch cost (every launch asks the whole device, so side-by-side launches
    // serialize) and bigger launches always more efficient (the correction falls with size): one batched launch
    // beats its branches.
    const fit = {
      overheadUs: 0,
      flopsPerS: 1e9,
      bytesPerS: 1e9,
      correction: [
        [-3, 100],
        [4, 1],
      ] as Array<[number, number]>,
    };
    const skewed = {
      ...H100_FP32,
      calibrated: { profile: { name: 'skewed', hash: 'b'.repeat(64), date: '2026-01-01T00:00:00Z' }, fits: { 'gemm.f32': fit, 'kernel.eltwise': fit } },
    };
    const plan = planFleet(inputs, { branching: 'auto', costModel: skewed });
    const b = plan.cost.branches!;
    expect(b.tenants).toEqual([]);
    expect(b.branchedUs!).toBeGreaterThan(BRANCH_TOLERANCE * b.batchedUs);
    expect(plan.launches.some((l) => tenantsOf(l).length > 1)).toBe(true);
    expect(formatTotals(plan)).toMatch(
      /branches {5}none: the cost model predicts batching faster \(predicted [\d.]+ [µum]?s branched, [\d.]+ [µum]?s batched\)/,
    );
    expect(renderReport(plan as never)).toContain('branched instead');
    // 'always' branches whatever the model predicts (one side of --branching measure)
    const always = planFleet(inputs, { branching: 'always', costModel: skewed });
    expect(always.cost.branches!.tenants).toEqual([0, 1, 2, 3, 4]);
    expect(always.cost.branches!.branchedUs!).toBeGreaterThan(BRANCH_TOLERANCE * always.cost.branches!.batchedUs);
    for (const l of always.launches) expect(tenantsOf(l).length, l.info.label).toBe(1);
    // the default roofline sees branches no slower on this fleet
    expect(branchingPays(branched.cost.branches!.branchedUs!, branched.cost.branches!.batchedUs)).toBe(true);
  });

  it('branched and batched plans compute what onnxruntime computes, tenant by tenant', async () => {
    for (const plan of [batched, branched]) {
      const errors = await checkFleet(plan, fleet);
      for (const [id, e] of Object.entries(errors)) expect(e, id).toBeLessThanOrEqual(1e-4);
    }
  });

  it('one lane leaves nothing to branch; an unknown mode is refused', () => {
    expect(planFleet(inputs).cost.branches).toBeUndefined(); // 'never' is the default
    expect(planFleet(inputs, { branching: 'auto', maxLanes: 1 }).cost.branches).toBeUndefined();
    expect(() => planFleet(inputs, { branching: 'sometimes' as never })).toThrow(/branching 'sometimes' is not supported/);
  });

  it('a group larger than the lanes stays batched: branched onto fewer lanes it would be batching done worse', () => {
    const two = planFleet(inputs, { branching: 'auto', maxLanes: 2 });
    // the MobileNet group (3) does not fit 2 lanes; the MLP pair does
    expect(two.cost.branches?.tenants).toEqual([3, 4]);
    expect(two.lanes).toBe(2);
  });
});

describe('chooseBranches', () => {
  it("makes a branched tenant's keys its own and leaves the others alone", () => {
    const step = (id: number, tenant: number): Step => ({ kind: 'gemm', id, tenant, key: 'k', deps: [] }) as unknown as Step;
    const steps = [step(0, 0), step(1, 1), step(2, 2)];
    const keyed = branchKeyed(steps, new Set([1, 2]));
    expect(keyed[0]).toBe(steps[0]);
    expect(new Set(keyed.map((s) => s.key)).size).toBe(3);
    expect(keyed.map((s) => s.id)).toEqual([0, 1, 2]);
  });

  it('branches groups that fit, opens a lane per chain up to BRANCH_MAX_LANES unless the lanes were given', () => {
    // groups: {0,1,2} (3), {3} (1), {4..23} (20)
    const groupOf = [0, 0, 0, 3, ...Array.from({ length: 20 }, () => 4)];
    const c = chooseBranches(groupOf, 8, false, 'auto')!;
    expect([...c.branched]).toEqual([0, 1, 2]);
    expect(c.lanes).toBe(8); // 3 branches + 2 batched chains = 5 < 8
    const wide = chooseBranches([...Array.from({ length: 12 }, (_, i) => Math.floor(i / 3) * 3)], 8, false, 'auto')!;
    expect(wide.branched.size).toBe(12);
    expect(wide.lanes).toBe(12);
    expect(chooseBranches([...Array.from({ length: 12 }, (_, i) => Math.floor(i / 3) * 3)], 8, true, 'auto')!.lanes).toBe(8);
    expect(
      chooseBranches(
        Array.from({ length: 40 }, () => 0),
        8,
        false,
        'auto',
      ),
    ).toBeNull(); // 40 > 16
    expect(chooseBranches([0, 1, 2], 8, false, 'auto')).toBeNull(); // nothing shared
    expect(chooseBranches([0, 0], 8, false, 'never')).toBeNull();
    expect(chooseBranches([0, 0], 1, true, 'auto')).toBeNull();
    expect(BRANCH_MAX_LANES).toBe(16);
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
