// `loom compile ... --shards N [--device-memory GB]`: the sharded compile (src/fleet/shard-compile.ts).
import { fail } from '../../ir/errors.js';
import type { SizeLimits } from '../../ir/limits.js';
import { manifestFromFiles, readManifest } from '../fleet/manifest.js';
import { createProgressReporter } from '../fleet/progress.js';
import { DEFAULT_DEVICE_MEMORY_GB, type ShardOptions, compileShards } from '../fleet/shard-compile.js';
import { formatShards } from '../fleet/shards-summary.js';

export const SHARD_HELP = [
  'Sharding (more than one GPU):',
  '  loom compile fleet.json --shards 2 -o shards/      (shards/shard-0/, shards/shard-1/: plan directories; shards/shards.json)',
  "  loom compile fleet.json --shards 4 --device-memory 40 -o shards/   (each shard's arenas within 40 GB)",
  `  tenants are partitioned with the cost model: balanced predicted ticks, arenas within --device-memory (default ${DEFAULT_DEVICE_MEMORY_GB} GB),`,
  "  tenants that batch together kept on one shard, each shard's tick at most half of its tenants' sloMs;",
  '  `loom serve shards/ --devices 0,1` serves them, `loom deploy nginx|k8s shards/` routes to them',
];

// How each shard's plan is planned (loom compile's --lanes, --branching, --no-squeeze-excite,
// --no-residual-epilogue, --no-conv-bias-in-gemm, --profile), as for one plan.
export type ShardPlanning = Pick<ShardOptions, 'maxLanes' | 'branching' | 'squeezeExcite' | 'residualEpilogue' | 'convBiasInGemm' | 'convKernel' | 'costModel'>;

interface ShardFlags {
  readonly output: string;
  readonly maxBatch?: string;
  readonly emit?: string;
  readonly from?: string;
  readonly dumpAfter?: string;
  readonly client?: string;
  readonly timings?: string;
  readonly quiet?: boolean;
  readonly nvcc: boolean;
  readonly allowOutsidePaths?: boolean;
  readonly shards?: string;
  readonly deviceMemory?: string;
}

export async function runShardedCompile(
  fleet: readonly string[],
  flags: ShardFlags,
  limits: Partial<SizeLimits> | undefined,
  planning: ShardPlanning = {},
): Promise<void> {
  if (flags.shards === undefined) fail('USAGE', '--device-memory sizes the shards of --shards N; give --shards as well');
  const n = Number(flags.shards);
  if (!Number.isInteger(n) || n < 1) fail('USAGE', `--shards must be a positive integer, got '${flags.shards}'`);
  for (const [name, v] of [
    ['--emit', flags.emit],
    ['--from', flags.from],
    ['--dump-after', flags.dumpAfter],
    ['--client', flags.client],
    ['--timings', flags.timings],
  ] as const)
    if (v !== undefined) fail('USAGE', `${name} does not combine with --shards (each shard is an ordinary plan directory: compile it alone for ${name})`);
  let budget: number | undefined;
  if (flags.deviceMemory !== undefined) {
    const gb = Number(flags.deviceMemory);
    if (!Number.isFinite(gb) || gb <= 0) fail('USAGE', `--device-memory must be a positive number of GB (10^9 bytes), got '${flags.deviceMemory}'`);
    budget = Math.floor(gb * 1e9);
  }
  const maxBatch = Number(flags.maxBatch ?? '1');
  if (!Number.isInteger(maxBatch) || maxBatch < 1) fail('USAGE', `--max-batch must be a positive integer, got '${flags.maxBatch}'`);
  const jsons = fleet.filter((f) => f.endsWith('.json'));
  if (jsons.length > 0 && fleet.length > 1) fail('USAGE', `give either one manifest (.json) or a list of .onnx files, not both (got ${fleet.join(', ')})`);
  const manifest =
    jsons.length === 1 ? readManifest(jsons[0]!, { allowOutsidePaths: flags.allowOutsidePaths === true }) : manifestFromFiles(fleet, { maxBatch });
  const progress = createProgressReporter({ quiet: flags.quiet === true });
  const started = Date.now();
  let result;
  try {
    result = await compileShards(manifest, flags.output, {
      shards: n,
      nvcc: flags.nvcc ? 'auto' : 'off',
      onProgress: progress.onProgress,
      ...(budget !== undefined ? { deviceMemoryBytes: budget } : {}),
      ...(limits ? { limits } : {}),
      ...planning,
    });
  } finally {
    progress.finish();
  }
  if (flags.quiet) return;
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  const split = result.splits > 0 ? `; ${result.splits} batch class${result.splits === 1 ? ' was' : 'es were'} split to balance or fit` : '';
  process.stderr.write(
    `loom: compiled ${manifest.tenants.length} tenants into ${n} shards in ${secs}s → ${result.dir}${split}\n${formatShards(result.file)}\n`,
  );
}
