// Sharding: which tenants go on which device when a fleet outgrows one. The partitioner works on groups of
// tenants ("pieces") and asks a `measure` function (the planner's cost model on the real lowered graphs, see
// shard-compile.ts) for a piece's predicted tick and device bytes. It starts from batch classes (tenants whose
// layers the planner batches together, found by planning pairs), places pieces longest-tick first on the
// shard with the least predicted tick that still has room (device memory) and keeps every tenant's SLO
// (a shard's tick at most sloMs/2: a request may wait for the running tick, then runs in the next), and splits
// a class only when that is what balances the shards or makes them fit.
import { fail } from '../../ir/errors.js';
import { formatBytes } from '../../ir/limits.js';

export interface PieceCost {
  readonly tickUs: number; // predicted tick of these tenants planned together
  readonly bytes: number; // weights + activations + io arenas of that plan
}

export interface ShardTenant {
  readonly id: string;
  readonly sloMs: number | null;
}

export interface PartitionInput {
  readonly tenants: readonly ShardTenant[];
  readonly classes: readonly (readonly number[])[]; // tenant indices, each class in manifest order; every tenant in one class
  readonly shards: number;
  readonly budgetBytes: number; // device memory per shard
  readonly measure: (members: readonly number[]) => PieceCost; // members sorted ascending
}

export interface PartitionShard {
  readonly tenants: readonly number[]; // ascending
  readonly tickUs: number; // measure() of the shard's tenants: its planned tick
  readonly bytes: number;
}

export type PartitionResult =
  | { readonly ok: true; readonly shards: readonly PartitionShard[]; readonly splits: number }
  | { readonly ok: false; readonly reason: string };

// A shard's tick must leave room for one tick of waiting: tick ≤ sloMs / 2.
export const sloTickCapUs = (sloMs: number | null): number => (sloMs === null ? Number.POSITIVE_INFINITY : (sloMs * 1000) / 2);

// Spread between the slowest and the fastest shard that the partitioner accepts without splitting further.
const TARGET_SPREAD = 0.1;

interface Piece {
  readonly members: readonly number[];
  readonly cost: PieceCost;
  readonly capUs: number; // the tightest SLO cap of its tenants
}

interface Assignment {
  readonly ok: boolean;
  readonly shards: { members: number[]; tickUs: number; bytes: number; capUs: number; pieces: Piece[] }[];
  readonly failed: Piece | null; // the piece that found no shard
  readonly failure: 'memory' | 'slo' | null;
}

