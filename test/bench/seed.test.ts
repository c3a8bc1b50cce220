// bench/seed.ts on the CPU backend at R=2: the fleets compile to one batched GEMM of the seed's shape, all three
// modes run and agree, and the table/JSON fields are filled (no timing assertions).
import { describe, expect, it } from 'vitest';
import { formatSeed, geomean, runSeed, summarize } from '../../bench/seed.js';

describe('bench/seed.ts', () => {
  it('runs the seed fleets in three modes on the CPU backend', async () => {
    const { rows, errors } = await runSeed({
      backend: 'cpu',
      shapes: ['matvec', 'square'],
      rs: [2],
      precisions: ['fp32'],
      ticks: 2,
      warmup: 0,
      stopOnError: true,
    });
    expect(errors).toEqual([]);
    expect(rows.map((r) => r.shape)).toEqual(['matvec', 'square']);
    expect(rows[0]!.planGemms).toEqual([{ kind: 'gemm', m: 1, n: 512, k: 512, batch: 2 }]);
    expect(rows[1]!.planGemms).toEqual([{ kind: 'gemm', m: 256, n: 256, k: 256, batch: 2 }]);
    for (const r of rows) {
      expect(r.launches).toEqual({ timeOnly: 2, spaceOnly: 2, spaceTime: 1 });
      expect(r.maxRelErrorVsSpaceTime).toBeLessThan(1e-4);
      expect(r.weightBytes).toBe(2 * r.M * r.K * 4);
      expect(r.speedupVsSpaceOnly).toBeGreaterThan(0);
      expect(r.deviceUs.spaceTime).toBeNull();
    }
    expect(summarize(rows)).toHaveLength(2);
    expect(formatSeed(rows, null)).toContain('geomean fp32 square');
  }, 60_000);

  it('geomean', () => {
    expect(geomean([2, 8])).toBeCloseTo(4, 12);
  });
});
