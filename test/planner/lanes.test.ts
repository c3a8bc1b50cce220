// The tick as a DAG: dependencies from bytes (read after write, write after read, write after write; weights
// never), the lane assignment (independent chains on separate lanes, every dependency covered by lane order or
// a wait), and the validator refusing a plan whose lanes would race.
import { describe, expect, it } from 'vitest';
import { checkLaunchPlan } from '../../codegen/validate.js';
import { buildLaunchPlan } from '../../codegen/build.js';
import { type ByteAccess, accessDependencies, laneOrderViolation, launchDependencies } from '../../ir/contract/dependencies.js';
import type { Launch } from '../../ir/contract/launch.js';
import type { LaunchPlan } from '../../ir/contract/launch-plan.js';
import { planFleet } from '../../src/planner/index.js';
import { assignLanes, criticalLanes } from '../../src/planner/lanes.js';
import { mixedFleet, tenantFromBytes } from './fleet-helpers.js';
import { demoFleet } from '../../src/fleet/demo.js';
import { generateModel } from '../../models/index.js';

const act = (begin: number, end: number, write = false): ByteAccess => ({ arena: 'act', begin, end, write });

describe('launch dependencies from bytes', () => {
  it('read after write, write after read, write after write; disjoint bytes and weights do not depend', () => {
    const deps = accessDependencies([
      [act(0, 100, true)], // 0 writes A
      [act(200, 300, true)], // 1 writes B (disjoint)
      [act(50, 60), act(400, 500, true)], // 2 reads part of A (RAW on 0), writes C
      [act(0, 10, true)], // 3 overwrites A's head: WAW on 0, and WAR on 2? no: 2 read [50,60) only
      [act(55, 56, true)], // 4 overwrites what 2 read: WAR on 2, WAW on 0
      [{ arena: 'weights', begin: 0, end: 1000, write: false }, act(200, 201)], // 5 reads B (RAW on 1); weights never
      [{ arena: 'io', begin: 0, end: 100, write: false }], // 6 reads an input slot nobody writes
    ]);
    expect(deps).toEqual([[], [], [0], [0], [0, 2], [1], []]);
  });

  it('a range straddling several earlier writes depends on each of them', () => {
    const deps = accessDependencies([[act(0, 10, true)], [act(10, 20, true)], [act(20, 30, true)], [act(5, 25)]]);
    expect(deps[3]).toEqual([0, 1, 2]);
  });
});

describe('lane assignment', () => {
  it('two independent chains take two lanes; a join waits for the other lane', () => {
    // 0 → 1 → 4, 2 → 3 → 4
    const deps = [[], [0], [], [2], [1, 3]];
    const a = assignLanes(deps, [10, 10, 10, 10, 10]);
    expect(a.lanes).toBe(2);
    expect(a.laneOf[0]).toBe(a.laneOf[1]);
    expect(a.laneOf[2]).toBe(a.laneOf[3]);
    expect(a.laneOf[0]).not.toBe(a.laneOf[2]);
    expect(a.criticalPathUs).toBe(30);
    const other = a.laneOf[4] === a.laneOf[1] ? 3 : 1;
    expect(a.after[4]).toEqual([other]);
  });

  it('maxLanes 1 is the plain order; maxLanes bounds the lanes', () => {
    const deps = [[], [], [], [], []];
    expect(assignLanes(deps, [1, 1, 1, 1, 1], 1)).toMatchObject({ lanes: 1, laneOf: [0, 0, 0, 0, 0], criticalPathUs: 5 });
    expect(assignLanes(deps, [1, 1, 1, 1, 1], 3).lanes).toBe(3);
    expect(() => assignLanes(deps, [1, 1, 1, 1, 1], 0)).toThrow(/maxLanes/);
  });

  it('waits name at most one launch per other lane: the latest dependency there', () => {
    const deps = [[], [0], [], [0, 1, 2]];
    const a = assignLanes(deps, [5, 5, 1, 1]);
    const byLane = new Map<number, number[]>();
    for (const w of a.after[3]!) byLane.set(a.laneOf[w]!, [...(byLane.get(a.laneOf[w]!) ?? []), w]);
    for (const ws of byLane.values()) expect(ws.length).toBe(1);
    if (a.laneOf[1] !== a.laneOf[3]) expect(a.after[3]).toContain(1);
  });
});

