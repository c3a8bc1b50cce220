import { describe, expect, it } from 'vitest';
import { planKernels, renderKernelSource } from '../../codegen/kernels.js';
import { type GeomSegment, type Launch, type Segment, segmentOf } from '../../ir/contract/launch.js';
import { samplePlan } from './fixture.js';

// The generic im2col walks runs (prelude loom_for_runs): its grid gives each thread several items of one segment
// but keeps enough blocks to fill the card; any grid is correct, so this pins the policy, not correctness.
// `mixed`: odd tenants pad the other way (same work, another geometry), so the launch keeps the generic kernel.
function im2colLaunch(tenants: number, c: number, hw: number, mixed = true): Launch {
  const base = samplePlan().launches.find((l) => l.kind === 'kernel' && l.op.op === 'im2col');
  if (base === undefined || base.kind !== 'kernel') throw new Error('fixture has no im2col launch');
  const s0 = segmentOf(base.op, base.segments[0]!) as GeomSegment;
  const geom = { ...s0.geom, n: 1, c, h: hw, w: hw, oh: hw, ow: hw, kh: 3, kw: 3, sh: 1, sw: 1, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1 };
  const other = { ...geom, padTop: 2, padBottom: 0 };
  const segments: Segment[] = Array.from({ length: tenants }, (_, t) => ({ ...s0, tenant: t, geom: mixed && t % 2 === 1 ? other : geom }));
  return { ...base, segments };
}

describe('generated kernel grids', () => {
  it('gives im2col threads up to 16 items each, never fewer than 2048 blocks, and covers every item', () => {
    for (const [c, hw, want] of [
      [64, 56, Math.ceil((16 * 64 * 9 * 56 * 56) / 256 / 16)], // ResNet-18 layer1: 7056 blocks of 16 items
      [512, 7, 2048], // 14112 one-item blocks: kept at 2048 (7 items each)
      [1, 8, Math.ceil((16 * 9 * 64) / 256)], // small: one item per thread, as before
    ] as const) {
      const l = im2colLaunch(16, c, hw);
      const g = planKernels([l]).grids[String(l.id)]!;
      const total = g.work.reduce((a, b) => a + b, 0);
      expect(total).toBe(16 * c * 9 * hw * hw);
      expect(g.grid).toBe(want);
      expect(Math.ceil(Math.ceil(total / g.block) / g.grid)).toBeLessThanOrEqual(16);
    }
  });

  it('gives a geometry-fixed im2col 4 or 1 outputs per thread, its geometry in the kernel key and source', () => {
    const l = im2colLaunch(16, 64, 56, false);
    const table = planKernels([l]);
    const g = table.grids[String(l.id)]!;
    expect(g.grid).toBe(Math.ceil((16 * 64 * 9 * 56 * 56) / 4 / 256)); // rows of 56: 4 outputs per thread
    const k = table.kernels[0]!;
    expect(k.template).toBe('im2col_fixed4.cu.hbs');
    // rows of 7: an output per thread, grid-stride over at most 4224 blocks (14112 blocks' worth of items)
    const seven = im2colLaunch(16, 512, 7, false);
    const t7 = planKernels([seven]);
    expect(t7.kernels[0]!.template).toBe('im2col_fixed.cu.hbs');
    expect(t7.grids[String(seven.id)]!.grid).toBe(4224);
    expect(JSON.parse(k.key).geom).toMatchObject({ c: 64, h: 56, kh: 3 });
    expect(renderKernelSource(table)).toContain('constexpr int N = 1, C = 64, H = 56, W = 56, OH = 56, OW = 56, KH = 3, KW = 3');
    // another geometry is another kernel
    const other = planKernels([im2colLaunch(16, 64, 28, false)]);
    expect(other.kernels[0]!.name).not.toBe(k.name);
    // mixed geometries: the generic kernel
    expect(planKernels([im2colLaunch(16, 64, 56)]).kernels[0]!.template).toBe('im2col.cu.hbs');
  });

  it('LOOM_CODEGEN_FIXED=off compiles the generic kernel; a bad value fails naming the variable', () => {
    const l = im2colLaunch(16, 64, 56, false);
    const before = process.env.LOOM_CODEGEN_FIXED;
    try {
      process.env.LOOM_CODEGEN_FIXED = 'off';
      expect(planKernels([l]).kernels[0]!.template).toBe('im2col.cu.hbs');
      process.env.LOOM_CODEGEN_FIXED = 'auto';
      expect(planKernels([l]).kernels[0]!.template).toBe('im2col_fixed4.cu.hbs');
      process.env.LOOM_CODEGEN_FIXED = 'no';
      expect(() => planKernels([l])).toThrow("LOOM_CODEGEN_FIXED must be auto or off, got 'no'");
    } finally {
      if (before === undefined) delete process.env.LOOM_CODEGEN_FIXED;
      else process.env.LOOM_CODEGEN_FIXED = before;
    }
  });

  it('keeps one item per thread for the kernels that still loop grid-stride', () => {
    const plan = samplePlan();
    const { grids } = planKernels(plan.launches);
    for (const l of plan.launches) {
      if (l.kind !== 'kernel' || l.op.op === 'im2col') continue; // its grids: the tests above
      const g = grids[String(l.id)]!;
      const total = g.work.reduce((a, b) => a + b, 0);
      expect(g.grid).toBe(Math.max(1, g.mapping === 'block' ? total : Math.ceil(total / g.block)));
    }
  });
});
