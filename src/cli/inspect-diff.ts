// `loom inspect --diff <old-plan> <new-plan>` as text: what changes when the new plan replaces the old one.
import type { PlanTotals } from '../fleet/summary.js';
import { fmtBytes, fmtUs, idsText } from '../fleet/summary.js';
import type { PlanDiff } from '../fleet/plan-diff.js';

const LIST_LIMIT = 20; // lines per list; --json has them all

export function formatPlanDiff(d: PlanDiff): string {
  const { tenants: t, launches: l, totals } = d;
  const a = totals.before;
  const b = totals.after;
  const out: string[] = [`plan diff ${d.oldDir} → ${d.newDir}`, ''];
  out.push(
    `tenants    ${a.tenants} → ${b.tenants}: ${t.added.length} added, ${t.removed.length} removed, ${t.changed.length} changed, ${t.unchanged} unchanged`,
  );
  out.push(
    ...limited(
      [
        ...t.added.map((id) => `  + ${id}`),
        ...t.removed.map((id) => `  - ${id}`),
        ...t.changed.map((c) => `  ~ ${c.id}: ${c.changes.join(', ')}${c.details.length > 0 ? ` (${c.details.join('; ')})` : ''}`),
      ],
      'tenants',
    ),
  );
  out.push(
    `launches   ${l.before} → ${l.after} per tick (stages ${a.stages} → ${b.stages}): ${l.kept} unchanged, ${l.regrouped.length} regrouped, ${l.gone.length} gone, ${l.new.length} new`,
  );
  out.push(
    ...limited(
      [
        ...l.regrouped.map(
          (r) =>
            `  ~ ${r.shape}: ${r.before} → ${r.after} tenants${r.joined.length > 0 ? `, joined ${idsText(r.joined)}` : ''}${r.left.length > 0 ? `, left ${idsText(r.left)}` : ''}`,
        ),
        ...l.gone.map((s) => `  - ${s}`),
        ...l.new.map((s) => `  + ${s}`),
      ],
      'launches',
    ),
  );
  out.push(
    `predicted  tick ${change(a.predictedTickUs, b.predictedTickUs, fmtUs)}, ungrouped ${change(a.ungroupedTickUs, b.ungroupedTickUs, fmtUs)}, floor ${change(a.floorUs, b.floorUs, fmtUs)} (${b.device})`,
  );
  out.push(
    `memory     ${change(total(a), total(b), fmtBytes)} on the device: weights ${change(a.arenas.weights, b.arenas.weights, fmtBytes)}, act ${change(a.arenas.act, b.arenas.act, fmtBytes)}, io ${change(a.arenas.io, b.arenas.io, fmtBytes)}`,
  );
  out.push(`           a swap loads the new plan beside the old one: ${fmtBytes(total(a) + total(b))} at its peak`);
  return out.join('\n');
}

function total(t: PlanTotals): number {
  return t.arenas.weights + t.arenas.act + t.arenas.io;
}

function change(x: number, y: number, fmt: (v: number) => string): string {
  if (x === y) return `${fmt(x)} (same)`;
  const pct = x > 0 ? ` (${y >= x ? '+' : ''}${(((y - x) / x) * 100).toFixed(1)}%)` : '';
  return `${fmt(x)} → ${fmt(y)}${pct}`;
}

function limited(lines: readonly string[], what: string): string[] {
  if (lines.length <= LIST_LIMIT) return [...lines];
  return [...lines.slice(0, LIST_LIMIT), `  … and ${lines.length - LIST_LIMIT} more ${what} (--json lists them all)`];
}
