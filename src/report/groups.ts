// Tenant groups for plans too large for one chart row a tenant: tenants with the same model file, maxBatch,
// SLO and set of launches share a row (they are indistinguishable in the chart anyway), so 10,000 tenants of
// 16 model files draw as 16 rows. Past MAX_GROUP_ROWS groups the largest keep their rows and the rest share
// one "other" row (a launch then covers that row when it covers any of its tenants).
import type { ReportPlan } from './model.js';

export const CHART_TENANT_ROWS = 200; // more tenants than this: the chart groups them
export const MAX_GROUP_ROWS = 60;
const SAMPLE = 5; // tenant ids a group names

export interface TenantGroup {
  readonly label: string; // unique; the chart row's name
  readonly members: readonly number[]; // plan tenant indices, plan order
  readonly sample: readonly string[]; // the first few members' ids
  readonly model: string | null;
  readonly maxBatch: number | null; // null: members differ (the other row)
  readonly sloMs: number | null;
  readonly layers: number | null;
}

export interface GroupedPlan {
  readonly plan: ReportPlan; // one tenant a group; launches cover group indices
  readonly groups: readonly TenantGroup[];
}

function modelName(model: string | undefined): string | null {
  if (!model) return null;
  return model.replace(/^.*[\\/]/, '').replace(/\.onnx$/i, '');
}

export function groupTenants(plan: ReportPlan): GroupedPlan {
  const covering: number[][] = plan.tenants.map(() => []);
  for (const l of plan.launches) for (const t of new Set(l.info.tenants)) covering[t]?.push(l.id);
  const byKey = new Map<string, number[]>();
  plan.tenants.forEach((t, i) => {
    const key = `${t.model ?? ''}|${t.maxBatch}|${t.sloMs ?? ''}|${t.layers}|${covering[i]!.join(',')}`;
    const list = byKey.get(key);
    if (list) list.push(i);
    else byKey.set(key, [i]);
  });
  const sets = [...byKey.values()].sort((a, b) => b.length - a.length || a[0]! - b[0]!);
  const kept = sets.length > MAX_GROUP_ROWS ? sets.slice(0, MAX_GROUP_ROWS - 1) : sets;
  const rest = sets
    .slice(kept.length)
    .flat()
    .sort((a, b) => a - b);
  const used = new Set<string>();
  const unique = (label: string) => {
    let l = label;
    for (let k = 2; used.has(l); k++) l = `${label} [${k}]`;
    used.add(l);
    return l;
  };
  const groups: TenantGroup[] = kept.map((members) => {
    const t = plan.tenants[members[0]!]!;
    const name = modelName(t.model) ?? `${t.layers}-layer model`;
    return {
      label: unique(`${members.length} × ${name}${t.maxBatch !== 1 ? ` b${t.maxBatch}` : ''}`),
      members,
      sample: members.slice(0, SAMPLE).map((i) => plan.tenants[i]!.id),
      model: t.model ?? null,
      maxBatch: t.maxBatch,
      sloMs: t.sloMs ?? null,
      layers: t.layers,
    };
  });
  if (rest.length > 0)
    groups.push({
      label: unique(`${rest.length} × other (${sets.length - kept.length} groups)`),
      members: rest,
      sample: rest.slice(0, SAMPLE).map((i) => plan.tenants[i]!.id),
      model: null,
      maxBatch: null,
      sloMs: null,
      layers: null,
    });
  const groupOf = new Int32Array(plan.tenants.length);
  groups.forEach((g, k) => {
    for (const i of g.members) groupOf[i] = k;
  });
  const tenants = groups.map((g) => ({
    id: g.label,
    layers: g.layers ?? g.members.reduce((a, i) => Math.max(a, plan.tenants[i]!.layers), 0),
    maxBatch: g.maxBatch ?? g.members.reduce((a, i) => Math.max(a, plan.tenants[i]!.maxBatch), 0),
    ...(g.model !== null ? { model: g.model } : {}),
    sloMs: g.sloMs,
  }));
  const launches = plan.launches.map((l) => ({
    ...l,
    info: { ...l.info, tenants: [...new Set(l.info.tenants.map((t) => groupOf[t]!))].sort((a, b) => a - b) },
  }));
  return { plan: { ...plan, tenants, launches }, groups };
}
