// Batch or branch. Tenants with equal steps share launches (one launch per stage serves the whole group); on
// lanes a group may instead run as parallel branches, each tenant's chain on a lane of its own, as each
// tenant's own CUDA stream runs it. Batching does less work (fewer, fuller launches) and is the only way to run a
// group larger than the lanes; branching shortens the tick where a group's batched chain is its critical path:
// a batched launch of a few latency-bound tenants takes ~20% longer than one tenant's, and a batched chain
// waits on the other lanes' launches where branches wait on nothing.
//
// Measured on an H100 (2026-12-06, device ticks; space-only = each tenant's plan as its own graph on its own
// stream): the zoo mix (3 MobileNetV3, 3 SqueezeNet, 3 LSTM, 3 MLP) batched 583 µs, branched 482 µs on 8
// lanes and 463 µs on 16, space-only 507 µs; the demo fleet (16 tenants) 1,616 → 1,551 µs (space-only 1,637);
// three MobileNets 443 → 422 µs (438); three BERT exports 153 → 125 µs (139). Until stop 19 the cost model
// could not see it (its batched and branched ticks differed by 2-7%: a GEMM epilogue's fixed cost counted as
// device demand, so the lane simulation serialized small launches), and 'auto' branched every group that fit
// the lanes. Since, the model predicts branched below batched on every fleet measured (zoo mix 314 vs 368 µs
// with the H100 profile, measured 328 vs 378; three MobileNets 310 vs 337, measured 288 vs 295; the roofline
// agrees in direction), so 'auto' branches where the model predicts the branched tick within BRANCH_TOLERANCE
// of the batched one (branchingPays) and batches where it does not.
import type { Precision } from '../../ir/contract/plan.js';
import { fail } from '../../ir/errors.js';
import { type CostModel, floorUs } from './cost.js';
import { assignLanes, draftDeps, simulateDraftLanes } from './lanes.js';
import { type DraftLaunch, draftPredictedUs, draftSteps } from './launches.js';
import type { Step } from './steps.js';

// auto: branch where the cost model predicts it pays (branchingPays); never: every group batched; always: every
// group that fits the lanes branched, whatever the model predicts (one side of `loom compile --branching
// measure`, src/fleet/branch-measure.ts, which times both on the device).
export const BRANCHINGS = ['auto', 'never', 'always'] as const;
export type Branching = (typeof BRANCHINGS)[number];

// A planner branching value (planFleet's `branching`).
export function branchingFrom(v: string): Branching {
  if (!(BRANCHINGS as readonly string[]).includes(v)) fail('USAGE', `--branching: expected ${BRANCHINGS.join(', ')}, got '${v}'`);
  return v as Branching;
}

// Lanes a branched plan may open when `--lanes` is not given: one per chain (a branched tenant, or a batched
// group), up to this. 16 lanes took the zoo mix's 12 branches from 482 to 463 µs against 8 (H100).
export const BRANCH_MAX_LANES = 16;

// The steps with a branched tenant's keys made its own: they share no launch with another tenant's.
export function branchKeyed(steps: readonly Step[], branched: ReadonlySet<number>): Step[] {
  if (branched.size === 0) return [...steps];
  return steps.map((s) => (branched.has(s.tenant) ? { ...s, key: `${s.key}|branch ${s.tenant}` } : s));
}

// Branches are taken unless the model predicts them more than 5% slower than batching: on the device they
// won on every fleet measured, by 2-13% where the model saw a tie.
export const BRANCH_TOLERANCE = 1.05;

export function branchingPays(branchedUs: number, batchedUs: number): boolean {
  return branchedUs <= BRANCH_TOLERANCE * batchedUs;
}

export interface BranchChoice {
  readonly branched: ReadonlySet<number>; // tenants whose chains run as branches of their own
  readonly lanes: number; // lanes for the branched plan
}

// Which tenants to branch: every group (groupOf: per tenant, its group in the batched plan, tenantGroups) of 2 to
// `maxLanes` tenants. `lanesGiven`: the caller fixed the lanes (`--lanes`); else the plan may open one per chain,
// up to BRANCH_MAX_LANES. Null: nothing to branch.
export function chooseBranches(groupOf: readonly number[], maxLanes: number, lanesGiven: boolean, policy: Branching): BranchChoice | null {
  if (policy === 'never' || maxLanes < 2) return null;
  const members = new Map<number, number[]>();
  groupOf.forEach((g, t) => {
    const list = members.get(g);
    if (list === undefined) members.set(g, [t]);
    else list.push(t);
  });
  const cap = lanesGiven ? maxLanes : Math.max(maxLanes, BRANCH_MAX_LANES);
  // a group larger than the lanes stays batched: branched onto fewer lanes than tenants it is batching done worse
  const groups = [...members.values()];
  const branched = groups.filter((m) => m.length > 1 && m.length <= cap).flat();
  if (branched.length === 0) return null;
  const chains = branched.length + groups.filter((m) => m.length === 1 || m.length > cap).length;
  return { branched: new Set(branched), lanes: lanesGiven ? maxLanes : Math.min(cap, Math.max(maxLanes, chains)) };
}

// The predicted tick of drafts on up to maxLanes lanes (chains kept on lanes of their own, the lanes run by
// lane-sim.ts), never below the work's floor; on one lane, the launches in order.
export function estimateTickUs(drafts: readonly DraftLaunch[], cost: CostModel, precision: Precision, maxLanes: number): number {
  const predicted = drafts.map((d) => draftPredictedUs(d, cost, precision));
  let flops = 0;
  let bytes = 0;
  for (const d of drafts)
    for (const s of draftSteps(d)) {
      flops += s.flops;
      bytes += s.bytes;
    }
  const floor = floorUs(cost, flops, bytes);
  if (maxLanes < 2)
    return Math.max(
      floor,
      predicted.reduce((a, b) => a + b, 0),
    );
  const chainOf = drafts.map((d) => [...new Set(draftSteps(d).map((s) => s.tenant))].join(','));
  const a = assignLanes(draftDeps(drafts), predicted, maxLanes, chainOf);
  return Math.max(floor, simulateDraftLanes(drafts, a.laneOf, a.after, cost, precision));
}
