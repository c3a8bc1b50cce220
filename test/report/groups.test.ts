// The report and `loom inspect` at thousands of tenants: tenants of one model, batch, SLO and launch set share
// a chart row; past MAX_GROUP_ROWS groups the smallest share an "other" row; the page lists groups, not tenants.
import { describe, expect, it } from 'vitest';
import type { Launch, LaunchInfo } from '../../ir/contract/launch.js';
import { formatTenantGroups } from '../../src/cli/inspect.js';
import { MAX_GROUP_ROWS, type ReportPlan, buildReportModel, groupTenants, renderReport } from '../../src/report/index.js';

const ref = { arena: 'act', offset: 0 } as const;
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

function gemm(id: number, stage: number, tenants: number[]): Launch {
  const info: LaunchInfo = {
    stage,
    label: `l${id}`,
    tenants,
    sources: [],
    flops: 100 * tenants.length,
    bytes: 64 * tenants.length,
    predictedUs: 5,
    ungroupedUs: 5 * tenants.length,
  };
  return { kind: 'gemm', id, dtype: 'f32', problem, entries: tenants.map((tenant) => ({ tenant, a: ref, b: ref, c: ref, bias: null })), strides: null, info };
}

// `n` tenants over `models` model files (round robin); the first `deep` tenants also run a second layer.
function fleet(n: number, models: number, deep = 0): ReportPlan {
  const all = Array.from({ length: n }, (_, i) => i);
  return {
    tenants: all.map((i) => ({ id: `t${i}`, layers: i < deep ? 2 : 1, maxBatch: 1, model: `models/m${i % models}.onnx`, sloMs: null })),
    launches: [gemm(0, 0, all), ...(deep > 0 ? [gemm(1, 1, all.slice(0, deep))] : [])],
    stages: deep > 0 ? 2 : 1,
    arenas: { weights: 1, act: 1, io: 1, actWithoutReuse: 1 },
    cost: { predictedTickUs: 10, ungroupedTickUs: 100, floorUs: 1, device: 'test device' },
  };
}

describe('tenant groups', () => {
  it('groups tenants by model, batch, SLO and launch set; launches cover groups', () => {
    const plan = fleet(1000, 4, 10); // 10 deep tenants split their model groups
    const { groups, plan: grouped } = groupTenants(plan);
    expect(groups.map((g) => g.members.length).reduce((a, b) => a + b, 0)).toBe(1000);
    expect(groups).toHaveLength(8); // 4 models x (deep or not)
    expect(groups[0]!.label).toBe('248 × m2'); // m0 and m1 lost 3 tenants each to the deep groups, m2 and m3 only 2
    expect(groups[0]!.sample).toEqual(['t10', 't14', 't18', 't22', 't26']);
    expect(new Set(groups.map((g) => g.label)).size).toBe(groups.length);
    expect(grouped.tenants).toHaveLength(8);
    expect(grouped.launches[0]!.info.tenants).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const deepGroups = grouped.launches[1]!.info.tenants.map((k) => groups[k]!);
    expect(deepGroups.every((g) => g.layers === 2)).toBe(true);
    expect(deepGroups.reduce((a, g) => a + g.members.length, 0)).toBe(10);
  });

  it('past MAX_GROUP_ROWS groups, the smallest share one "other" row', () => {
    const { groups } = groupTenants(fleet(500, 100));
    expect(groups).toHaveLength(MAX_GROUP_ROWS);
    const other = groups[groups.length - 1]!;
    expect(other.label).toBe(`${(100 - MAX_GROUP_ROWS + 1) * 5} × other (${100 - MAX_GROUP_ROWS + 1} groups)`);
    expect(other.maxBatch).toBeNull();
  });

  it('the report model draws group rows above maxTenantRows and tenant rows below', () => {
    const plan = fleet(300, 3);
    const m = buildReportModel(plan);
    expect(m.grouping?.tenants).toBe(300);
    expect(m.tenants.map((t) => t.members)).toEqual([100, 100, 100]);
    expect(m.blocks[0]!.tenantCount).toBe(300);
    expect(m.totals.tenants).toBe(300);
    const small = buildReportModel(plan, undefined, { maxTenantRows: 1000 });
    expect(small.grouping).toBeNull();
    expect(small.tenants).toHaveLength(300);
  });

  it('the page lists groups, not every tenant', () => {
    const html = renderReport(fleet(5000, 16));
    expect(html).toContain('id="tenant-groups"');
    expect(html).toContain('313 × m0');
    expect(html).toContain('5000 tenants in 16 groups');
    expect(html).not.toContain('t4999');
    expect(html.length).toBeLessThan(200_000);
  });

  it('loom inspect prints the largest groups and counts the rest', () => {
    const text = formatTenantGroups(fleet(2000, 16), 3);
    const lines = text.split('\n');
    expect(lines[0]).toBe('tenant groups 2000 tenants in 16 groups of the same model, max batch, SLO and launches:');
    expect(lines[1]).toBe('  125 × m0: 1 layers, max batch 1 (t0, t16, t32, t48, t64, …)');
    expect(lines).toHaveLength(5);
    expect(lines[4]).toBe('  … 13 more groups (1625 tenants)');
  });
});
