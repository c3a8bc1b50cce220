// Two plan directories compared, as data (`loom inspect --diff <old-plan> <new-plan>`): which tenants were
// added, removed or changed (graph, weights or settings), which launches were regrouped, and the predicted
// tick and arena sizes before and after. What an operator reads before swapping plans under `loom serve`.
//
// A tenant's graph is compared by its share of every launch with all byte offsets left out (they move when any
// other tenant changes), plus its I/O and layer count; its weights by a hash of the weight blobs its launches
// read, in the order they read them (weights.bin is read in ranges, never whole).
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Launch } from '../../ir/contract/launch.js';
import type { LaunchPlan } from '../../ir/contract/launch-plan.js';
import type { PlannedTenant } from '../../ir/contract/plan.js';
import { fail } from '../../ir/errors.js';
import { openRegularFile } from '../../ir/files.js';
import { readPlanDir } from '../../codegen/index.js';
import { type PlanTotals, launchRows, planTotals } from './summary.js';

export type TenantChange = 'graph' | 'weights' | 'settings';

export interface ChangedTenant {
  readonly id: string;
  readonly changes: readonly TenantChange[];
  readonly details: readonly string[]; // e.g. "layers 3 → 5", "maxBatch 1 → 4"
}

export interface RegroupedLaunch {
  readonly shape: string; // kind and shape, the same in both plans
  readonly before: number; // tenants in the old plan's launch
  readonly after: number;
  readonly joined: readonly string[];
  readonly left: readonly string[];
}

export interface PlanDiff {
  readonly oldDir: string;
  readonly newDir: string;
  readonly tenants: {
    readonly added: readonly string[];
    readonly removed: readonly string[];
    readonly changed: readonly ChangedTenant[];
    readonly unchanged: number;
  };
  readonly launches: {
    readonly before: number;
    readonly after: number;
    readonly kept: number; // same shape, same tenants
    readonly regrouped: readonly RegroupedLaunch[];
    readonly gone: readonly string[]; // shapes only the old plan launches
    readonly new: readonly string[]; // shapes only the new plan launches
  };
  readonly totals: { readonly before: PlanTotals; readonly after: PlanTotals };
}

interface Side {
  readonly dir: string;
  readonly plan: LaunchPlan;
}

export function diffPlanDirs(oldDir: string, newDir: string): PlanDiff {
  const a: Side = { dir: oldDir, plan: readPlanDir(oldDir) };
  const b: Side = { dir: newDir, plan: readPlanDir(newDir) };
  return diffPlans(a, b);
}

function diffPlans(a: Side, b: Side): PlanDiff {
  const oldIds = new Map(a.plan.tenants.map((t, i) => [t.id, i]));
  const newIds = new Map(b.plan.tenants.map((t, i) => [t.id, i]));
  const added = b.plan.tenants.filter((t) => !oldIds.has(t.id)).map((t) => t.id);
  const removed = a.plan.tenants.filter((t) => !newIds.has(t.id)).map((t) => t.id);
  const kept = b.plan.tenants.filter((t) => oldIds.has(t.id));
  const shareA = tenantShares(a.plan);
  const shareB = tenantShares(b.plan);
  const weightsA = weightHashes(
    a,
    kept.map((t) => oldIds.get(t.id)!),
  );
  const weightsB = weightHashes(
    b,
    kept.map((t) => newIds.get(t.id)!),
  );
  const changed: ChangedTenant[] = [];
  for (const t of kept) {
    const i = oldIds.get(t.id)!;
    const j = newIds.get(t.id)!;
    const before = a.plan.tenants[i]!;
    const changes: TenantChange[] = [];
    const details: string[] = [];
    if (graphSignature(before, shareA[i]!) !== graphSignature(t, shareB[j]!)) {
      changes.push('graph');
      if (before.layers !== t.layers) details.push(`layers ${before.layers} → ${t.layers}`);
      if (ioText(before) !== ioText(t)) details.push(`I/O ${ioText(before)} → ${ioText(t)}`);
    }
    if (weightsA.get(i) !== weightsB.get(j)) changes.push('weights');
    const settings = settingChanges(before, t);
    if (settings.length > 0) changes.push('settings');
    details.push(...settings);
    if (changes.length > 0) changed.push({ id: t.id, changes, details });
  }
  return {
    oldDir: a.dir,
    newDir: b.dir,
    tenants: { added, removed, changed, unchanged: kept.length - changed.length },
    launches: diffLaunches(a.plan, b.plan),
    totals: { before: planTotals(a.plan), after: planTotals(b.plan) },
  };
}

// ---- graphs ---------------------------------------------------------------------------------------------

// Every launch's part that belongs to each tenant, as text without byte offsets, in launch order. A GEMM reads
// the same whether it shares a strided, batched or grouped launch, so regrouping alone changes no tenant.
function tenantShares(plan: LaunchPlan): string[][] {
  const out = plan.tenants.map(() => [] as string[]);
  for (const l of plan.launches) {
    for (const [tenant, part] of launchParts(l)) out[tenant]?.push(withoutRefs(part));
  }
  return out;
}

function launchParts(l: Launch): [number, unknown][] {
  switch (l.kind) {
    case 'gemm':
      return l.entries.map((e) => [e.tenant, { gemm: l.dtype, problem: l.problem, e }]);
    case 'gemm_grouped':
      return l.groups.flatMap((g) => g.entries.map((e): [number, unknown] => [e.tenant, { gemm: l.dtype, problem: g.problem, e }]));
    case 'kernel':
      return l.segments.map((s) => [s.tenant, { kernel: l.op, s }]);
    default: {
      const never: never = l;
      throw new Error(`unknown launch kind ${JSON.stringify(never)}`);
    }
  }
}

