// The report's view model without a browser: row order, bench parsing, block geometry and the page's text.
import { describe, expect, it } from 'vitest';
import type { Launch, LaunchInfo } from '../../ir/contract/launch.js';
import { type ReportPlan, buildReportModel, countBreaks, orderTenants, parseBench, renderReport } from '../../src/report/index.js';
import { layoutChart, MIN_BLOCK_PX } from '../../src/report/layout.js';
import { expectLoomError } from '../support/errors.js';

// A hand-made plan: 6 tenants, launches over nested and disjoint tenant sets, every launch kind.
function info(stage: number, tenants: number[], predictedUs: number): LaunchInfo {
  return {
    stage,
    label: `l${tenants.join('')}`,
    tenants,
    sources: [],
    flops: 1000 * tenants.length,
    bytes: 64 * tenants.length,
    predictedUs,
    ungroupedUs: predictedUs * tenants.length,
  };
}
const problem = {
  m: 1,
  n: 8,
  k: 8,
  transA: false,
  transB: false,
  lda: 8,
  ldb: 8,
  ldc: 8,
  alpha: 1,
  beta: 1,
  bias: 'none',
  ldBias: 0,
  activation: null,
} as const;
const ref = { arena: 'act', offset: 0 } as const;
const entry = (tenant: number) => ({ tenant, a: ref, b: ref, c: ref, bias: null });
const gemm = (id: number, i: LaunchInfo, strided: boolean): Launch => ({
  kind: 'gemm',
  id,
  dtype: 'f32',
  problem,
  entries: i.tenants.map(entry),
  strides: strided ? { a: 0, b: 0, c: 0, bias: 0 } : null,
  info: i,
});
const kernel = (id: number, i: LaunchInfo): Launch => ({
  kind: 'kernel',
  id,
  kernel: 'k',
  op: { op: 'softmax', log: false },
  segments: i.tenants.map((t) => ({ tenant: t, dims: [1, 8, 1], inputs: [], out: ref, outDType: 'f32' })),
  info: i,
});
const grouped = (id: number, i: LaunchInfo): Launch => ({
  kind: 'gemm_grouped',
  id,
  dtype: 'f32',
  groups: [{ problem, entries: i.tenants.map(entry) }],
  info: i,
});

// tenants 0, 2, 4 share launches (as do 1, 3), so the plan's order would split every group
const PLAN: ReportPlan = {
  tenants: ['a0', 'b1', 'a2', 'b3', 'a4', 'c5'].map((id, i) => ({ id, layers: 3, maxBatch: 2, model: `${id}.onnx`, sloMs: i === 0 ? 5 : null })),
  launches: [
    gemm(0, info(0, [0, 2, 4], 10), true),
    gemm(1, info(0, [1, 3], 4), false),
    grouped(2, info(1, [0, 1, 2, 3, 4, 5], 20)),
    kernel(5, info(2, [0, 4], 1)),
    kernel(7, info(2, [5], 0.5)),
  ],
  stages: 3,
  arenas: { weights: 4096, act: 1024, io: 256, actWithoutReuse: 2048 },
  cost: { predictedTickUs: 35.5, ungroupedTickUs: 99, floorUs: 2, device: 'test device' },
};

