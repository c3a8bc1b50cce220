// Space-time alignment: assigns every step of every tenant a stage so that steps with equal signatures
// (GEMM shape, kernel program) land in the same stage and share a launch. Each step has a window
// [ASAP, ALAP] within the fleet's critical path length; a step that is ready may wait (up to its ALAP)
// while a step of the same signature in another tenant can still arrive in time. The schedule is never
// longer than the longest tenant's dependency chain.
import type { Step } from './steps.js';

export interface Schedule {
  readonly stageOf: readonly number[]; // by step id
  readonly stages: number;
}

export function scheduleSteps(steps: readonly Step[]): Schedule {
  const n = steps.length;
  // the incremental form relies on ids being positions and deps pointing backwards (how lowering emits steps)
  if (!steps.every((x, i) => x.id === i && x.deps.every((d) => d < i))) return scheduleStepsByScan(steps);
  const asap = new Array<number>(n).fill(0);
  const succ: number[][] = Array.from({ length: n }, () => []);
  let length = 0;
  for (const x of steps) {
    for (const d of x.deps) {
      asap[x.id] = Math.max(asap[x.id]!, asap[d]! + 1);
      succ[d]!.push(x.id);
    }
    length = Math.max(length, asap[x.id]! + 1);
  }
  const alap = new Array<number>(n);
  for (let i = n - 1; i >= 0; i--) {
    let t = 0;
    for (const x of succ[i]!) t = Math.max(t, length - alap[x]!);
    alap[i] = length - 1 - t;
  }

  // In stage s an unscheduled step's earliest stage is s + h, h its longest chain of unscheduled ancestors
  // (0: ready, every dep scheduled). A ready key waits while another step of its key has s + h <= its ALAP, so h
  // is only needed up to the largest slack: a layered sweep from the ready steps, bounded by it, per stage.
  const stage = new Array<number>(n).fill(-1);
  const unscheduledDeps = new Int32Array(n); // dep entries not yet scheduled
  let ready: number[] = [];
  for (const x of steps) {
    unscheduledDeps[x.id] = x.deps.length;
    if (x.deps.length === 0) ready.push(x.id);
  }
  const seen = new Int32Array(n).fill(-1); // the stage whose sweep last touched a step
  const counted = new Int32Array(n); // dep entries the sweep has given an h
  let remaining = n;
  for (let s = 0; remaining > 0; s++) {
    const byKey = new Map<string, number[]>();
    for (const id of ready) {
      const key = steps[id]!.key;
      let list = byKey.get(key);
      if (list === undefined) byKey.set(key, (list = []));
      list.push(id);
    }
    const minAlapOf = new Map<string, number>();
    let horizon = 0;
    for (const [key, members] of byKey) {
      let m = Number.POSITIVE_INFINITY;
      for (const id of members) m = Math.min(m, alap[id]!);
      minAlapOf.set(key, m);
      horizon = Math.max(horizon, m - s);
    }
    const laterH = new Map<string, number>(); // per key: the least h of a not-yet-ready step, up to horizon
    let frontier = ready;
    for (let h = 1; h <= horizon && frontier.length > 0; h++) {
      const next: number[] = [];
      for (const u of frontier) {
        for (const v of succ[u]!) {
          if (seen[v] !== s) {
            seen[v] = s;
            counted[v] = 0;
          }
          if (++counted[v]! === unscheduledDeps[v]!) {
            next.push(v);
            const key = steps[v]!.key;
            if (!laterH.has(key)) laterH.set(key, h);
          }
        }
      }
      frontier = next;
    }
    const scheduled: number[] = [];
    for (const key of [...byKey.keys()].sort()) {
      const members = byKey.get(key)!;
      const minAlap = minAlapOf.get(key)!;
      const h = laterH.get(key);
      const mustRun = minAlap <= s;
      if (!mustRun && h !== undefined && s + h <= minAlap) continue; // wait for the other tenants' step
      for (const id of members) {
        stage[id] = s;
        scheduled.push(id);
        remaining--;
      }
    }
    if (scheduled.length === 0) continue;
    const next = ready.filter((id) => stage[id] !== s);
    for (const id of scheduled) for (const v of succ[id]!) if (--unscheduledDeps[v]! === 0) next.push(v);
    ready = next.sort((a, b) => a - b);
  }
  // renumber without empty stages
  const used = [...new Set(stage)].sort((a, b) => a - b);
  const dense = new Map(used.map((s, i) => [s, i]));
  return { stageOf: stage.map((s) => dense.get(s)!), stages: used.length };
}

