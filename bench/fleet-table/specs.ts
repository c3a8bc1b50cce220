// The fleets of issue 5's table, as data: groups of same-kind tenants with the zoo options written out in
// full (defaults included), so the Python peer builds the same modules without knowing the zoo's defaults.
import { createHash } from 'node:crypto';
import { fail } from '../../ir/errors.js';
import type { EncoderOptions, MlpOptions, ResNetOptions, RnnOptions } from '../../models/index.js';

// Options without the seed (each tenant gets its own) and without batch (the model keeps a symbolic batch;
// the manifest's maxBatch fixes it).
export type TenantGroup =
  | { readonly kind: 'mlp'; readonly count: number; readonly batch: number; readonly options: Omit<MlpOptions, 'seed' | 'batch'> }
  | { readonly kind: 'lstm'; readonly count: number; readonly batch: number; readonly options: Omit<RnnOptions, 'seed' | 'batch'> }
  | { readonly kind: 'resnet18'; readonly count: number; readonly batch: number; readonly options: Omit<ResNetOptions, 'seed' | 'batch'> }
  | { readonly kind: 'encoder'; readonly count: number; readonly batch: number; readonly options: Omit<EncoderOptions, 'seed' | 'batch'> };

export type PeerKind = TenantGroup['kind'];

export interface FleetSpec {
  readonly name: string;
  readonly groups: readonly TenantGroup[];
}

// One tenant of a fleet: id '<kind>-<i>' (i counts within the kind), its own seed.
export interface TenantPlanEntry {
  readonly id: string;
  readonly group: TenantGroup;
  readonly seed: number;
}

const MLP = { sizes: [784, 512, 512, 10], activation: 'gelu', linear: 'gemm' } as const;
const LSTM = { hidden: 1024, inputSize: 1024, seqLen: 1, layers: 1, classes: 10 } as const;
const RESNET = { width: 64, resolution: 224, classes: 1000 } as const;
const ENCODER = { layers: 4, hidden: 256, heads: 4, ffn: 1024, seq: 64, vocabSize: 8192, maxPositions: 512, pooler: true, maskValue: 'finfo-min' } as const;

export const FLEETS: Readonly<Record<string, FleetSpec>> = {
  'mlp-b1': { name: 'mlp-b1', groups: [{ kind: 'mlp', count: 64, batch: 1, options: MLP }] },
  'mlp-b16': { name: 'mlp-b16', groups: [{ kind: 'mlp', count: 64, batch: 16, options: MLP }] },
  lstm: { name: 'lstm', groups: [{ kind: 'lstm', count: 120, batch: 1, options: LSTM }] },
  resnet18: { name: 'resnet18', groups: [{ kind: 'resnet18', count: 32, batch: 1, options: RESNET }] },
  mixed: {
    name: 'mixed',
    groups: [
      { kind: 'encoder', count: 16, batch: 1, options: ENCODER },
      { kind: 'resnet18', count: 16, batch: 1, options: RESNET },
      { kind: 'mlp', count: 32, batch: 1, options: MLP },
    ],
  },
};

export function fleetByName(name: string): FleetSpec {
  const f = FLEETS[name];
  if (!f) fail('USAGE', `unknown fleet '${name}' (known: ${Object.keys(FLEETS).join(', ')})`);
  return f;
}

// --tenants-scale: every group's count times `scale`, rounded, at least one tenant.
export function scaleFleet(spec: FleetSpec, scale: number): FleetSpec {
  if (!(scale > 0) || !Number.isFinite(scale)) fail('USAGE', `--tenants-scale must be a positive number, got ${scale}`);
  if (scale === 1) return spec;
  return { ...spec, groups: spec.groups.map((g) => ({ ...g, count: Math.max(1, Math.round(g.count * scale)) })) };
}

// Seeds 101, 102, ... in tenant order: reproducible, and every tenant's weights differ.
export function fleetTenants(spec: FleetSpec): TenantPlanEntry[] {
  const perKind = new Map<string, number>();
  const out: TenantPlanEntry[] = [];
  for (const group of spec.groups) {
    if (!Number.isInteger(group.count) || group.count < 1)
      fail('USAGE', `fleet '${spec.name}': a ${group.kind} group needs a positive integer count, got ${group.count}`);
    if (!Number.isInteger(group.batch) || group.batch < 1)
      fail('USAGE', `fleet '${spec.name}': a ${group.kind} group needs a positive integer batch, got ${group.batch}`);
    for (let i = 0; i < group.count; i++) {
      const k = perKind.get(group.kind) ?? 0;
      perKind.set(group.kind, k + 1);
      out.push({ id: `${group.kind}-${k}`, group, seed: 101 + out.length });
    }
  }
  return out;
}

// "16 encoder + 16 resnet18 + 32 mlp"
export function describeFleet(spec: FleetSpec): string {
  return spec.groups.map((g) => `${g.count} ${g.kind}${g.batch > 1 ? ` (batch ${g.batch})` : ''}`).join(' + ');
}

// What decides the models, their weights and inputs: a fleet directory made from the same hash is reused.
export function specHash(spec: FleetSpec, precision: string): string {
  return createHash('sha256')
    .update(JSON.stringify({ v: 1, spec, precision }))
    .digest('hex')
    .slice(0, 16);
}