describe('tenant order', () => {
  it('makes nested groups contiguous', () => {
    const groups = PLAN.launches.map((l) => l.info.tenants);
    expect(countBreaks([0, 1, 2, 3, 4, 5], groups)).toBeGreaterThan(0);
    const order = orderTenants(6, groups);
    expect([...order].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(countBreaks(order, groups)).toBe(0);
    expect(order.slice(0, 3).sort()).toEqual([0, 2, 4]);
  });

  it('mends overlapping groups where a lexicographic sort cannot', () => {
    const groups = [
      [0, 1, 2],
      [2, 3],
      [3, 4],
      [1, 0],
    ];
    const order = orderTenants(5, groups);
    expect(countBreaks(order, groups)).toBe(0);
  });
});

describe('bench file', () => {
  it('reads launch times and rejects what does not belong to the plan', () => {
    const b = parseBench(
      {
        device: 'H100',
        launches: [
          { id: 0, us: 12.5 },
          { id: 5, us: 3 },
        ],
      },
      [0, 1, 5],
    );
    expect(b.device).toBe('H100');
    expect([...b.us]).toEqual([
      [0, 12.5],
      [5, 3],
    ]);
    expectLoomError(() => parseBench({ launches: [{ id: 9, us: 1 }] }, [0, 1]), 'USAGE', 'no launch 9');
    expectLoomError(() => parseBench({ launches: [{ id: 0, us: -1 }] }, [0]), 'USAGE', 'launches[0]', '"us"');
    expectLoomError(
      () =>
        parseBench(
          {
            launches: [
              { id: 0, us: 1 },
              { id: 0, us: 2 },
            ],
          },
          [0],
        ),
      'USAGE',
      'twice',
    );
    expectLoomError(() => parseBench([1, 2], [0]), 'USAGE', 'expected {"launches"');
    expectLoomError(() => parseBench({ times: [] }, [0]), 'USAGE', 'missing "launches"');
  });
});

describe('view model', () => {
  it('one block per launch, one after another, rows contiguous, totals from inspect', () => {
    const m = buildReportModel(PLAN);
    expect(m.blocks.map((b) => b.id)).toEqual([0, 1, 2, 5, 7]);
    expect(m.blocks.map((b) => b.kind)).toEqual(['strided', 'batched', 'grouped', 'generated', 'generated']);
    expect(m.blocks.map((b) => b.startUs)).toEqual([0, 10, 14, 34, 35]);
    expect(m.tickUs).toBe(35.5);
    expect(m.blocks.every((b) => b.runs.length === 1)).toBe(true);
    expect(m.blocks[2]!.runs).toEqual([{ row: 0, rows: 6 }]);
    expect(m.breaks).toBe(0);
    expect(m.stages.map((s) => [s.stage, s.launches, s.us])).toEqual([
      [0, 2, 14],
      [1, 1, 20],
      [2, 2, 1.5],
    ]);
    expect(m.totals.launches).toBe(5);
    expect(m.totals.tenantLayers).toBe(18);
    expect(m.tenants.find((t) => t.id === 'a0')).toMatchObject({ model: 'a0.onnx', sloMs: 5, launches: 3 });
    expect(m.kinds.generated).toEqual({ launches: 2, us: 1.5 });
  });

  it('parallel lanes: a launch starts after its lane and the launches it waits for; the tick is the longest path', () => {
    const laned: ReportPlan = {
      ...PLAN,
      lanes: 2,
      launches: [
        { ...gemm(0, info(0, [0, 2, 4], 10), true), lane: 0 },
        { ...gemm(1, info(0, [1, 3], 4), false), lane: 1 },
        { ...kernel(2, info(1, [1], 1)), lane: 1 },
        { ...grouped(3, info(2, [0, 1, 2, 3, 4, 5], 20)), lane: 0, after: [2] },
      ],
    };
    const m = buildReportModel(laned);
    expect(m.blocks.map((b) => b.startUs)).toEqual([0, 0, 4, 10]);
    expect(m.tickUs).toBe(30);
    expect(m.stages.map((s) => [s.stage, s.startUs, s.us])).toEqual([
      [0, 0, 10],
      [1, 4, 1],
      [2, 10, 20],
    ]);
    expect(renderReport(laned)).toContain('waits for #2');
  });

  it('draws measured times when a bench is given; unmeasured launches keep their predicted width', () => {
    const m = buildReportModel(
      PLAN,
      parseBench(
        {
          launches: [
            { id: 2, us: 200 },
            { id: 0, us: 1 },
          ],
        },
        [0, 1, 2, 5, 7],
      ),
    );
    expect(m.basis).toBe('measured');
    expect(m.blocks.map((b) => b.us)).toEqual([1, 4, 200, 1, 0.5]);
    expect(m.measuredTickUs).toBeNull(); // partial
    const L = layoutChart(m);
    expect(L.blocks[2]!.w).toBeGreaterThan(L.plotW * 0.8);
    expect(Math.min(...L.blocks.map((b) => b.w))).toBeGreaterThanOrEqual(MIN_BLOCK_PX);
    const html = renderReport(PLAN, { bench: parseBench({ launches: [{ id: 2, us: 200 }] }, [0, 1, 2, 5, 7]) });
    expect(html).toContain('measured (partial)');
    expect(html).toContain('not in the bench');
  });

  it('renders one self-contained page: no external URLs, one svg group per launch', () => {
    const html = renderReport(PLAN, { title: 'p<1>' });
    expect(html.match(/<g class="launch /g)).toHaveLength(5);
    expect(html).toContain('Loom plan · p&lt;1&gt;');
    expect(html).not.toMatch(/(src|href)=["']?(https?:)?\/\//);
    expect(html).not.toMatch(/@import|url\((?!#)/);
    // the script's data may not close its element
    const evil: ReportPlan = { ...PLAN, tenants: PLAN.tenants.map((t, i) => (i === 0 ? { ...t, id: '</script><b>x' } : t)) };
    const page = renderReport(evil);
    expect(page.split('</script>').length).toBe(3); // the JSON block and the script, each closed once
  });
});