export function partition(input: PartitionInput): PartitionResult {
  const { tenants, shards: n, budgetBytes } = input;
  if (!Number.isInteger(n) || n < 1) fail('USAGE', `--shards must be a positive integer, got ${n}`);
  if (n > tenants.length) fail('USAGE', `--shards ${n}: the fleet has only ${tenants.length} tenant${tenants.length === 1 ? '' : 's'}; every shard needs one`);
  const cache = new Map<string, PieceCost>();
  const piece = (members: readonly number[]): Piece => {
    const sorted = [...members].sort((a, b) => a - b);
    const key = sorted.join(',');
    let cost = cache.get(key);
    if (cost === undefined) cache.set(key, (cost = input.measure(sorted)));
    return { members: sorted, cost, capUs: Math.min(...sorted.map((i) => sloTickCapUs(tenants[i]!.sloMs))) };
  };

  // a tenant that cannot run alone within the budget or its SLO makes every partition impossible
  const tooBig = tenants.map((_, i) => i).filter((i) => piece([i]).cost.bytes > budgetBytes);
  if (tooBig.length > 0) {
    const worst = tooBig.reduce((a, b) => (piece([b]).cost.bytes > piece([a]).cost.bytes ? b : a));
    const others = tooBig.length > 1 ? ` (${tooBig.length - 1} other tenant${tooBig.length === 2 ? '' : 's'} too)` : '';
    return {
      ok: false,
      reason: `tenant '${tenants[worst]!.id}' alone needs ${bytesText(piece([worst]).cost.bytes)} of device memory, more than --device-memory ${bytesText(budgetBytes)}${others}; no number of shards fits it`,
    };
  }
  for (let i = 0; i < tenants.length; i++) {
    const alone = piece([i]);
    if (alone.cost.tickUs > alone.capUs)
      return {
        ok: false,
        reason: `tenant '${tenants[i]!.id}' alone predicts a ${alone.cost.tickUs.toFixed(1)} us tick, more than half its sloMs ${tenants[i]!.sloMs} (a request may wait one tick, then run one); no sharding meets it`,
      };
  }

  // Placement on the sums of the pieces' ticks (cheap), splitting while that helps; then the first fit (fewest
  // splits) and the best one are refined on planned shards, where pieces of different classes batch too.
  let pieces = input.classes.map((c) => piece(c));
  let first: { a: Assignment; splits: number } | null = null;
  let best: { a: Assignment; splits: number } | null = null;
  let splits = 0;
  for (let round = 0; round <= tenants.length; round++) {
    const a = assign(pieces, n, budgetBytes);
    if (a.ok && first === null) first = { a, splits };
    if (a.ok && (best === null || maxTick(a) < maxTick(best.a) * 0.98)) best = { a, splits };
    const next = a.ok ? splitForBalance(a) : splitForFit(a, pieces);
    if (next === null) break;
    pieces = [...pieces.filter((p) => p !== next), ...halves(next).map(piece)];
    splits++;
  }
  if (best === null || first === null) return { ok: false, reason: '' }; // the caller reports how many shards would do
  const shardCost = (ps: readonly Piece[]) => piece(ps.flatMap((p) => p.members)).cost;
  const candidates = [first, best].map((c) => ({ shards: refine(c.a, shardCost, budgetBytes), splits: c.splits }));
  const worst = (ss: readonly Piece[][]) => Math.max(...ss.map((ps) => shardCost(ps).tickUs));
  const chosen = worst(candidates[1]!.shards) < worst(candidates[0]!.shards) * 0.98 ? candidates[1]! : candidates[0]!;
  const shards = chosen.shards
    .map((ps) => {
      const cost = shardCost(ps);
      return { tenants: ps.flatMap((p) => p.members).sort((x, y) => x - y), tickUs: cost.tickUs, bytes: cost.bytes };
    })
    .sort((x, y) => x.tenants[0]! - y.tenants[0]!); // shard 0 holds the first tenant: stable numbering
  return { ok: true, shards, splits: chosen.splits };
}

// Local search on planned shards: move one piece off the slowest shard, or swap it with a piece of another shard,
// while that lowers the slowest shard's planned tick and keeps every shard within the budget and its SLO caps.
function refine(a: Assignment, cost: (ps: readonly Piece[]) => PieceCost, budgetBytes: number): Piece[][] {
  const shards = a.shards.map((s) => [...s.pieces]);
  const fits = (ps: readonly Piece[]) => {
    if (ps.length === 0) return false;
    const c = cost(ps);
    return c.bytes <= budgetBytes && c.tickUs <= Math.min(...ps.map((p) => p.capUs));
  };
  for (let round = 0; round < 4 * shards.flat().length; round++) {
    const ticks = shards.map((ps) => cost(ps).tickUs);
    const hi = ticks.indexOf(Math.max(...ticks));
    let move: { j: number; from: Piece[]; to: Piece[]; max: number } | null = null;
    for (const [i, p] of shards[hi]!.entries()) {
      const rest = shards[hi]!.filter((_, k) => k !== i);
      for (let j = 0; j < shards.length; j++) {
        if (j === hi) continue;
        const options: [Piece[], Piece[]][] = rest.length > 0 ? [[rest, [...shards[j]!, p]]] : [];
        for (const [m, q] of shards[j]!.entries())
          options.push([
            [...rest, q],
            [...shards[j]!.filter((_, k) => k !== m), p],
          ]);
        for (const [from, to] of options) {
          if (!fits(from) || !fits(to)) continue;
          const max = Math.max(...ticks.map((t, k) => (k === hi ? cost(from).tickUs : k === j ? cost(to).tickUs : t)));
          if (max < ticks[hi]! - 1e-9 && (move === null || max < move.max)) move = { j, from, to, max };
        }
      }
    }
    if (move === null) break;
    shards[hi] = move.from;
    shards[move.j] = move.to;
  }
  return shards;
}

