// `loom bench --occupancy 0.1,0.5,1`: what a tick costs when only some tenants have work. For each fraction
// f, ceil(f × T) live tenants, chosen round robin over the fleet's model kinds (so 10% is not all one kind),
// run the plan with only their inputs (every live tenant at maxBatch rows); each row's cost is relative to
// the full tick. The issue's target: a tick at 10% occupancy costs <= 0.4x a full tick.
import os from 'node:os';
import path from 'node:path';
import { type LaunchPlan, readPlanDir } from '../../codegen/index.js';
import { fail } from '../../ir/errors.js';
import type { PlannedTenant } from '../../ir/contract/plan.js';
import { type TickInputs, type TickOutputs, clockOf, loadPlan } from '../../runtime/index.js';
import { benchInputs, deviceOf, worstError } from './run.js';
import { type TickStats, tickStats } from './stats.js';
import { benchLoadOptions, deviceStats, timeInterleaved } from './timing.js';

export const OCCUPANCY_FORMAT = 'loom-bench-occupancy';
export const OCCUPANCY_TARGET = { fraction: 0.1, maxRatio: 0.4 } as const;
const AGREE_TOLERANCE = 1e-5; // the live tenants run the same launches on the same rows: equal up to reduction order

// "0.1,0.5,1" → [0.1, 0.5, 1]: each 0 < f <= 1, no repeats, in the order given.
export function parseOccupancy(list: string): number[] {
  const parts = list.split(',').map((s) => s.trim());
  if (parts.length === 0 || parts.some((p) => p === ''))
    fail('USAGE', `--occupancy must be a comma-separated list of fractions in (0, 1], e.g. 0.1,0.5,1; got '${list}'`);
  const out: number[] = [];
  for (const p of parts) {
    const f = Number(p);
    if (!Number.isFinite(f) || f <= 0 || f > 1) fail('USAGE', `--occupancy: '${p}' is not a fraction in (0, 1] (the share of tenants with work: 0.1 = 10%)`);
    if (out.includes(f)) fail('USAGE', `--occupancy: ${p} is given twice`);
    out.push(f);
  }
  return out;
}

// Tenants of one kind have the same architecture: the same lowered steps and the same I/O table.
function kindOf(t: PlannedTenant): string {
  const io = (x: PlannedTenant['inputs']) => x.map((v) => `${v.name}:${v.dtype}[${v.shape.join(',')}]`).join(' ');
  return `${t.layers}|${io(t.inputs)}|${io(t.outputs)}`;
}

// The live set for fraction f: ceil(f × T) tenants, taken round robin over the kinds (kinds in plan order,
// tenants in plan order within a kind); returned in plan order. Deterministic for a given plan.
export function liveTenants(plan: LaunchPlan, fraction: number): string[] {
  if (!(fraction > 0 && fraction <= 1)) fail('USAGE', `occupancy must be in (0, 1], got ${fraction}`);
  const n = Math.min(plan.tenants.length, Math.ceil(fraction * plan.tenants.length - 1e-9));
  const kinds = new Map<string, number[]>();
  plan.tenants.forEach((t, i) => {
    const k = kindOf(t);
    kinds.set(k, [...(kinds.get(k) ?? []), i]);
  });
  const lists = [...kinds.values()];
  const picked: number[] = [];
  for (let round = 0; picked.length < n; round++) {
    for (const l of lists) if (round < l.length && picked.length < n) picked.push(l[round]!);
  }
  return picked.sort((a, b) => a - b).map((i) => plan.tenants[i]!.id);
}

export function kindCount(plan: LaunchPlan): number {
  return new Set(plan.tenants.map(kindOf)).size;
}

export interface OccupancyOptions {
  readonly fractions: readonly number[];
  readonly backend?: 'auto' | 'cpu' | 'cuda';
  readonly ticks?: number; // timed ticks per fraction (default 200)
  readonly warmup?: number; // untimed ticks per fraction first (default 20)
  readonly threads?: number;
}

export interface OccupancyRow {
  readonly fraction: number;
  readonly live: readonly string[]; // tenant ids, plan order
  readonly liveRows: number; // every live tenant at maxBatch
  readonly tickUs: TickStats; // wall clock around runTick
  readonly deviceTickUs: TickStats | null; // CUDA: benchTick(iters, live) device time; null on CPU
  readonly relativeToFull: number; // tick p50 / the full tick's p50
  readonly deviceRelativeToFull: number | null;
  readonly maxRelErrorVsFull: number; // live tenants' outputs vs the same tenants in the full tick
}

export interface OccupancyResult {
  readonly format: typeof OCCUPANCY_FORMAT;
  readonly version: 1;
  readonly date: string;
  readonly planDir: string;
  readonly backend: 'cpu' | 'cuda';
  readonly device: string;
  readonly deviceInfo: Readonly<Record<string, string | number>>;
  readonly host: { readonly cpus: number; readonly cpuModel: string; readonly node: string; readonly loadAverage: readonly [number, number] };
  readonly settings: { readonly ticks: number; readonly warmup: number; readonly threads: number | null };
  readonly fleet: { readonly tenants: number; readonly kinds: number; readonly launches: number; readonly rowsPerTick: number };
  readonly full: { readonly tickUs: TickStats; readonly deviceTickUs: TickStats | null };
  readonly rows: readonly OccupancyRow[];
  // measured on the device time where there is one, else the wall clock; null when 0.1 was not asked for
  readonly target: {
    readonly fraction: number;
    readonly maxRatio: number;
    readonly measure: 'device p50' | 'tick p50';
    readonly ratio: number | null;
    readonly met: boolean | null;
  };
}