// JSON with every Ref (`{arena, offset}`) reduced to its arena, and tenant indices dropped.
function withoutRefs(v: unknown): string {
  return JSON.stringify(v, (k, x: unknown) => {
    if (k === 'tenant') return undefined;
    if (typeof x === 'object' && x !== null && 'arena' in x && 'offset' in x) return (x as { arena: string }).arena;
    return x;
  });
}

function graphSignature(t: PlannedTenant, share: readonly string[]): string {
  return createHash('sha256')
    .update(JSON.stringify({ layers: t.layers, io: ioText(t), share }))
    .digest('hex');
}

function ioText(t: PlannedTenant): string {
  const one = (x: { name: string; dtype: string; shape: readonly number[] }) => `${x.name}:${x.dtype}[${x.shape.join(',')}]`;
  return `(${t.inputs.map(one).join(', ')}) -> (${t.outputs.map(one).join(', ')})`;
}

function settingChanges(a: PlannedTenant, b: PlannedTenant): string[] {
  const out: string[] = [];
  if (a.maxBatch !== b.maxBatch) out.push(`maxBatch ${a.maxBatch} → ${b.maxBatch}`);
  if (a.sloMs !== b.sloMs) out.push(`sloMs ${a.sloMs ?? 'none'} → ${b.sloMs ?? 'none'}`);
  if ((a.checkFinite ?? false) !== (b.checkFinite ?? false)) out.push(`checkFinite ${a.checkFinite ?? false} → ${b.checkFinite ?? false}`);
  if (a.model !== b.model) out.push(`model ${a.model} → ${b.model}`);
  return out;
}

// ---- weights --------------------------------------------------------------------------------------------

// For each tenant index asked for: sha256 over the weight blobs its launches read, in the order first read.
function weightHashes(side: Side, tenants: readonly number[]): Map<number, string> {
  const { plan } = side;
  const blobs = [...plan.weights.blobs].sort((x, y) => x.offset - y.offset);
  const blobAt = (offset: number): number => {
    let lo = 0;
    let hi = blobs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (blobs[mid]!.offset <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const wanted = new Set(tenants);
  const read = new Map<number, number[]>(); // tenant → blob indices, first-read order
  for (const l of plan.launches) {
    for (const [tenant, part] of launchParts(l)) {
      if (!wanted.has(tenant)) continue;
      const list = read.get(tenant) ?? [];
      read.set(tenant, list);
      for (const off of weightOffsets(part)) {
        const k = blobAt(off);
        if (!list.includes(k)) list.push(k);
      }
    }
  }
  const file = path.join(side.dir, plan.weights.file);
  const f = openRegularFile(file, { what: 'weights file', maxBytes: Number.MAX_SAFE_INTEGER });
  try {
    if (f.size !== plan.weights.bytes) fail('PLAN_INVALID', `'${file}' is ${f.size} bytes; plan.json says ${plan.weights.bytes}`);
    const out = new Map<number, string>();
    for (const t of tenants) {
      const h = createHash('sha256');
      for (const k of read.get(t) ?? []) {
        const blob = blobs[k]!;
        h.update(`${blob.dtype}[${blob.shape.join(',')}]`).update(f.read(blob.offset, blob.bytes));
      }
      out.set(t, h.digest('hex'));
    }
    return out;
  } finally {
    f.close();
  }
}

function weightOffsets(v: unknown, out: number[] = []): number[] {
  if (Array.isArray(v)) for (const x of v) weightOffsets(x, out);
  else if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    if (o.arena === 'weights' && typeof o.offset === 'number') out.push(o.offset);
    else for (const x of Object.values(o)) weightOffsets(x, out);
  }
  return out;
}

// ---- launches -------------------------------------------------------------------------------------------

// Launches are matched by their label without the tenant count (in order, when several share one); a matched
// pair whose tenants differ was regrouped.
function diffLaunches(a: LaunchPlan, b: LaunchPlan): PlanDiff['launches'] {
  const rowsA = launchRows(a);
  const rowsB = launchRows(b);
  // the label without its tenant count: "gemm 8x64x72", "eltwise eltwise_e9f91d1c" (the kernel's content hash)
  const shapeOf = (l: Launch) => l.info.label.replace(/ \(\d+ tenants?\)$/, '');
  const pending = new Map<string, { tenants: readonly string[] }[]>();
  a.launches.forEach((l, i) => {
    const key = shapeOf(l);
    pending.set(key, [...(pending.get(key) ?? []), { tenants: rowsA[i]!.tenants }]);
  });
  let kept = 0;
  const regrouped: RegroupedLaunch[] = [];
  const fresh: string[] = [];
  b.launches.forEach((l, i) => {
    const key = shapeOf(l);
    const list = pending.get(key);
    const old = list?.shift();
    if (old === undefined) {
      fresh.push(`${key} (${rowsB[i]!.tenants.length} tenants)`);
      return;
    }
    const now = rowsB[i]!.tenants;
    const joined = now.filter((t) => !old.tenants.includes(t));
    const left = old.tenants.filter((t) => !now.includes(t));
    if (joined.length === 0 && left.length === 0) kept++;
    else regrouped.push({ shape: key, before: old.tenants.length, after: now.length, joined, left });
  });
  const gone = [...pending].flatMap(([key, list]) => list.map((o) => `${key} (${o.tenants.length} tenants)`));
  return { before: a.launches.length, after: b.launches.length, kept, regrouped, gone, new: fresh };
}
