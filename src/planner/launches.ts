// Turns scheduled steps into launches: per stage, GEMM steps of one signature → one 'gemm' launch (all
// tenants' entries), several signatures → one 'gemm_grouped' launch when the cost model says it pays;
// kernel steps of one key → one 'kernel' launch with every tenant's segments (eltwise programs that differ
// only in constants read the differing ones from per-segment params: eltwise-params.ts). Refs stay
// buffer-relative here (DraftLaunch); resolveLaunches fixes them to arena offsets after the memory plan.
import type { DType } from '../../ir/dtype.js';
import { type CostModel, type GemmLaunchWork, type LaunchWork, gemmMath, groupedPays, launchUs } from './cost.js';
import type { Precision } from '../../ir/contract/plan.js';
import { gemmBlocks, gemmEpilogueBytes } from './work.js';
import type { GemmEntry, GemmProblem, GemmStrides, KernelOp, Launch, LaunchInfo, Ref, Segment } from '../../ir/contract/launch.js';
import type { Placement } from './memory.js';
import { type GemmStep, type KernelStep, type LRef, type Step, kernelKey, kernelNameOf } from './steps.js';
import { mergeConstants } from './eltwise-params.js';

export type DraftLaunch =
  | { readonly kind: 'gemm'; readonly stage: number; readonly dtype: DType; readonly problem: GemmProblem; readonly steps: readonly GemmStep[] }
  | { readonly kind: 'gemm_grouped'; readonly stage: number; readonly dtype: DType; readonly groups: ReadonlyArray<readonly GemmStep[]> }
  | {
      readonly kind: 'kernel';
      readonly stage: number;
      readonly kernel: string;
      readonly op: KernelOp;
      readonly steps: readonly KernelStep[];
      readonly params?: ReadonlyArray<readonly number[]>; // per step: its segments' params (eltwise 'param')
    };

// A group's problem, with rowsUnit when every step of it scales by the same unit (FORMAT.md "gemm").
function groupProblem(steps: readonly GemmStep[]): GemmProblem {
  const p = steps[0]!.problem;
  const unit = steps[0]!.rowsUnit;
  if (unit === undefined || steps.some((s) => s.rowsUnit !== unit)) return p;
  return { ...p, rowsUnit: unit };
}

// Steps by key, each group in tenant order; groups ordered by the least `order` of their steps (for
// kernels the exact key, so a plan in which no constants differ keeps the launch order it had before
// keys left the constants out).
function groupBy<T extends Step>(steps: readonly T[], order: (s: T) => string): T[][] {
  const m = new Map<string, T[]>();
  for (const s of steps) {
    let l = m.get(s.key);
    if (l === undefined) m.set(s.key, (l = []));
    l.push(s);
  }
  const first = (g: readonly T[]): string => g.reduce((a, s) => (order(s) < a ? order(s) : a), order(g[0]!));
  const groups = [...m.values()].map((g) => ({ g: g.sort((a, b) => a.tenant - b.tenant || a.id - b.id), first: first(g) }));
  return groups.sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0)).map((x) => x.g);
}

// One kernel launch for a group of steps with equal keys: as is when their programs are equal, with params
// when they differ in at most ELT_MAX_PARAMS constants, else one launch per distinct program.
function kernelDrafts(stage: number, steps: readonly KernelStep[]): DraftLaunch[] {
  const s0 = steps[0]!;
  const exact = new Set(steps.map((s) => s.exactKey));
  if (exact.size === 1) return [{ kind: 'kernel', stage, kernel: kernelNameOf(s0.exactKey), op: s0.op, steps }];
  const ops = steps.map((s) => s.op);
  const merged = s0.op.op === 'eltwise' ? mergeConstants(ops as Extract<KernelOp, { op: 'eltwise' }>[]) : null;
  if (merged !== null) {
    const kernel = kernelNameOf(kernelKey('eltwise', JSON.stringify(merged.op), s0.segments[0]!));
    return [{ kind: 'kernel', stage, kernel, op: merged.op, steps, params: merged.params }];
  }
  return [...exact].sort().map((key) => {
    const group = steps.filter((s) => s.exactKey === key);
    return { kind: 'kernel', stage, kernel: kernelNameOf(key), op: group[0]!.op, steps: group };
  });
}

const work = (steps: readonly Step[]): { flops: number; bytes: number } =>
  steps.reduce((a, s) => ({ flops: a.flops + s.flops, bytes: a.bytes + s.bytes }), { flops: 0, bytes: 0 });

