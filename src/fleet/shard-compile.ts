// `loom compile <manifest> --shards N -o DIR`: lower every tenant once, measure pieces of the fleet with the
// planner (planConcreteFleet: the cost model's predicted tick, the arenas' bytes), partition (shard.ts), then
// compile each shard's tenants with the ordinary compileFleet into DIR/shard-<k>/ and write DIR/shards.json.
import path from 'node:path';
import { fail } from '../../ir/errors.js';
import type { Plan } from '../../ir/contract/plan.js';
import { H100_FP32, type ConcreteTenant, planConcreteFleet } from '../planner/index.js';
import { type PerTenant, runPipeline } from '../pipeline.js';
import { type CompileOptions, type CompileResult, compileFleet } from './compile.js';
import type { Manifest } from './manifest.js';
import { type PartitionResult, type PieceCost, batchClasses, bytesText, partition } from './shard.js';
import { SHARDS_FORMAT, SHARDS_VERSION, type ShardEntry, type ShardsFile, renderShardsFile, SHARDS_FILE, shardDirName } from './shards-file.js';
import { ensureDir, writeText } from './stage-dump.js';
import { createPhaseClock } from './timings.js';

export const DEFAULT_DEVICE_MEMORY_GB = 80; // an H100's; GB = 10^9 bytes

export interface ShardOptions extends Omit<CompileOptions, 'emit' | 'from' | 'client' | 'dumpAfter'> {
  readonly shards: number;
  readonly deviceMemoryBytes?: number; // per shard (default 80 GB)
}

export interface ShardedResult {
  readonly dir: string;
  readonly file: ShardsFile;
  readonly results: readonly CompileResult[]; // one per shard
  readonly splits: number; // batch classes the partitioner split to balance or fit
}

const planBytes = (p: Plan) => p.arenas.weights + p.arenas.act + p.arenas.io;

// The partition alone (no files written): for tests and for the refusal's "how many shards would do".
export async function planShards(
  manifest: Manifest,
  opts: ShardOptions,
): Promise<{ result: PartitionResult; manifest: Manifest; plans: (ids: readonly number[]) => Plan }> {
  const run = await runPipeline({
    manifest,
    until: 'lower',
    ctx: { outDir: '.', nvcc: 'off', clock: createPhaseClock(), ...(opts.limits ? { limits: opts.limits } : {}) },
    onStep: (done, total, label) => opts.onProgress?.({ done, total: total + 1, label: `${label} (for sharding)` }),
  });
  const lowered = run.outputs.get('lower') as PerTenant<ConcreteTenant>;
  const specs = manifest.tenants.map(({ id, model, maxBatch, sloMs, checkFinite }) => ({ id, model, maxBatch, sloMs, checkFinite }));
  const cache = new Map<string, Plan>();
  const plans = (ids: readonly number[]): Plan => {
    const key = ids.join(',');
    let p = cache.get(key);
    if (p === undefined) {
      p = planConcreteFleet(
        ids.map((i) => specs[i]!),
        ids.map((i) => lowered.values[i]!),
        { precision: manifest.precision, ...(opts.limits ? { limits: opts.limits } : {}), ...(opts.costModel ? { costModel: opts.costModel } : {}) },
      );
      cache.set(key, p);
    }
    return p;
  };
  const measure = (ids: readonly number[]): PieceCost => {
    const p = plans(ids);
    return { tickUs: p.cost.predictedTickUs, bytes: planBytes(p) };
  };
  const n = manifest.tenants.length;
  opts.onProgress?.({ done: n, total: n + 1, label: `partition ${n} tenants into ${opts.shards} shards` });
  const classes = batchClasses(
    n,
    (i) => measure([i]).tickUs,
    (i, j) => measure([Math.min(i, j), Math.max(i, j)]).tickUs,
  );
  const budgetBytes = opts.deviceMemoryBytes ?? DEFAULT_DEVICE_MEMORY_GB * 1e9;
  const tenants = manifest.tenants.map((t) => ({ id: t.id, sloMs: t.sloMs }));
  const input = { tenants, classes, budgetBytes, measure };
  let result = partition({ ...input, shards: opts.shards });
  if (!result.ok && result.reason === '') {
    // say what would: the fewest shards that fit (every tenant alone fits, so n shards always do)
    let fits = opts.shards + 1;
    while (fits < n && !partition({ ...input, shards: fits }).ok) fits++;
    result = {
      ok: false,
      reason: `the fleet (${n} tenants, ${bytesText(measure(manifest.tenants.map((_, i) => i)).bytes)} planned on one device) does not fit ${opts.shards} shard${opts.shards === 1 ? '' : 's'} of --device-memory ${bytesText(budgetBytes)}${manifest.tenants.some((t) => t.sloMs !== null) ? " while keeping every tenant's SLO" : ''}; it needs --shards ${fits}`,
    };
  }
  return { result, manifest: run.manifest, plans };
}

export async function compileShards(manifest: Manifest, outDir: string, opts: ShardOptions): Promise<ShardedResult> {
  const { result, plans } = await planShards(manifest, opts);
  if (!result.ok) fail('LIMIT', `cannot shard: ${result.reason}`);
  ensureDir(outDir);
  const results: CompileResult[] = [];
  const entries: ShardEntry[] = [];
  for (const [k, shard] of result.shards.entries()) {
    const sub: Manifest = { source: `${manifest.source} (shard ${k})`, precision: manifest.precision, tenants: shard.tenants.map((i) => manifest.tenants[i]!) };
    const dir = path.join(outDir, shardDirName(k));
    const { shards: _s, deviceMemoryBytes: _d, ...compileOpts } = opts;
    const r = await compileFleet(sub, dir, {
      ...compileOpts,
      ...(opts.onProgress ? { onProgress: (p) => opts.onProgress!({ ...p, label: `shard ${k}: ${p.label}` }) } : {}),
    });
    results.push(r);
    const plan = r.plan ?? plans(shard.tenants);
    entries.push({
      id: k,
      dir: shardDirName(k),
      tenants: sub.tenants.map((t) => t.id),
      predictedTickUs: plan.cost.predictedTickUs,
      weightsBytes: plan.arenas.weights,
      activationBytes: plan.arenas.act,
      ioBytes: plan.arenas.io,
      deviceBytes: planBytes(plan),
      launches: plan.launches.length,
    });
  }
  const file: ShardsFile = {
    format: SHARDS_FORMAT,
    version: SHARDS_VERSION,
    manifest: manifest.source,
    precision: manifest.precision,
    deviceMemoryBytes: opts.deviceMemoryBytes ?? DEFAULT_DEVICE_MEMORY_GB * 1e9,
    costModel: results[0]?.plan?.cost.device ?? H100_FP32.device,
    shards: entries,
  };
  writeText(path.join(outDir, SHARDS_FILE), renderShardsFile(file));
  return { dir: outDir, file, results, splits: result.splits };
}