// The rule as first written: every stage rescans every step (O(stages x steps), quadratic on a long chain).
// scheduleSteps gives the same schedule in near-linear time; tests compare the two on random fleets.
export function scheduleStepsByScan(steps: readonly Step[]): Schedule {
  const n = steps.length;
  const asap = new Array<number>(n).fill(0);
  const succ: number[][] = Array.from({ length: n }, () => []);
  for (const s of steps) {
    for (const d of s.deps) {
      asap[s.id] = Math.max(asap[s.id]!, asap[d]! + 1);
      succ[d]!.push(s.id);
    }
  }
  const length = n === 0 ? 0 : asap.reduce((a, b) => Math.max(a, b), 0) + 1;
  const tail = new Array<number>(n).fill(0);
  for (let i = n - 1; i >= 0; i--) for (const x of succ[i]!) tail[i] = Math.max(tail[i]!, tail[x]! + 1);
  const alap = tail.map((t) => length - 1 - t);

  const stage = new Array<number>(n).fill(-1);
  const est = new Array<number>(n).fill(0);
  let remaining = n;
  for (let s = 0; remaining > 0; s++) {
    // earliest stage each unscheduled step could run at, given what is scheduled so far
    const ready: Step[] = [];
    for (const x of steps) {
      if (stage[x.id]! >= 0) continue;
      let e = s;
      let isReady = true;
      for (const d of x.deps) {
        if (stage[d]! >= 0 && stage[d]! < s) continue;
        isReady = false;
        e = Math.max(e, (stage[d]! >= 0 ? stage[d]! : est[d]!) + 1);
      }
      est[x.id] = e;
      if (isReady) ready.push(x);
    }
    const laterEst = new Map<string, number>(); // per key: the earliest a not-yet-ready step could join
    const readySet = new Set(ready.map((x) => x.id));
    for (const x of steps) {
      if (stage[x.id]! >= 0 || readySet.has(x.id)) continue;
      const cur = laterEst.get(x.key);
      if (cur === undefined || est[x.id]! < cur) laterEst.set(x.key, est[x.id]!);
    }
    const byKey = new Map<string, Step[]>();
    for (const x of ready) {
      let list = byKey.get(x.key);
      if (list === undefined) byKey.set(x.key, (list = []));
      list.push(x);
    }
    for (const key of [...byKey.keys()].sort()) {
      const members = byKey.get(key)!;
      const minAlap = Math.min(...members.map((x) => alap[x.id]!));
      const join = laterEst.get(key);
      const mustRun = minAlap <= s;
      if (!mustRun && join !== undefined && join <= minAlap) continue; // wait for the other tenants' step
      for (const x of members) {
        stage[x.id] = s;
        remaining--;
      }
    }
  }
  // renumber without empty stages
  const used = [...new Set(stage)].sort((a, b) => a - b);
  const dense = new Map(used.map((s, i) => [s, i]));
  return { stageOf: stage.map((s) => dense.get(s)!), stages: used.length };
}

// No alignment: one stage per step, in lowering order (tenant after tenant, each tenant's steps in dependency
// order), so every launch holds exactly one step of one tenant.
export function scheduleSequential(steps: readonly Step[]): Schedule {
  const stageOf = new Array<number>(steps.length).fill(-1);
  steps.forEach((s, i) => {
    stageOf[s.id] = i;
  });
  for (const s of steps) {
    for (const d of s.deps)
      if (!(stageOf[d]! < stageOf[s.id]!)) throw new Error(`scheduleSequential: step ${s.id} depends on step ${d}, which is lowered after it`);
  }
  return { stageOf, stages: steps.length };
}
