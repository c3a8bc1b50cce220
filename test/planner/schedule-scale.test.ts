// scheduleSteps (incremental, near-linear) must give exactly the schedule of the rule as first written
// (scheduleStepsByScan, which rescans every step per stage), and stay near-linear on a long chain.
import { describe, expect, it } from 'vitest';
import { scheduleSteps, scheduleStepsByScan } from '../../src/planner/schedule.js';
import type { Step } from '../../src/planner/steps.js';
import { rng } from '../support/tensors.js';

function step(id: number, tenant: number, key: string, deps: number[]): Step {
  return { kind: 'kernel', id, tenant, deps, key, source: `t${tenant}/n${id}`, flops: 0, bytes: 0, op: { op: 'copy' }, segments: [] } as unknown as Step;
}

// Tenants of random DAGs (each step depends on up to 3 earlier steps of its tenant), keys drawn from a small
// set so that tenants share some, lengths varied so that shorter tenants have slack to wait in.
function randomFleet(seed: number): Step[] {
  const r = rng(seed);
  const tenants = 1 + Math.floor(r() * 6);
  const keys = 1 + Math.floor(r() * 5);
  const steps: Step[] = [];
  for (let t = 0; t < tenants; t++) {
    const len = 1 + Math.floor(r() * 30);
    const first = steps.length;
    for (let i = 0; i < len; i++) {
      const id = steps.length;
      const deps = new Set<number>();
      const nd = i === 0 ? 0 : Math.floor(r() * 4);
      for (let k = 0; k < nd; k++) deps.add(first + Math.floor(r() * i));
      steps.push(
        step(
          id,
          t,
          `k${Math.floor(r() * keys)}`,
          [...deps].sort((a, b) => a - b),
        ),
      );
    }
  }
  return steps;
}

describe('scheduleSteps', () => {
  it('equals the scanning rule on 500 random fleets', () => {
    for (let seed = 1; seed <= 500; seed++) {
      const steps = randomFleet(seed);
      expect(scheduleSteps(steps), `seed ${seed}`).toEqual(scheduleStepsByScan(steps));
    }
  });

  it('a 100k-step chain next to a short tenant schedules in near-linear time', () => {
    const chain = (n: number): Step[] => {
      const steps: Step[] = [];
      for (let i = 0; i < n; i++) steps.push(step(i, 0, i % 2 ? 'a' : 'b', i === 0 ? [] : [i - 1]));
      for (let i = 0; i < 10; i++) steps.push(step(n + i, 1, i % 2 ? 'a' : 'b', i === 0 ? [] : [n + i - 1]));
      return steps;
    };
    const time = (n: number): number => {
      const t0 = performance.now();
      const { stages } = scheduleSteps(chain(n));
      expect(stages).toBe(n);
      return performance.now() - t0;
    };
    time(5000); // warm up
    const small = time(10_000);
    const big = time(100_000);
    // linear: ~10x; the scanning rule is ~100x (minutes). Generous, so a loaded machine does not flake.
    expect(big / Math.max(small, 1)).toBeLessThan(40);
  });
});