function onlyLive(all: TickInputs, live: readonly string[]): TickInputs {
  return Object.fromEntries(live.map((id) => [id, all[id]!]));
}

export async function benchOccupancy(planDir: string, opts: OccupancyOptions): Promise<OccupancyResult> {
  const ticks = opts.ticks ?? 200;
  const warmup = opts.warmup ?? 20;
  if (!Number.isInteger(ticks) || ticks < 1) fail('USAGE', `ticks must be a positive integer, got ${ticks}`);
  if (!Number.isInteger(warmup) || warmup < 0) fail('USAGE', `warmup must be a non-negative integer, got ${warmup}`);
  if (opts.fractions.length === 0) fail('USAGE', 'occupancy needs at least one fraction');
  const plan = readPlanDir(planDir);
  const sets = [1, ...opts.fractions].map((f) => ({ fraction: f, live: liveTenants(plan, f) })); // [0]: the full tick, the reference
  const loadBefore = os.loadavg()[0]!;
  const loaded = await loadPlan(planDir, benchLoadOptions(opts));
  try {
    const all = benchInputs(plan);
    const inputs = sets.map((s) => onlyLive(all, s.live));
    const fullOut = await loaded.runTick(all);
    const errors: number[] = [];
    for (const [k, s] of sets.entries()) errors.push(errorVsFull(await loaded.runTick(inputs[k]!), fullOut, plan, s.live));
    const bad = sets.map((s, k) => ({ s, e: errors[k]! })).filter((x) => !(x.e <= AGREE_TOLERANCE));
    if (bad.length > 0)
      fail(
        'EVAL',
        `occupancy: the live tenants' outputs differ from the full tick's at ${bad.map((x) => `${x.s.fraction} (rel. error ${x.e.toExponential(2)})`).join(', ')}`,
      );

    for (const inp of inputs) for (let i = 0; i < warmup; i++) await loaded.runTick(inp);
    const samples = await timeInterleaved(sets.length, ticks, (k) => loaded.runTick(inputs[k]!));
    const device = sets.map((s) => (loaded.backend === 'cuda' ? deviceStats(() => loaded.benchTick(ticks, s.live)) : null));
    const stats = samples.map(tickStats);
    const fullP50 = stats[0]!.p50;
    const fullDevice = device[0]?.p50 ?? null;
    const rows = sets.slice(1).map((s, i): OccupancyRow => {
      const k = i + 1;
      const dev = device[k] ?? null;
      return {
        fraction: s.fraction,
        live: s.live,
        liveRows: s.live.reduce((a, id) => a + plan.tenants.find((t) => t.id === id)!.maxBatch, 0),
        tickUs: stats[k]!,
        deviceTickUs: dev,
        relativeToFull: stats[k]!.p50 / fullP50,
        deviceRelativeToFull: dev !== null && fullDevice !== null ? dev.p50 / fullDevice : null,
        maxRelErrorVsFull: errors[k]!,
      };
    });
    const backend = clockOf(loaded.backend);
    return {
      format: OCCUPANCY_FORMAT,
      version: 1,
      date: new Date().toISOString(),
      planDir: path.resolve(planDir),
      backend,
      ...deviceOf(backend, loaded),
      host: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version, loadAverage: [loadBefore, os.loadavg()[0]!] },
      settings: { ticks, warmup, threads: opts.threads ?? null },
      fleet: {
        tenants: plan.tenants.length,
        kinds: kindCount(plan),
        launches: plan.launches.length,
        rowsPerTick: plan.tenants.reduce((a, t) => a + t.maxBatch, 0),
      },
      full: { tickUs: stats[0]!, deviceTickUs: device[0] ?? null },
      rows,
      target: targetOf(rows),
    };
  } finally {
    loaded.close();
  }
}

function targetOf(rows: readonly OccupancyRow[]): OccupancyResult['target'] {
  const r = rows.find((x) => x.fraction === OCCUPANCY_TARGET.fraction);
  const measure = r?.deviceRelativeToFull != null ? 'device p50' : 'tick p50';
  const ratio = r ? (r.deviceRelativeToFull ?? r.relativeToFull) : null;
  return { ...OCCUPANCY_TARGET, measure, ratio, met: ratio === null ? null : ratio <= OCCUPANCY_TARGET.maxRatio };
}

// The live tenants' outputs against the full tick's; a tenant without work must get no outputs at all.
function errorVsFull(got: TickOutputs, full: TickOutputs, plan: LaunchPlan, live: readonly string[]): number {
  if (Object.keys(got).some((id) => !live.includes(id))) return Infinity;
  return worstError(got, full, plan, live);
}
