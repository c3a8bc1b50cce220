// The tick as a DAG of parallel lanes: the CUDA backend runs each lane on its own stream, forked from the
// tick's stream and joined back inside the captured graph. Launches that do not depend on each other (a mixed
// fleet's MLP stage and its LSTM stage) then overlap on the device, as each tenant's own stream would, while
// launches of equal shape stay batched. Dependencies come from ir/contract/dependencies.ts.
import type { Launch } from '../../ir/contract/launch.js';
import { launchDependencies } from '../../ir/contract/dependencies.js';
import type { Precision } from '../../ir/contract/plan.js';
import { type CostModel, launchDemand, launchUs } from './cost.js';
import { simulateLanes } from './lane-sim.js';
import { type DraftLaunch, draftPredictedUs, draftSteps, draftWork } from './launches.js';

export interface LaneAssignment {
  readonly lanes: number; // lanes used (1: the plain single-stream tick)
  readonly laneOf: readonly number[]; // per launch
  readonly after: ReadonlyArray<readonly number[]>; // per launch: launches on other lanes it waits for (at most one per lane)
  readonly criticalPathUs: number; // the list schedule's length under the cost model (launches on a lane run in order)
}

export const DEFAULT_MAX_LANES = 8;
export const MAX_LANES = 32;

// List scheduling over the dependency DAG in launch order: each launch starts when its dependencies have
// finished (cost-model times) and goes to the lane that lets it start earliest, preferring the lane whose last
// launch it follows (no wait needed) and opening a new lane only while fewer than maxLanes are open.
//
// With `chainOf` (per launch: its chain, e.g. the set of tenants it serves), a lane belongs to the chain of its
// last launch: a launch goes first to a lane of its own chain that is free when it is ready, then to a new
// lane, and only then to another chain's lane. The cost model's times are guesses (2x off per launch on the
// H100, 2026-12-06), and by them alone a fleet's MobileNet and SqueezeNet chains shared three lanes, each
// waiting behind the other's launches; each tenant's own stream never does that.
export function assignLanes(
  deps: ReadonlyArray<readonly number[]>,
  predictedUs: readonly number[],
  maxLanes = DEFAULT_MAX_LANES,
  chainOf?: readonly string[],
): LaneAssignment {
  if (!Number.isInteger(maxLanes) || maxLanes < 1 || maxLanes > MAX_LANES) throw new Error(`assignLanes: maxLanes ${maxLanes} is outside 1..${MAX_LANES}`);
  const n = deps.length;
  const laneOf = new Array<number>(n).fill(0);
  const finish = new Array<number>(n).fill(0);
  const laneFree: number[] = [];
  const laneTail: number[] = []; // last launch on each lane
  for (let i = 0; i < n; i++) {
    const ready = deps[i]!.reduce((t, d) => Math.max(t, finish[d]!), 0);
    const chain = chainOf?.[i];
    // the earliest-starting lane among those `ok` accepts; at equal start a lane whose tail it follows (no
    // cross-lane wait), then the lower lane
    const pick = (ok: (l: number) => boolean): { lane: number; start: number } => {
      let best = -1;
      let bestStart = Number.POSITIVE_INFINITY;
      let bestFollows = false;
      for (let l = 0; l < laneFree.length; l++) {
        if (!ok(l)) continue;
        const start = Math.max(ready, laneFree[l]!);
        const follows = deps[i]!.includes(laneTail[l]!);
        if (start < bestStart - 1e-9 || (Math.abs(start - bestStart) <= 1e-9 && follows && !bestFollows)) {
          best = l;
          bestStart = start;
          bestFollows = follows;
        }
      }
      return { lane: best, start: bestStart };
    };
    let { lane: best, start: bestStart } = pick(() => true);
    if (chain !== undefined) {
      const own = pick((l) => chainOf![laneTail[l]!] === chain);
      // its own chain's lane when free at once; else a new lane; with none left, its own chain's at an equal start
      const full = laneFree.length >= maxLanes;
      if (own.lane >= 0 && (own.start <= ready + 1e-9 || (full && own.start <= bestStart + 1e-9))) ({ lane: best, start: bestStart } = own);
      else if (!full) best = -1; // a new lane for it, below
    }
    if (laneFree.length < maxLanes && (best < 0 || bestStart > ready + 1e-9)) {
      best = laneFree.length;
      laneFree.push(0);
      laneTail.push(-1);
      bestStart = ready;
    }
    laneOf[i] = best;
    finish[i] = bestStart + Math.max(0, predictedUs[i] ?? 0);
    laneFree[best] = finish[i]!;
    laneTail[best] = i;
  }
  const after = deps.map((ds, i) => {
    const latest = new Map<number, number>(); // lane → its latest dependency (waiting for it covers the earlier ones)
    for (const d of ds) {
      const l = laneOf[d]!;
      if (l === laneOf[i]) continue;
      latest.set(l, Math.max(latest.get(l) ?? -1, d));
    }
    return [...latest.values()].sort((x, y) => x - y);
  });
  const lanes = n === 0 ? 1 : Math.max(...laneOf) + 1;
  return { lanes, laneOf, after, criticalPathUs: finish.reduce((a, b) => Math.max(a, b), 0) };
}

