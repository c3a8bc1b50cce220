// What `loom inspect` shows, as data: one row per launch and the plan's headline numbers. Works on the
// planner's Plan and on a LaunchPlan read back from disk (both carry the same launches, tenants and costs).
import { type GemmProblem, type Launch, type Segment, segmentOf } from '../../ir/contract/launch.js';
import type { ArenaSizes, CostSummary, MeasuredBranches } from '../../ir/contract/plan.js';

export interface InspectablePlan {
  readonly tenants: ReadonlyArray<{ readonly id: string; readonly layers: number; readonly maxBatch: number }>;
  readonly launches: readonly Launch[];
  readonly stages: number;
  readonly lanes?: number;
  readonly priorityLanes?: readonly number[];
  readonly arenas: ArenaSizes;
  readonly cost: CostSummary;
}

// strided: one strided-batched GEMM; batched: same-shape GEMMs through a pointer array; grouped: GEMMs of
// different shapes in one call; generated: one generated kernel over every tenant's segment.
export type LaunchKindLabel = 'strided' | 'batched' | 'grouped' | 'generated';

export interface LaunchRow {
  readonly id: number;
  readonly stage: number;
  readonly lane: number; // 0 on single-lane plans
  readonly after: readonly number[]; // launches of other lanes it waits for
  readonly kind: LaunchKindLabel;
  readonly op: string; // gemm, or the generated kernel's op (eltwise, softmax, ...)
  readonly label: string;
  readonly tenants: readonly string[];
  readonly shapes: string;
  readonly flops: number;
  readonly bytes: number;
  readonly predictedUs: number;
  readonly ungroupedUs: number;
  // eltwise launches serving tenants whose programs differ only in constants: each segment's params
  // (its tenant's values of the program's 'param' instructions), in segment order
  readonly params?: ReadonlyArray<{ readonly tenant: string; readonly values: readonly number[] }>;
}

export interface PlanTotals {
  readonly tenants: number;
  readonly launches: number;
  readonly tenantLayers: number; // what per-tenant execution would launch
  readonly stages: number;
  readonly lanes: number;
  readonly priorityLanes: readonly number[]; // lanes on the critical path, at high stream priority on the CUDA backend
  readonly criticalPathUs: number | null; // multi-lane plans: the lanes' predicted tick
  // --branching auto: the tenants run as parallel branches instead of batched with their equals (none where the
  // cost model predicted batching faster), and the ticks it predicted batched and branched; --branching measure:
  // the ticks timed on the device too (null: not measured)
  readonly branches: {
    readonly tenants: readonly string[];
    readonly batchedUs: number;
    readonly branchedUs: number | null;
    readonly measured: MeasuredBranches | null;
  } | null;
  readonly kinds: Readonly<Record<LaunchKindLabel, number>>;
  readonly flops: number;
  readonly bytes: number;
  readonly predictedTickUs: number;
  readonly ungroupedTickUs: number;
  readonly floorUs: number;
  readonly device: string;
  readonly profile?: { readonly name: string; readonly hash: string }; // the device profile the plan was priced with
  readonly arenas: ArenaSizes;
}

export function launchRows(plan: InspectablePlan): LaunchRow[] {
  const ids = plan.tenants.map((t) => t.id);
  return plan.launches.map((l) => {
    const base = {
      id: l.id,
      stage: l.info.stage,
      lane: l.lane ?? 0,
      after: l.after ?? [],
      label: l.info.label,
      tenants: l.info.tenants.map((i) => ids[i] ?? `#${i}`),
      flops: l.info.flops,
      bytes: l.info.bytes,
      predictedUs: l.info.predictedUs,
      ungroupedUs: l.info.ungroupedUs,
    };
    switch (l.kind) {
      case 'gemm':
        return { ...base, kind: l.strides ? 'strided' : 'batched', op: 'gemm', shapes: `${gemmShape(l.problem)} x${l.entries.length}` };
      case 'gemm_grouped':
        return { ...base, kind: 'grouped', op: 'gemm', shapes: countDistinct(l.groups.map((g) => [gemmShape(g.problem), g.entries.length])) };
      case 'kernel': {
        const row: LaunchRow = { ...base, kind: 'generated', op: l.op.op, shapes: countDistinct(l.segments.map((s) => [segmentShape(s), 1])) };
        const op = l.op;
        if (op.op !== 'eltwise' || !l.segments.some((s) => segmentOf(op, s).params !== undefined)) return row;
        return { ...row, params: l.segments.map((s) => ({ tenant: ids[s.tenant] ?? `#${s.tenant}`, values: segmentOf(op, s).params ?? [] })) };
      }
      default: {
        const never: never = l;
        throw new Error(`unknown launch kind ${JSON.stringify(never)}`);
      }
    }
  });
}

