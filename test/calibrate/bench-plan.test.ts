// The micro-benchmark plans: every point of the CUDA and CPU grids becomes a valid LaunchPlan (the JS
// validator and the native one), with the repetitions and tenants the measurement relies on.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildLaunchPlan, writePlanDir } from '../../codegen/index.js';
import { loadPlan } from '../../runtime/index.js';
import { buildBenchPlan, precisionOf, repetitions } from '../../src/calibrate/bench-plan.js';
import { type BenchPoint, benchGrid, gemmMaths } from '../../src/calibrate/grid.js';
import { gemmWork, kernelWork } from '../../src/planner/work.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'loom-bench-plan-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const byMath = (points: readonly BenchPoint[], math: string) => points.filter((p) => (p.kind === 'kernel' ? 'f32' : p.math) === math);

describe('calibration plans', () => {
  for (const quick of [true, false]) {
    it(`the CUDA ${quick ? 'quick' : 'full'} grid: one valid plan per GEMM math, every point as N/2 and N repetitions`, () => {
      const grid = benchGrid({ backend: 'cuda', quick });
      for (const math of gemmMaths({ backend: 'cuda', quick })) {
        const points = byMath(grid, math);
        expect(points.length).toBeGreaterThan(0);
        const b = buildBenchPlan(points, precisionOf(math), 'pair', 4 << 20);
        expect(() => buildLaunchPlan(b.plan)).not.toThrow(); // refs inside their arenas, kernels table, segments
        expect(b.plan.tenants).toHaveLength(points.length * 2);
        for (const [i, pt] of b.points.entries()) {
          expect(pt.longCount).toBe(repetitions(points[i]!, 'pair', 4 << 20));
          expect(pt.shortCount * 2).toBe(pt.longCount);
          const tenantOf = (id: string) => b.plan.tenants.findIndex((t) => t.id === id);
          const launchesOf = (t: number) => b.plan.launches.filter((l) => l.info.tenants.includes(t));
          expect(launchesOf(tenantOf(pt.short!))).toHaveLength(pt.shortCount);
          expect(launchesOf(tenantOf(pt.long))).toHaveLength(pt.longCount);
          expect(pt.longLaunchIds).toEqual(launchesOf(tenantOf(pt.long)).map((l) => l.id));
        }
      }
    });
  }

  it('prices each point with the planner own work formulas (what LaunchInfo reports for a real plan)', () => {
    const grid = benchGrid({ backend: 'cpu', quick: true });
    const b = buildBenchPlan(grid, 'fp32', 'single', 1 << 20);
    for (const pt of b.points) {
      const p = pt.point;
      if (p.kind === 'gemm') {
        const problem = { m: p.shape.m, n: p.shape.n, k: p.shape.k, bias: p.epilogue ? 'col' : 'none' } as never;
        expect(pt.work.flops).toBe(gemmWork('f32', problem, p.shape.batch).flops);
        expect(pt.work.bytes).toBe(gemmWork('f32', problem, p.shape.batch).bytes);
        expect(pt.work.epilogueBytes).toBe(p.epilogue ? p.shape.m * p.shape.n * 4 * p.shape.batch : 0);
      } else if (p.kind === 'kernel') {
        const l = b.plan.launches.find((x) => x.id === pt.longLaunchIds[0])!;
        expect(l.kind).toBe('kernel');
        if (l.kind === 'kernel') expect(pt.work.bytes).toBe(kernelWork(l.op, l.segments).bytes);
      }
    }
  });

  it('runs on the native CPU backend: every launch profiled once per tick', async () => {
    const points = byMath(benchGrid({ backend: 'cpu', quick: true }), 'f32').slice(0, 40);
    const b = buildBenchPlan(points, 'fp32', 'pair', 1 << 20);
    const planDir = path.join(dir, 'pair');
    await writePlanDir(b.plan, planDir, { nvcc: 'off' });
    const loaded = await loadPlan(planDir, { backend: 'cpu', threads: 1 });
    try {
      const prof = loaded.profileTick();
      expect(prof.map((p) => p.id)).toEqual(b.plan.launches.map((l) => l.id));
      for (const p of prof) expect(p.us).toBeGreaterThanOrEqual(0);
    } finally {
      loaded.close();
    }
  }, 120_000);
});
