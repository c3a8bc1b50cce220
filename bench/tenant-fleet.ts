// Fleets of many tenants for the tenant-scale benchmark and its CI-sized tests: `count` zoo MLPs of one
// architecture, written as `files` distinct ONNX files (seeds 9000 + i) that the tenants reuse round robin,
// so a 10,000-tenant fleet costs 16 model files to write, not 10,000 (each tenant still gets its own weights
// in the plan). Tenant ids are `<prefix>-<i>`, zero-padded so plan order is also name order.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { writeZooModel } from '../models/index.js';

export interface TenantFleetSpec {
  readonly count: number;
  readonly sizes: readonly number[]; // MLP layer widths, input first
  readonly files?: number; // distinct model files (default min(count, 16))
  readonly maxBatch?: number; // default 1
  readonly sloMs?: number; // default: none
  readonly prefix?: string; // default 't'
}

export interface TenantFleet {
  readonly manifest: string; // path of fleet.json
  readonly ids: readonly string[];
  readonly inputWidth: number;
}

// Writes the models and the manifest under `dir`; returns the manifest's path and the tenant ids.
export function writeTenantFleet(dir: string, spec: TenantFleetSpec): TenantFleet {
  const { count, sizes } = spec;
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`writeTenantFleet: count must be a positive integer, got ${count}`);
  if (sizes.length < 2 || sizes.some((s) => !Number.isInteger(s) || s < 1))
    throw new RangeError(`writeTenantFleet: sizes must be at least 2 positive integers, got [${sizes.join(', ')}]`);
  const files = Math.min(count, spec.files ?? 16);
  if (!Number.isInteger(files) || files < 1) throw new RangeError(`writeTenantFleet: files must be a positive integer, got ${spec.files}`);
  const prefix = spec.prefix ?? 't';
  mkdirSync(path.join(dir, 'models'), { recursive: true });
  const models = Array.from({ length: files }, (_, i) => {
    const rel = `models/mlp-${sizes.join('x')}-${i}.onnx`;
    writeZooModel('mlp', { seed: 9000 + i, sizes }, path.join(dir, rel));
    return rel;
  });
  const digits = String(count - 1).length;
  const ids = Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(digits, '0')}`);
  const tenants = ids.map((id, i) => ({
    id,
    model: models[i % files]!,
    maxBatch: spec.maxBatch ?? 1,
    ...(spec.sloMs !== undefined ? { sloMs: spec.sloMs } : {}),
  }));
  const manifest = path.join(dir, 'fleet.json');
  writeFileSync(manifest, JSON.stringify({ tenants, precision: 'fp32' }));
  return { manifest, ids, inputWidth: sizes[0]! };
}

// Every `1 / fraction`-th tenant (at least one): the active set of an occupancy row, spread over the plan.
export function spreadTenants<T>(all: readonly T[], fraction: number): T[] {
  if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`spreadTenants: fraction must be in (0, 1], got ${fraction}`);
  const n = Math.max(1, Math.ceil(all.length * fraction - 1e-9));
  return Array.from({ length: n }, (_, i) => all[Math.floor((i * all.length) / n)]!);
}