// "a, b, c and 5 more"
export function idsText(ids: readonly string[]): string {
  return ids.length <= 4 ? ids.join(', ') : `${ids.slice(0, 3).join(', ')} and ${ids.length - 3} more`;
}

export function planTotals(plan: InspectablePlan): PlanTotals {
  const rows = launchRows(plan);
  const kinds: Record<LaunchKindLabel, number> = { strided: 0, batched: 0, grouped: 0, generated: 0 };
  for (const r of rows) kinds[r.kind]++;
  return {
    tenants: plan.tenants.length,
    launches: plan.launches.length,
    tenantLayers: plan.tenants.reduce((s, t) => s + t.layers, 0),
    stages: plan.stages,
    lanes: plan.lanes ?? 1,
    priorityLanes: plan.priorityLanes ?? [],
    criticalPathUs: plan.cost.criticalPathUs ?? null,
    branches: plan.cost.branches
      ? {
          tenants: plan.cost.branches.tenants.map((i) => plan.tenants[i]?.id ?? `#${i}`),
          batchedUs: plan.cost.branches.batchedUs,
          branchedUs: plan.cost.branches.branchedUs ?? null,
          measured: plan.cost.branches.measured ?? null,
        }
      : null,
    kinds,
    flops: rows.reduce((s, r) => s + r.flops, 0),
    bytes: rows.reduce((s, r) => s + r.bytes, 0),
    predictedTickUs: plan.cost.predictedTickUs,
    ungroupedTickUs: plan.cost.ungroupedTickUs,
    floorUs: plan.cost.floorUs,
    device: plan.cost.device,
    ...(plan.cost.profile ? { profile: { name: plan.cost.profile.name, hash: plan.cost.profile.hash } } : {}),
    arenas: plan.arenas,
  };
}

// One line: the numbers that say whether the plan pays.
export function planHeadline(plan: InspectablePlan): string {
  const t = planTotals(plan);
  const ratio = fewerText(t.launches, t.tenantLayers);
  return `${t.launches} launches per tick for ${t.tenantLayers} tenant layers${ratio}; predicted tick ${fmtUs(t.predictedTickUs)} vs ${fmtUs(t.ungroupedTickUs)} ungrouped (floor ${fmtUs(t.floorUs)})`;
}

// " (2.8x fewer)"; lowered layers (an LSTM unrolled per step) can make a small fleet need more.
export function fewerText(launches: number, layers: number): string {
  if (launches === 0 || layers === 0) return '';
  return launches <= layers ? ` (${(layers / launches).toFixed(1)}x fewer)` : ` (${(launches / layers).toFixed(1)}x more)`;
}

function gemmShape(p: GemmProblem): string {
  return `${p.m}x${p.n}x${p.k}`;
}

function segmentShape(s: Segment): string {
  if ('shape' in s) return `[${s.shape.join(',')}]`;
  if ('dims' in s) return `[${s.dims.join(',')}]`;
  if ('geom' in s) return `${s.geom.c}x${s.geom.h}x${s.geom.w}→${s.geom.oh}x${s.geom.ow}`;
  if ('count' in s) return `${s.count}`;
  return '?';
}

// "a x3, b x1" in first-seen order.
function countDistinct(items: ReadonlyArray<readonly [string, number]>): string {
  const counts = new Map<string, number>();
  for (const [k, c] of items) counts.set(k, (counts.get(k) ?? 0) + c);
  return [...counts].map(([k, c]) => `${k} x${c}`).join(', ');
}

export function fmtUs(us: number): string {
  if (us >= 1e6) return `${(us / 1e6).toFixed(2)} s`;
  if (us >= 1e3) return `${(us / 1e3).toFixed(2)} ms`;
  return `${us.toFixed(us < 10 ? 2 : 1)} µs`;
}

export function fmtBytes(b: number): string {
  if (b >= 1024 ** 3) return `${(b / 1024 ** 3).toFixed(2)} GiB`;
  if (b >= 1024 ** 2) return `${(b / 1024 ** 2).toFixed(2)} MiB`;
  if (b >= 1024) return `${(b / 1024).toFixed(1)} KiB`;
  return `${b} B`;
}

export function fmtFlops(f: number): string {
  if (f >= 1e9) return `${(f / 1e9).toFixed(2)} G`;
  if (f >= 1e6) return `${(f / 1e6).toFixed(2)} M`;
  if (f >= 1e3) return `${(f / 1e3).toFixed(1)} K`;
  return `${f}`;
}
