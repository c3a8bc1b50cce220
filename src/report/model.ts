// The report's view model: what the HTML page shows, decided here so rendering only prints. Built from the
// same rows and totals as the terminal `loom inspect` (src/fleet/summary.ts), never recomputed.
import { type InspectablePlan, type LaunchKindLabel, type LaunchRow, type PlanTotals, launchRows, planTotals } from '../fleet/summary.js';
import type { BenchTimes } from './bench.js';
import { CHART_TENANT_ROWS, type TenantGroup, groupTenants } from './groups.js';
import { countBreaks, orderTenants } from './order.js';

// A LaunchPlan or a Plan: tenants may also say their model file and SLO.
export interface ReportPlan extends InspectablePlan {
  readonly tenants: ReadonlyArray<{
    readonly id: string;
    readonly layers: number;
    readonly maxBatch: number;
    readonly model?: string;
    readonly sloMs?: number | null;
  }>;
}

// Consecutive chart rows a launch covers: a launch is one block of one or more such runs.
export interface RowRun {
  readonly row: number;
  readonly rows: number;
}

export interface ReportBlock extends LaunchRow {
  readonly tenantCount: number; // tenants the launch covers (its `tenants` are group rows when grouped)
  readonly measuredUs: number | null;
  readonly us: number; // what the chart draws: measured when the bench has it, else predicted
  readonly startUs: number; // where it starts in the tick: after its lane's previous launch and the launches it waits for
  readonly runs: readonly RowRun[]; // top to bottom
}

export interface ReportStage {
  readonly stage: number;
  readonly startUs: number;
  readonly us: number;
  readonly launches: number;
}

export interface ReportTenant {
  readonly id: string;
  readonly index: number; // in the plan
  readonly row: number; // in the chart
  readonly model: string | null;
  readonly maxBatch: number;
  readonly sloMs: number | null;
  readonly layers: number;
  readonly launches: number; // launches that cover this tenant
  readonly members: number; // 1, or the tenants of a group row
  readonly sample: readonly string[]; // a group's first few tenant ids (a tenant: its own)
}

// How the chart's rows relate to the plan's tenants when there are too many for one row each.
export interface ReportGrouping {
  readonly tenants: number;
  readonly groups: readonly TenantGroup[];
}

export type KindTotals = Readonly<Record<LaunchKindLabel, { readonly launches: number; readonly us: number }>>;

export interface ReportModel {
  readonly basis: 'predicted' | 'measured';
  readonly benchDevice: string | null;
  readonly tenants: readonly ReportTenant[]; // in row order
  readonly blocks: readonly ReportBlock[]; // in execution order
  readonly stages: readonly ReportStage[]; // stages that have launches, in order
  readonly totals: PlanTotals;
  readonly tickUs: number; // the chart's tick: Σ block.us
  readonly measuredTickUs: number | null; // Σ measured, when the bench covers every launch
  readonly measuredLaunches: number;
  readonly kinds: KindTotals;
  readonly breaks: number; // extra pieces launches break into because their rows could not all be adjacent
  readonly grouping: ReportGrouping | null; // null: one row a tenant
}

export interface ReportModelOptions {
  readonly maxTenantRows?: number; // more tenants than this: one row a tenant group (default CHART_TENANT_ROWS)
}

export const KIND_LABELS: readonly LaunchKindLabel[] = ['strided', 'batched', 'grouped', 'generated'];

export function buildReportModel(full: ReportPlan, bench?: BenchTimes, opts: ReportModelOptions = {}): ReportModel {
  const totals = planTotals(full);
  const grouped = full.tenants.length > (opts.maxTenantRows ?? CHART_TENANT_ROWS) ? groupTenants(full) : null;
  const plan = grouped?.plan ?? full; // the rows the chart draws: tenants, or tenant groups
  const rows = launchRows(plan);
  const tenantSets = plan.launches.map((l) => l.info.tenants);
  const order = orderTenants(plan.tenants.length, tenantSets);
  const rowOf = new Map(order.map((t, row) => [t, row]));

  const covering = new Array<number>(plan.tenants.length).fill(0);
  for (const set of tenantSets) for (const t of new Set(set)) covering[t] = (covering[t] ?? 0) + 1;
  const tenants: ReportTenant[] = order.map((index, row) => {
    const t = plan.tenants[index]!;
    const g = grouped?.groups[index];
    return {
      id: t.id,
      index,
      row,
      model: t.model ?? null,
      maxBatch: t.maxBatch,
      sloMs: t.sloMs ?? null,
      layers: t.layers,
      launches: covering[index]!,
      members: g ? g.members.length : 1,
      sample: g ? g.sample : [t.id],
    };
  });

  // A launch starts when its lane's previous launch and every launch it waits for have finished (one lane: one
  // after another), so parallel lanes show as blocks side by side in time on their tenants' rows.
  let clock = 0;
  const laneFree = new Map<number, number>();
  const finish: number[] = [];
  const blocks: ReportBlock[] = rows.map((r, i) => {
    const measured = bench?.us.get(r.id);
    const us = measured ?? r.predictedUs;
    const startUs = Math.max(laneFree.get(r.lane) ?? 0, ...r.after.map((a) => finish[a] ?? 0));
    finish[i] = startUs + us;
    laneFree.set(r.lane, finish[i]!);
    clock = Math.max(clock, finish[i]!);
    return {
      ...r,
      tenantCount: new Set(full.launches[i]!.info.tenants).size,
      measuredUs: measured ?? null,
      us,
      startUs,
      runs: rowRuns(tenantSets[i]!.map((t) => rowOf.get(t)!)),
    };
  });

  const stages: ReportStage[] = [];
  for (const b of blocks) {
    const last = stages[stages.length - 1];
    if (last && last.stage === b.stage) {
      const startUs = Math.min(last.startUs, b.startUs);
      stages[stages.length - 1] = { ...last, startUs, us: Math.max(last.startUs + last.us, b.startUs + b.us) - startUs, launches: last.launches + 1 };
    } else stages.push({ stage: b.stage, startUs: b.startUs, us: b.us, launches: 1 });
  }

  const kinds = Object.fromEntries(KIND_LABELS.map((k) => [k, { launches: 0, us: 0 }])) as Record<LaunchKindLabel, { launches: number; us: number }>;
  for (const b of blocks) {
    kinds[b.kind].launches++;
    kinds[b.kind].us += b.us;
  }
  const measuredLaunches = blocks.filter((b) => b.measuredUs !== null).length;
  return {
    basis: bench ? 'measured' : 'predicted',
    benchDevice: bench?.device ?? null,
    tenants,
    blocks,
    stages,
    totals,
    tickUs: clock,
    measuredTickUs: bench && measuredLaunches === blocks.length ? clock : null,
    measuredLaunches,
    kinds,
    breaks: countBreaks(order, tenantSets),
    grouping: grouped ? { tenants: full.tenants.length, groups: grouped.groups } : null,
  };
}

function rowRuns(rowsOfLaunch: readonly number[]): RowRun[] {
  const sorted = [...new Set(rowsOfLaunch)].sort((a, b) => a - b);
  const runs: RowRun[] = [];
  for (const r of sorted) {
    const last = runs[runs.length - 1];
    if (last && last.row + last.rows === r) runs[runs.length - 1] = { row: last.row, rows: last.rows + 1 };
    else runs.push({ row: r, rows: 1 });
  }
  return runs;
}