// The launches with their lanes and waits set (unchanged when one lane is used: single-lane plans carry
// neither field).
// chains: keep each tenant set's launches on lanes of their own (assignLanes chainOf); false: by start times alone.
export function withLanes(launches: readonly Launch[], maxLanes = DEFAULT_MAX_LANES, chains = true): { launches: Launch[]; lanes: LaneAssignment } {
  const a = assignLanes(
    maxLanes > 1 ? launchDependencies(launches) : launches.map(() => []),
    launches.map((l) => l.info.predictedUs),
    maxLanes,
    chains ? launches.map((l) => l.info.tenants.join(',')) : undefined,
  );
  if (a.lanes === 1) return { launches: [...launches], lanes: a };
  return {
    launches: launches.map((l, i): Launch => ({ ...l, lane: a.laneOf[i]!, ...(a.after[i]!.length > 0 ? { after: a.after[i]! } : {}) })),
    lanes: a,
  };
}

// The lanes on the tick's critical path: those whose launches' predicted time adds up to at least
// CRITICAL_SHARE of the busiest lane's. The CUDA backend runs them at the device's highest stream priority, so
// when the lanes contend for SMs the longest chains' blocks are dispatched first and the shorter lanes fill in
// around them (each tenant's own stream, the space-only setup, has no such order). None when every lane is about
// as busy (nothing stands out) or on one lane.
export const CRITICAL_SHARE = 0.8;

export function criticalLanes(launches: readonly Launch[], lanes: number): number[] {
  if (lanes < 2) return [];
  const busy = new Array<number>(lanes).fill(0);
  for (const l of launches) busy[l.lane ?? 0] = busy[l.lane ?? 0]! + l.info.predictedUs;
  const top = Math.max(...busy);
  if (top <= 0) return [];
  const critical = busy.flatMap((b, lane) => (b >= CRITICAL_SHARE * top ? [lane] : []));
  return critical.length * 2 <= lanes ? critical : [];
}

// Tenants joined by shared launches, as union-find over each draft's tenants: per tenant, the lowest tenant
// index of its group. Groups share no launch, so on lanes they need no wait between them unless their
// activations share bytes (planActivationsByRegion keeps them apart).
export function tenantGroups(drafts: readonly DraftLaunch[], tenants: number): number[] {
  const parent = Array.from({ length: tenants }, (_, i) => i);
  const root = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]!]!;
      x = parent[x]!;
    }
    return x;
  };
  for (const d of drafts) {
    let first = -1;
    for (const s of draftSteps(d)) {
      if (first < 0) first = root(s.tenant);
      else {
        const r = root(s.tenant);
        if (r !== first) parent[Math.max(r, first)] = Math.min(r, first);
        first = Math.min(r, first);
      }
    }
  }
  return parent.map((_, i) => root(i));
}

// Whether a fleet's tick should be planned on lanes at all: the lanes' critical path, estimated from the
// steps' data dependencies (the memory plan can only add waits), must be at most LANES_MIN_GAIN of the launches
// run in order. Overlap is not free on the device: launches that each fill the GPU gain nothing side by side,
// and measured on an H100 (2026-12-06, bench/lanes-ab.ts) a 64-tenant fleet of encoders, ResNet-18s and MLPs
// predicted at 0.83 of its serial sum ran 8% slower on 4 lanes, while the demo fleet predicted at 0.49 ran
// 1.15x faster on 8. Below the bar the plan keeps one stream and its grouped GEMMs.
export const LANES_MIN_GAIN = 0.75;

export function lanesPay(drafts: readonly DraftLaunch[], cost: CostModel, precision: Precision, maxLanes: number): boolean {
  const predicted = drafts.map((d) => draftPredictedUs(d, cost, precision));
  const serial = predicted.reduce((a, b) => a + b, 0);
  return serial > 0 && assignLanes(draftDeps(drafts), predicted, maxLanes).criticalPathUs <= LANES_MIN_GAIN * serial;
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

// Drafts laid out on lanes (per draft: its lane and the drafts on other lanes it waits for) run as the device
// would run them (lane-sim.ts), each draft taking its predicted time and its demand of the device.
export function simulateDraftLanes(
  drafts: readonly DraftLaunch[],
  laneOf: readonly number[],
  after: ReadonlyArray<readonly number[]>,
  cost: CostModel,
  precision: Precision,
): number {
  return simulateLanes(
    drafts.map((d, i) => {
      const w = draftWork(d, precision);
      return { lane: laneOf[i]!, after: after[i]!, us: launchUs(cost, w), demand: launchDemand(cost, w) };
    }),
  );
}