// What the cost model sees of one step run as its own launch.
export function stepWork(s: Step, precision: Precision): LaunchWork {
  if (s.kind === 'kernel') return { kind: 'kernel', op: s.op.op, flops: s.flops, bytes: s.bytes };
  return {
    kind: 'gemm',
    math: gemmMath(s.dtype, precision),
    flops: s.flops,
    bytes: s.bytes,
    epilogueBytes: gemmEpilogueBytes(s.problem, s.entries.length),
    rows: s.problem.m,
    blocks: gemmBlocks(s.problem, s.entries.length),
  };
}

// GEMM steps of one dtype as one launch of `kind`.
function gemmLaunchWork(kind: 'gemm' | 'gemm_grouped', steps: readonly GemmStep[], precision: Precision): GemmLaunchWork {
  const w = work(steps);
  const epilogueBytes = steps.reduce((a, s) => a + gemmEpilogueBytes(s.problem, s.entries.length), 0);
  const each = steps.map((s) => gemmBlocks(s.problem, s.entries.length));
  const blocks = { blocks: each.reduce((a, b) => a + b.blocks, 0), blockFlops: Math.max(...each.map((b) => b.blockFlops)) };
  return { kind, math: gemmMath(steps[0]!.dtype, precision), ...w, epilogueBytes, rows: Math.max(...steps.map((s) => s.problem.m)), blocks };
}

export function draftWork(d: DraftLaunch, precision: Precision): LaunchWork {
  switch (d.kind) {
    case 'gemm':
      return gemmLaunchWork('gemm', d.steps, precision);
    case 'gemm_grouped':
      return gemmLaunchWork('gemm_grouped', d.groups.flat(), precision);
    case 'kernel':
      return { kind: 'kernel', op: d.op.op, ...work(d.steps) };
    default: {
      const never: never = d;
      throw new Error(`unknown launch ${JSON.stringify(never)}`);
    }
  }
}

// parallel: the plan will have several lanes, so a stage's GEMM groups may run side by side as separate launches.
export function buildLaunches(
  steps: readonly Step[],
  stageOf: readonly number[],
  stages: number,
  cost: CostModel,
  precision: Precision,
  parallel = false,
): DraftLaunch[] {
  const byStage: Step[][] = Array.from({ length: stages }, () => []);
  for (const s of steps) byStage[stageOf[s.id]!]!.push(s);
  const out: DraftLaunch[] = [];
  byStage.forEach((list, stage) => {
    const gemms = groupBy(
      list.filter((s): s is GemmStep => s.kind === 'gemm'),
      (s) => s.key,
    );
    const kernels = groupBy(
      list.filter((s): s is KernelStep => s.kind === 'kernel'),
      (s) => s.exactKey,
    );
    const dtypes = new Set(gemms.map((g) => g[0]!.dtype));
    if (
      gemms.length > 1 &&
      dtypes.size === 1 &&
      groupedPays(
        cost,
        gemms.map((g) => gemmLaunchWork('gemm', g, precision)),
        parallel,
      )
    ) {
      out.push({ kind: 'gemm_grouped', stage, dtype: gemms[0]![0]!.dtype, groups: gemms });
    } else {
      for (const g of gemms) out.push({ kind: 'gemm', stage, dtype: g[0]!.dtype, problem: groupProblem(g), steps: g });
    }
    for (const k of kernels) out.push(...kernelDrafts(stage, k));
  });
  return out;
}

// The cost model's time of a draft launch, as resolveLaunches will record it.
export function draftPredictedUs(d: DraftLaunch, cost: CostModel, precision: Precision): number {
  return launchUs(cost, draftWork(d, precision));
}

export function draftSteps(d: DraftLaunch): readonly Step[] {
  return d.kind === 'gemm_grouped' ? d.groups.flat() : d.steps;
}