describe('a mixed fleet planned as a DAG', () => {
  const plan = planFleet(mixedFleet({ moreZoo: true }).map((t) => t.input));
  const built = buildLaunchPlan(plan).plan;

  it('uses several lanes, covers every dependency, and predicts a shorter tick than the serial sum', () => {
    expect(plan.lanes ?? 1).toBeGreaterThan(1);
    expect(laneOrderViolation(plan.launches, launchDependencies(plan.launches))).toBeNull();
    expect(plan.cost.criticalPathUs!).toBeLessThan(plan.cost.predictedTickUs);
    expect(() => checkLaunchPlan(built)).not.toThrow();
  });

  it('maxLanes 1 plans one stream, no lane fields', () => {
    const one = planFleet(
      mixedFleet({ moreZoo: true }).map((t) => t.input),
      { maxLanes: 1 },
    );
    expect(one.lanes).toBeUndefined();
    expect(one.launches.every((l) => l.lane === undefined && l.after === undefined)).toBe(true);
    expect(() =>
      planFleet(
        mixedFleet().map((t) => t.input),
        { maxLanes: 99 },
      ),
    ).toThrow(/maxLanes 99/);
  });

  it('the validator refuses lanes that would race', () => {
    const deps = launchDependencies(built.launches);
    const i = built.launches.findIndex((l, k) => (l.after?.length ?? 0) > 0 && deps[k]!.length > 0);
    expect(i).toBeGreaterThan(0);
    const noWait: LaunchPlan = { ...built, launches: built.launches.map((l, k): Launch => (k === i ? { ...l, after: undefined } : l)) };
    expect(() => checkLaunchPlan(noWait)).toThrow(/lanes: launch \d+ \(lane \d+\) depends on launch \d+/);
    const badLane: LaunchPlan = { ...built, launches: built.launches.map((l, k): Launch => (k === i ? { ...l, lane: 40 } : l)) };
    expect(() => checkLaunchPlan(badLane)).toThrow(/lane 40 but the plan has/);
    const forward: LaunchPlan = { ...built, launches: built.launches.map((l, k): Launch => (k === 0 ? { ...l, after: [3] } : l)) };
    expect(() => checkLaunchPlan(forward)).toThrow(/waits for launch 3, which is not earlier/);
    expect(() => checkLaunchPlan({ ...built, priorityLanes: [built.lanes!] })).toThrow(/priorityLanes\[0\]: lane \d+ but the plan has/);
    expect(() => checkLaunchPlan({ ...built, priorityLanes: [1, 1] })).toThrow(/priorityLanes\[1\]: lane 1 is named twice/);
  });

  it('the busiest lanes run at high priority: each is the critical path of the tick', () => {
    // this fleet's lanes are balanced (more than half within 80% of the busiest): none is raised
    expect(plan.priorityLanes ?? []).toEqual(criticalLanes(plan.launches, plan.lanes!));
    // the fleet without the LSTM and the ResNet has a few lanes well above the others
    const fewer = planFleet(mixedFleet().map((t) => t.input));
    expect(fewer.priorityLanes?.length ?? 0).toBeGreaterThan(0);
    const busy = new Array<number>(fewer.lanes!).fill(0);
    for (const l of fewer.launches) busy[l.lane ?? 0] = busy[l.lane ?? 0]! + l.info.predictedUs;
    expect(fewer.priorityLanes).toContain(busy.indexOf(Math.max(...busy)));
    for (const l of fewer.priorityLanes!) expect(busy[l]!).toBeGreaterThanOrEqual(0.8 * Math.max(...busy));
    expect(buildLaunchPlan(fewer).plan.priorityLanes).toEqual(fewer.priorityLanes);
  });
});

describe('critical lanes', () => {
  const launch = (lane: number, us: number) => ({ lane, info: { predictedUs: us } }) as unknown as Launch;
  it('the lanes within 80% of the busiest, none when they are half the lanes or more, none on one lane', () => {
    expect(criticalLanes([launch(0, 10), launch(1, 100), launch(2, 85), launch(3, 20), launch(1, 5)], 4)).toEqual([1, 2]);
    expect(criticalLanes([launch(0, 100), launch(1, 90), launch(2, 85)], 3)).toEqual([]);
    expect(criticalLanes([launch(0, 100)], 1)).toEqual([]);
    expect(criticalLanes([launch(0, 100), launch(1, 10)], 2)).toEqual([0]);
  });
});

