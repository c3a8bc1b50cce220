// The row order of the space-time chart: tenants that share launches sit next to each other, so each launch
// draws as one contiguous block. Putting every set of rows next to each other at once is the consecutive-ones
// problem; a lexicographic sort on membership (largest groups first) solves it when the groups nest, and a
// bounded local search mends the rest.

// Returns a permutation of 0..tenants-1 (plan tenant indices, top row first).
export function orderTenants(tenants: number, groups: ReadonlyArray<readonly number[]>): number[] {
  const sets = distinctGroups(tenants, groups);
  const member = sets.map((s) => {
    const m = new Uint8Array(tenants);
    for (const t of s.tenants) m[t] = 1;
    return m;
  });
  const order = Array.from({ length: tenants }, (_, i) => i);
  order.sort((a, b) => {
    for (const m of member) if (m[a] !== m[b]) return m[b]! - m[a]!;
    return a - b; // keep the plan's order among tenants that share everything
  });
  return improveOrder(
    order,
    member,
    sets.map((s) => s.weight),
  );
}

// The number of extra pieces the groups break into under `order`: 0 when every launch is one block.
export function countBreaks(order: readonly number[], groups: ReadonlyArray<readonly number[]>): number {
  let breaks = 0;
  const pos = new Map(order.map((t, i) => [t, i]));
  for (const g of groups) {
    const rows = [...new Set(g)].map((t) => pos.get(t)!).sort((a, b) => a - b);
    for (let i = 1; i < rows.length; i++) if (rows[i] !== rows[i - 1]! + 1) breaks++;
  }
  return breaks;
}

interface WeightedGroup {
  readonly tenants: readonly number[];
  readonly weight: number; // how many launches cover exactly this set
}

// Sets of 2..tenants-1 rows (a single row or every row is contiguous in any order), largest first.
function distinctGroups(tenants: number, groups: ReadonlyArray<readonly number[]>): WeightedGroup[] {
  const byKey = new Map<string, { tenants: number[]; weight: number; first: number }>();
  groups.forEach((g, i) => {
    const s = [...new Set(g)].filter((t) => t >= 0 && t < tenants).sort((a, b) => a - b);
    if (s.length < 2 || s.length >= tenants) return;
    const key = s.join(',');
    const e = byKey.get(key);
    if (e) e.weight++;
    else byKey.set(key, { tenants: s, weight: 1, first: i });
  });
  return [...byKey.values()].sort((a, b) => b.tenants.length - a.tenants.length || b.weight - a.weight || a.first - b.first);
}

function breaksOf(order: readonly number[], member: readonly Uint8Array[], weights: readonly number[]): number {
  let cost = 0;
  for (let s = 0; s < member.length; s++) {
    const m = member[s]!;
    let runs = 0;
    for (let i = 0; i < order.length; i++) if (m[order[i]!] && (i === 0 || !m[order[i - 1]!])) runs++;
    cost += (runs - 1) * weights[s]!;
  }
  return cost;
}

// Moves single rows to other positions while that lowers the weighted break count, within a fixed budget
// of evaluations so a fleet of hundreds of tenants still renders at once.
function improveOrder(start: number[], member: readonly Uint8Array[], weights: readonly number[]): number[] {
  let order = start;
  let best = breaksOf(order, member, weights);
  const n = order.length;
  let budget = 2_000_000 / Math.max(1, member.length * n);
  for (let pass = 0; pass < 4 && best > 0 && budget > 0; pass++) {
    let improved = false;
    for (let from = 0; from < n && best > 0 && budget > 0; from++) {
      for (let to = 0; to < n && budget > 0; to++) {
        if (to === from) continue;
        budget--;
        const next = order.slice();
        const [t] = next.splice(from, 1);
        next.splice(to, 0, t!);
        const cost = breaksOf(next, member, weights);
        if (cost < best) {
          order = next;
          best = cost;
          improved = true;
        }
      }
    }
    if (!improved) break;
  }
  return order;
}
