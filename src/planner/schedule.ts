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
  const asap = new Array<number>(n).fill(0);
  const succ: number[][] = Array.from({ length: n }, () => []);
  for (const s of steps) {
    for (const d of s.deps) {
      asap[s.id] = Math.max(asap[s.id]!, asap[d]! + 1);
      succ[d]!.push(s.id);
    }
  }
  const length = n === 0 ? 0 : Math.max(...asap) + 1;
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
