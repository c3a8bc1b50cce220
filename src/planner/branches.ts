// Batch or branch. Tenants with equal steps share launches (one launch per stage serves the whole group);
// on lanes a group may instead run as parallel branches, each tenant's chain on a lane of its own, the way each
// tenant's own CUDA stream runs it. Batching does less work (fewer launches, each fuller); branching shortens
// the tick where the group's batched chain is its critical path and the device has room beside it (a few
// copies of a deep, latency-bound model: three MobileNets batched are one chain of ~80 launches, each a little
// slower than one tenant's). The planner chooses per group by the cost model: a group is branched when that
// brings the predicted tick — the lanes' critical path, never below the work's floor at the device's rates —
// to at most BRANCH_MIN_GAIN of what it was.
import type { Precision } from '../../ir/contract/plan.js';
import { type CostModel, floorUs, launchDemand, launchUs } from './cost.js';
import { simulateLanes } from './lane-sim.js';
import { assignLanes } from './lanes.js';
import { type DraftLaunch, buildLaunches, draftPredictedUs, draftSteps, draftWork, stepWork } from './launches.js';
import { scheduleSteps } from './schedule.js';
import type { Step } from './steps.js';

export const BRANCHINGS = ['auto', 'never', 'all'] as const;
export type Branching = (typeof BRANCHINGS)[number];

// A branch must take at least this much off the predicted tick: overlap on the device is not free (two
// bandwidth-bound launches side by side overlap ~48% on an H100, compute-bound ones ~9%: the calibrated
// profile's pair measurements), and the model's per-launch times are guesses.
export const BRANCH_MIN_GAIN = 0.9;
// Groups tried per fleet, the ones with the longest predicted chains first: each try plans the stages again.
export const MAX_BRANCH_TRIES = 16;

// The steps with a branched tenant's keys made its own: they share no launch with another tenant's.
export function branchKeyed(steps: readonly Step[], branched: ReadonlySet<number>): Step[] {
  if (branched.size === 0) return [...steps];
  return steps.map((s) => (branched.has(s.tenant) ? { ...s, key: `${s.key}|branch ${s.tenant}` } : s));
}

// Per draft: the earlier drafts it reads from (the steps' data dependencies; the memory plan can only add waits).
export function draftDeps(drafts: readonly DraftLaunch[]): number[][] {
  const launchOf = new Map<number, number>(); // step id → draft index
  drafts.forEach((d, i) => {
    for (const s of draftSteps(d)) launchOf.set(s.id, i);
  });
  return drafts.map((d, i) => {
    const ds = new Set<number>();
    for (const s of draftSteps(d)) for (const x of s.deps) ds.add(launchOf.get(x)!);
    ds.delete(i);
    return [...ds].filter((x) => x < i).sort((a, b) => a - b);
  });
}

export interface LaneEstimate {
  readonly serialUs: number; // the launches in order
  readonly criticalPathUs: number; // the lanes' list schedule (chains kept on lanes of their own) run by lane-sim.ts
  readonly floorUs: number; // the whole work at the device's rates
  readonly tickUs: number; // max(critical path, floor)
}

export function estimateLanes(drafts: readonly DraftLaunch[], cost: CostModel, precision: Precision, maxLanes: number): LaneEstimate {
  const predicted = drafts.map((d) => draftPredictedUs(d, cost, precision));
  const serialUs = predicted.reduce((a, b) => a + b, 0);
  const chainOf = drafts.map((d) => [...new Set(draftSteps(d).map((s) => s.tenant))].join(','));
  let criticalPathUs = serialUs;
  if (maxLanes > 1) {
    const a = assignLanes(draftDeps(drafts), predicted, maxLanes, chainOf);
    criticalPathUs = simulateLanes(
      drafts.map((d, i) => ({ lane: a.laneOf[i]!, after: a.after[i]!, us: predicted[i]!, demand: launchDemand(cost, draftWork(d, precision)) })),
    );
  }
  let flops = 0;
  let bytes = 0;
  for (const d of drafts)
    for (const s of draftSteps(d)) {
      flops += s.flops;
      bytes += s.bytes;
    }
  const floor = floorUs(cost, flops, bytes);
  return { serialUs, criticalPathUs, floorUs: floor, tickUs: Math.max(criticalPathUs, floor) };
}

// Drafts of the steps with `branched` tenants on their own keys, planned for lanes.
function draftsWith(steps: readonly Step[], branched: ReadonlySet<number>, cost: CostModel, precision: Precision): DraftLaunch[] {
  const keyed = branchKeyed(steps, branched);
  const { stageOf, stages } = scheduleSteps(keyed);
  return buildLaunches(keyed, stageOf, stages, cost, precision, true);
}

export interface BranchChoice {
  readonly branched: ReadonlySet<number>; // tenants whose chains run as branches of their own
  readonly estimate: LaneEstimate; // of the chosen drafts
  readonly batchedUs: number; // the estimate with every group batched (on lanes where they pay, else in order)
}

// Which tenants to branch. `groupOf`: per tenant, its group in the batched plan (tenantGroups); `batchedUs`:
// the batched plan's predicted tick as it will run (its critical path on lanes, or its launches in order).
export function chooseBranches(
  steps: readonly Step[],
  groupOf: readonly number[],
  batchedUs: number,
  cost: CostModel,
  precision: Precision,
  maxLanes: number,
  policy: Branching,
): BranchChoice | null {
  if (policy === 'never' || maxLanes < 2) return null;
  const members = new Map<number, number[]>();
  groupOf.forEach((g, t) => {
    const list = members.get(g);
    if (list === undefined) members.set(g, [t]);
    else list.push(t);
  });
  // only groups that fit the lanes: a group branched onto fewer lanes than tenants is batching done worse
  const candidates = [...members.values()].filter((m) => m.length > 1 && m.length <= maxLanes);
  if (candidates.length === 0) return null;
  if (policy === 'all') {
    const branched = new Set(candidates.flat());
    const estimate = estimateLanes(draftsWith(steps, branched, cost, precision), cost, precision, maxLanes);
    return { branched, estimate, batchedUs };
  }
  // longest chain first: the group's first tenant's steps, each priced as a launch of its own
  const chainUs = new Map<number[], number>();
  const firstOf = new Map<number, number[]>();
  for (const m of candidates) {
    chainUs.set(m, 0);
    firstOf.set(m[0]!, m);
  }
  for (const s of steps) {
    const m = firstOf.get(s.tenant);
    if (m !== undefined) chainUs.set(m, chainUs.get(m)! + launchUs(cost, stepWork(s, precision)));
  }
  const order = [...candidates].sort((a, b) => chainUs.get(b)! - chainUs.get(a)!).slice(0, MAX_BRANCH_TRIES);
  let branched = new Set<number>();
  let best: LaneEstimate | null = null;
  let bestUs = batchedUs;
  for (const m of order) {
    const trial = new Set([...branched, ...m]);
    const e = estimateLanes(draftsWith(steps, trial, cost, precision), cost, precision, maxLanes);
    if (e.tickUs <= BRANCH_MIN_GAIN * bestUs) {
      branched = trial;
      best = e;
      bestUs = e.tickUs;
    }
  }
  return best === null ? null : { branched, estimate: best, batchedUs };
}