describe('a laned plan keeps tenant groups apart in memory', () => {
  // the small demo fleet: MLPs of two widths, LSTMs, ResNet-18s and encoders, whose groups share no launch
  const fleet = demoFleet(true).map((t) => tenantFromBytes(t.id, generateModel(t.kind, { ...t.options, seed: t.seed } as never).bytes, 4).input);
  const tenantsOf = (l: Launch): Set<number> => {
    const ts = new Set<number>();
    JSON.stringify(l, (k, v: unknown) => {
      if (k === 'tenant' && typeof v === 'number') ts.add(v);
      return v;
    });
    return ts;
  };
  // dependencies between launches of tenant groups that share no launch (union of each launch's tenants)
  const crossGroupDeps = (launches: readonly Launch[]): string[] => {
    const parent = new Map<number, number>();
    const find = (t: number): number => ((parent.get(t) ?? t) === t ? t : find(parent.get(t)!));
    const sets = launches.map(tenantsOf);
    for (const ts of sets) {
      const roots = [...ts].map(find);
      for (const r of roots) if (r !== roots[0]) parent.set(Math.max(r, roots[0]!), Math.min(r, roots[0]!));
    }
    const groupOf = (i: number): number => find([...sets[i]!][0]!);
    expect(new Set(sets.map((_, i) => groupOf(i))).size).toBeGreaterThan(2);
    return launchDependencies(launches).flatMap((ds, i) => ds.filter((d) => groupOf(d) !== groupOf(i)).map((d) => `${d} -> ${i}`));
  };

  it('on lanes, tenants that share no launch share no dependency', () => {
    const laned = planFleet(fleet, { maxLanes: 8 });
    expect(laned.lanes ?? 1).toBeGreaterThan(1);
    expect(crossGroupDeps(laned.launches)).toEqual([]);
    expect(laneOrderViolation(laned.launches, launchDependencies(laned.launches))).toBeNull();
  });
});

describe('lanes by chain', () => {
  it("a chain keeps lanes of its own while lanes are left: none waits behind another chain's launch", () => {
    // two chains interleaved in launch order, A slow by the cost model, B fast with a fork: by start times
    // alone B's second branch lands on A's lane (free first), then A's next launch queues behind it
    const deps = [[], [], [0], [1], [1], [2], [3, 4]];
    const predicted = [1, 10, 1, 10, 10, 1, 1];
    const chainOf = ['A', 'B', 'A', 'B', 'B', 'A', 'B'];
    const mixed = (a: ReturnType<typeof assignLanes>) =>
      Array.from({ length: a.lanes }, (_, l) => new Set(a.laneOf.flatMap((x, i) => (x === l ? [chainOf[i]!] : [])))).some((s) => s.size > 1);
    expect(mixed(assignLanes(deps, predicted, 8))).toBe(true);
    const a = assignLanes(deps, predicted, 8, chainOf);
    expect(mixed(a)).toBe(false);
    // with one lane there is no choice
    expect(assignLanes(deps, predicted, 1, chainOf).laneOf).toEqual(deps.map(() => 0));
  });
});

describe('lanes on random DAGs', () => {
  // a small deterministic generator (xorshift), so a failure names its seed
  function rng(seed: number): () => number {
    let x = seed >>> 0 || 1;
    return () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) / 2 ** 32;
    };
  }

  it('every dependency finishes before its dependant starts, in any interleaving the lanes and waits allow', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const r = rng(seed);
      const n = 5 + Math.floor(r() * 40);
      const accesses = Array.from({ length: n }, () =>
        Array.from({ length: 1 + Math.floor(r() * 3) }, () => {
          const begin = Math.floor(r() * 200);
          return act(begin, begin + 1 + Math.floor(r() * 40), r() < 0.5);
        }),
      );
      const deps = accessDependencies(accesses);
      const chains = seed % 2 === 0 ? deps.map(() => String(Math.floor(r() * 3))) : undefined; // half with chain affinity
      const a = assignLanes(
        deps,
        deps.map(() => 1 + r() * 9),
        1 + Math.floor(r() * 6),
        chains,
      );
      // run it: each step picks a random lane whose next launch's waits are all done
      const next = new Array<number>(a.lanes).fill(0);
      const byLane = Array.from({ length: a.lanes }, (_, l) => a.laneOf.flatMap((x, i) => (x === l ? [i] : [])));
      const done = new Set<number>();
      while (done.size < n) {
        const ready = byLane.flatMap((ids, l) => {
          const i = ids[next[l]!];
          return i !== undefined && a.after[i]!.every((w) => done.has(w)) ? [l] : [];
        });
        expect(ready.length, `seed ${seed}: no lane can go on (a wait on a later launch?)`).toBeGreaterThan(0);
        const l = ready[Math.floor(r() * ready.length)]!;
        const i = byLane[l]![next[l]!]!;
        for (const d of deps[i]!) expect(done.has(d), `seed ${seed}: launch ${i} started before its dependency ${d}`).toBe(true);
        done.add(i);
        next[l]!++;
      }
    }
  });
});