// Longest-tick first onto the shard with the least tick that has room and keeps every SLO cap. Ties go to the
// lower shard and the earlier piece, so the same fleet always gives the same shards.
function assign(pieces: readonly Piece[], n: number, budgetBytes: number): Assignment {
  // pieces with the tightest SLO caps first (they need the emptiest shards), then the longest ticks
  const order = [...pieces].sort((a, b) => a.capUs - b.capUs || b.cost.tickUs - a.cost.tickUs || b.cost.bytes - a.cost.bytes || a.members[0]! - b.members[0]!);
  const shards = Array.from({ length: n }, () => ({ members: [] as number[], tickUs: 0, bytes: 0, capUs: Number.POSITIVE_INFINITY, pieces: [] as Piece[] }));
  for (const p of order) {
    let target: (typeof shards)[number] | null = null;
    let failure: 'memory' | 'slo' = 'memory';
    for (const s of shards) {
      if (s.bytes + p.cost.bytes > budgetBytes) continue;
      if (s.tickUs + p.cost.tickUs > Math.min(s.capUs, p.capUs)) {
        failure = 'slo';
        continue;
      }
      if (target === null || s.tickUs < target.tickUs) target = s;
    }
    if (target === null) return { ok: false, shards, failed: p, failure };
    target.members.push(...p.members);
    target.tickUs += p.cost.tickUs;
    target.bytes += p.cost.bytes;
    target.capUs = Math.min(target.capUs, p.capUs);
    target.pieces.push(p);
  }
  // an empty shard would be a device with nothing to do: take the lightest splittable piece apart instead
  if (shards.some((s) => s.members.length === 0)) return { ok: false, shards, failed: null, failure: null };
  return { ok: true, shards, failed: null, failure: null };
}

const maxTick = (a: Assignment): number => Math.max(...a.shards.map((s) => s.tickUs));

// Balanced enough, or nothing left to split on the slowest shard: null.
function splitForBalance(a: Assignment): Piece | null {
  const ticks = a.shards.map((s) => s.tickUs);
  const hi = Math.max(...ticks);
  const lo = Math.min(...ticks);
  if (lo > 0 && hi / lo - 1 <= TARGET_SPREAD) return null;
  const slowest = a.shards.find((s) => s.tickUs === hi)!;
  return largest(slowest.pieces, (p) => p.cost.tickUs);
}

// The piece that found no shard (memory or SLO), else (an empty shard) the piece with the most tenants.
function splitForFit(a: Assignment, pieces: readonly Piece[]): Piece | null {
  if (a.failed !== null && a.failed.members.length > 1) return a.failed;
  const byFailure = a.failure === 'slo' ? (p: Piece) => p.cost.tickUs : (p: Piece) => p.cost.bytes;
  return a.failed !== null ? largest(pieces, byFailure) : largest(pieces, (p) => p.members.length);
}

function largest(pieces: readonly Piece[], key: (p: Piece) => number): Piece | null {
  let best: Piece | null = null;
  for (const p of pieces) if (p.members.length > 1 && (best === null || key(p) > key(best))) best = p;
  return best;
}

// Halves of a piece in manifest order (its first half of tenants, its second).
function halves(p: Piece): number[][] {
  const mid = Math.ceil(p.members.length / 2);
  return [p.members.slice(0, mid), p.members.slice(mid)];
}

export const bytesText = formatBytes; // "269.5 KiB (275968 bytes)"

// Batch classes: a tenant joins the first class whose first tenant it batches with: planned together, the pair's
// predicted tick is at most (1 - minGain) of the two ticks planned apart. `together(i, j)` plans the pair.
export function batchClasses(count: number, aloneUs: (i: number) => number, togetherUs: (i: number, j: number) => number, minGain = 0.2): number[][] {
  const classes: number[][] = [];
  for (let i = 0; i < count; i++) {
    const home = classes.find((c) => togetherUs(c[0]!, i) <= (1 - minGain) * (aloneUs(c[0]!) + aloneUs(i)));
    if (home) home.push(i);
    else classes.push([i]);
  }
  return classes;
}
