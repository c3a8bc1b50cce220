// DIR/shards.json: what `loom compile --shards N` wrote, read by `loom serve DIR`, `loom inspect DIR` and
// `loom deploy`. Each shard is an ordinary plan directory DIR/shard-<k>/.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fail } from '../../ir/errors.js';
import { MiB, parseJsonText, readTextFile } from '../../ir/files.js';

export const SHARDS_FILE = 'shards.json';
export const SHARDS_FORMAT = 'loom-shards';
export const SHARDS_VERSION = 1;

export interface ShardEntry {
  readonly id: number;
  readonly dir: string; // relative to the shards directory: shard-<id>
  readonly tenants: readonly string[];
  readonly predictedTickUs: number; // the shard plan's cost model (H100-like, see codegen/FORMAT.md)
  readonly weightsBytes: number;
  readonly activationBytes: number;
  readonly ioBytes: number;
  readonly deviceBytes: number; // weights + activations + io
  readonly launches: number;
}

export interface ShardsFile {
  readonly format: typeof SHARDS_FORMAT;
  readonly version: number;
  readonly manifest: string; // where the tenants came from
  readonly precision: string;
  readonly deviceMemoryBytes: number; // the per-shard budget the partition kept to
  readonly costModel: string;
  readonly shards: readonly ShardEntry[];
}

export const shardDirName = (id: number): string => `shard-${id}`;

export function isShardsDir(dir: string): boolean {
  return existsSync(path.join(dir, SHARDS_FILE));
}

export function renderShardsFile(f: ShardsFile): string {
  return `${JSON.stringify(f, null, 1)}\n`;
}

// Reads and checks DIR/shards.json: every shard directory present, every tenant on exactly one shard.
export function readShardsFile(dir: string): ShardsFile {
  const file = path.join(dir, SHARDS_FILE);
  const json = parseJsonText(readTextFile(file, { what: 'shards file', maxBytes: 16 * MiB }), { what: `'${file}'`, code: 'PLAN_INVALID' });
  const bad = (what: string): never => fail('PLAN_INVALID', `'${file}': ${what}`);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return bad('expected a JSON object written by `loom compile --shards N`');
  const o = json as Record<string, unknown>;
  if (o.format !== SHARDS_FORMAT) bad(`field 'format' must be '${SHARDS_FORMAT}', got ${JSON.stringify(o.format)}`);
  if (o.version !== SHARDS_VERSION) bad(`version ${JSON.stringify(o.version)} is not supported (this Loom reads version ${SHARDS_VERSION})`);
  if (!Array.isArray(o.shards) || o.shards.length === 0) bad("field 'shards' must be a non-empty array");
  const seen = new Map<string, number>();
  const shards = (o.shards as unknown[]).map((s, k): ShardEntry => {
    if (typeof s !== 'object' || s === null) return bad(`shards[${k}] must be an object`);
    const e = s as Record<string, unknown>;
    if (e.id !== k) bad(`shards[${k}].id must be ${k} (shards are numbered in order), got ${JSON.stringify(e.id)}`);
    if (e.dir !== shardDirName(k)) bad(`shards[${k}].dir must be '${shardDirName(k)}', got ${JSON.stringify(e.dir)}`);
    if (!Array.isArray(e.tenants) || e.tenants.length === 0 || !e.tenants.every((t) => typeof t === 'string'))
      bad(`shards[${k}].tenants must be a non-empty array of tenant ids`);
    for (const t of e.tenants as string[]) {
      const other = seen.get(t);
      if (other !== undefined) bad(`tenant '${t}' is on shard ${other} and shard ${k}; a tenant lives on one shard`);
      seen.set(t, k);
    }
    for (const f of ['predictedTickUs', 'weightsBytes', 'activationBytes', 'ioBytes', 'deviceBytes', 'launches'] as const)
      if (typeof e[f] !== 'number' || !(e[f] >= 0)) bad(`shards[${k}].${f} must be a non-negative number`);
    if (!existsSync(path.join(dir, shardDirName(k), 'plan.json'))) bad(`shard ${k}'s plan directory '${path.join(dir, shardDirName(k))}' has no plan.json`);
    return e as unknown as ShardEntry;
  });
  for (const f of ['manifest', 'precision', 'costModel'] as const) if (typeof o[f] !== 'string') bad(`field '${f}' must be a string`);
  if (typeof o.deviceMemoryBytes !== 'number' || !(o.deviceMemoryBytes > 0)) bad("field 'deviceMemoryBytes' must be a positive number");
  return { ...(o as unknown as ShardsFile), shards };
}

// tenant id → shard id
export function tenantShards(f: ShardsFile): ReadonlyMap<string, number> {
  return new Map(f.shards.flatMap((s) => s.tenants.map((t) => [t, s.id] as const)));
}