function uniformStrides(entries: readonly GemmEntry[]): GemmStrides | null {
  const e0 = entries[0]!;
  const e1 = entries[1] ?? e0;
  const hasBias = e0.bias !== null;
  const d = (x: Ref, y: Ref): number | null => (x.arena === y.arena ? y.offset - x.offset : null);
  const sa = d(e0.a, e1.a);
  const sb = d(e0.b, e1.b);
  const sc = d(e0.c, e1.c);
  const sbias = hasBias ? (e1.bias ? d(e0.bias!, e1.bias) : null) : 0;
  if (sa === null || sb === null || sc === null || sbias === null) return null;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const ok = (x: Ref, y: Ref, s: number): boolean => x.arena === y.arena && x.offset === y.offset + i * s;
    if (!ok(e.a, e0.a, sa) || !ok(e.b, e0.b, sb) || !ok(e.c, e0.c, sc)) return null;
    if (hasBias !== (e.bias !== null) || (hasBias && !ok(e.bias!, e0.bias!, sbias))) return null;
  }
  return { a: sa, b: sb, c: sc, bias: sbias };
}

function label(d: DraftLaunch, tenants: number): string {
  const t = `${tenants} tenant${tenants === 1 ? '' : 's'}`;
  switch (d.kind) {
    case 'gemm':
      return `gemm ${d.problem.m}x${d.problem.n}x${d.problem.k} (${t})`;
    case 'gemm_grouped':
      return `gemm_grouped ${d.groups.length} shapes (${t})`;
    case 'kernel': {
      const n = d.params?.[0]?.length ?? 0;
      return `${d.op.op} ${d.kernel} (${t}${n > 0 ? `, ${n} param${n === 1 ? '' : 's'}` : ''})`; // params: per-tenant constants
    }
    default: {
      const never: never = d;
      throw new Error(`unknown launch ${JSON.stringify(never)}`);
    }
  }
}

export function resolveLaunches(drafts: readonly DraftLaunch[], where: (r: LRef) => Placement, cost: CostModel, precision: Precision): Launch[] {
  const ref = (r: LRef): Ref => {
    const p = where(r);
    return { arena: p.arena, offset: p.offset + r.offset };
  };
  const entriesOf = (steps: readonly GemmStep[]): GemmEntry[] =>
    steps.flatMap((s) =>
      s.entries.map((e) => ({
        tenant: s.tenant,
        a: ref(e.a),
        b: ref(e.b),
        c: ref(e.c),
        bias: e.bias ? ref(e.bias) : null,
        ...(e.residual ? { residual: ref(e.residual) } : {}),
      })),
    );
  return drafts.map((d, id): Launch => {
    const steps = draftSteps(d);
    const tenants = [...new Set(steps.map((s) => s.tenant))].sort((a, b) => a - b);
    const w = work(steps);
    const info: LaunchInfo = {
      stage: d.stage,
      label: label(d, tenants.length),
      tenants,
      sources: steps.map((s) => s.source),
      flops: w.flops,
      bytes: w.bytes,
      predictedUs: draftPredictedUs(d, cost, precision),
      ungroupedUs: steps.reduce((a, s) => a + launchUs(cost, stepWork(s, precision)), 0),
    };
    switch (d.kind) {
      case 'gemm': {
        const entries = entriesOf(d.steps);
        return { kind: 'gemm', id, dtype: d.dtype, problem: d.problem, entries, strides: uniformStrides(entries), info };
      }
      case 'gemm_grouped':
        return { kind: 'gemm_grouped', id, dtype: d.dtype, groups: d.groups.map((g) => ({ problem: groupProblem(g), entries: entriesOf(g) })), info };
      case 'kernel': {
        const segments: Segment[] = d.steps.flatMap(
          (s, i) =>
            s.segments.map(
              (g): Segment =>
                ({
                  tenant: s.tenant,
                  ...(g.shape !== undefined ? { shape: g.shape } : {}),
                  ...(d.params !== undefined ? { params: d.params[i] } : {}),
                  ...(g.dims !== undefined ? { dims: g.dims } : {}),
                  ...(g.count !== undefined ? { count: g.count } : {}),
                  ...(g.geom !== undefined ? { geom: g.geom } : {}),
                  inputs: g.inputs.map((v) => ({ ref: ref(v.ref), dtype: v.dtype, strides: v.strides })),
                  out: ref(g.out),
                  outDType: g.outDType,
                  ...(g.outStrides !== undefined ? { outStrides: g.outStrides } : {}),
                }) as Segment,
            ), // lowering sets exactly the op's fields (SEGMENT_FIELDS); validate() checks on write
        );
        return { kind: 'kernel', id, kernel: d.kernel, op: d.op, segments, info };
      }
      default: {
        const never: never = d;
        throw new Error(`unknown launch ${JSON.stringify(never)}`);
      }
    }
  });
}
