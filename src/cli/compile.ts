import type { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { fail } from '../../ir/errors.js';
import { DEFAULT_LIMITS, type SizeLimits } from '../../ir/limits.js';
import { DEFAULT_CACHE_MAX_BYTES, TENANT_CACHE_ENV } from '../cache/location.js';
import { cacheFrom, cacheSummary } from './compile-cache.js';
import {
  DUMP_AFTER_PASSES,
  EMIT_STAGES,
  type EmitStage,
  FROM_STAGES,
  type FromStage,
  type TenantCacheReport,
  checkStageNames,
  compileFleet,
} from '../fleet/compile.js';
import { STAGES } from '../pipeline.js';
import { createProgressReporter } from '../fleet/progress.js';
import { planHeadline } from '../fleet/summary.js';
import type { PhaseTime } from '../fleet/timings.js';
import { SHARD_HELP, runShardedCompile } from './compile-shards.js';
import { DEFAULT_MAX_LANES, MAX_LANES } from '../planner/lanes.js';
import { COMPILE_BRANCHINGS, compileBranchingFrom, measuredText } from '../fleet/branch-measure.js';
import { BRANCH_MAX_LANES, BRANCH_TOLERANCE, CONV_KERNELS, type ConvKernel } from '../planner/index.js';
import { costModelFromProfile, readProfile } from '../calibrate/profile.js';
import { chooseProfile } from '../calibrate/shipped.js';
import { hostBranching, hostGpuName, unmeasured } from './host-branching.js';
import type { CostModel } from '../planner/index.js';

interface CompileFlags {
  output: string;
  maxBatch?: string;
  emit?: string;
  from?: string;
  dumpAfter?: string;
  quiet?: boolean;
  nvcc: boolean; // commander's --no-nvcc
  client?: string;
  timings?: string;
  allowOutsidePaths?: boolean;
  maxWeightsMb?: string;
  maxActivationsMb?: string;
  maxIoMb?: string;
  maxConstantMb?: string;
  shards?: string;
  deviceMemory?: string;
  cache?: string | false; // --cache DIR, or false from --no-cache
  cacheMaxMb?: string;
  lanes?: string;
  branching?: string;
  squeezeExcite?: boolean;
  residualEpilogue?: boolean; // false from --no-residual-epilogue
  convBiasInGemm?: boolean; // false from --no-conv-bias-in-gemm
  conv?: string; // --conv im2col|implicit
  profile?: string;
}

const MB_FLAGS = [
  ['maxWeightsMb', 'maxWeightsBytes', '--max-weights-mb'],
  ['maxActivationsMb', 'maxActivationsBytes', '--max-activations-mb'],
  ['maxIoMb', 'maxIoBytes', '--max-io-mb'],
  ['maxConstantMb', 'maxConstantBytes', '--max-constant-mb'],
] as const;

// --max-*-mb flags → SizeLimits in bytes (MiB: 2^20 bytes); unset ones keep their defaults.
function convKernelFrom(v: string): ConvKernel {
  if (!(CONV_KERNELS as readonly string[]).includes(v)) fail('USAGE', `--conv: expected ${CONV_KERNELS.join(' or ')}, got '${v}'`);
  return v as ConvKernel;
}

function lanesFrom(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > MAX_LANES) fail('USAGE', `--lanes: expected an integer in 1..${MAX_LANES}, got '${v}'`);
  return n;
}

function limitsFrom(flags: CompileFlags): Partial<SizeLimits> | undefined {
  const out: { -readonly [K in keyof SizeLimits]?: number } = {};
  for (const [flag, key, name] of MB_FLAGS) {
    const v = flags[flag];
    if (v === undefined) continue;
    const mb = Number(v);
    if (!Number.isFinite(mb) || mb <= 0) fail('USAGE', `${name} must be a positive number of MiB, got '${v}'`);
    out[key] = Math.floor(mb * 1024 * 1024);
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

const mib = (bytes: number): string => String(bytes / (1024 * 1024));

export function registerCompile(program: Command): void {
  program
    .command('compile')
    .description("compile a fleet of tenants' ONNX models into one space-time batched launch plan")
    .argument('<fleet...>', 'a manifest.json, or .onnx files (one tenant each, ids from the file names); with --from, the dump directory')
    .requiredOption('-o, --output <plan-dir>', 'the plan directory to write')
    .option('--max-batch <n>', 'rows per tick for each tenant when compiling .onnx files (a manifest sets it per tenant)', '1')
    .option('--emit <stage>', `stop after a stage and write its dump: ${EMIT_STAGES.join(' | ')}`)
    .option('--from <stage>', `restart from a stage's dump (written by --emit <stage>): ${FROM_STAGES.join(' | ')}`)
    .option('--dump-after <pass>', 'also write the IR after this canonicalizing or lowering pass to <plan-dir>/dump/<tenant>.<pass>.ir')
    .option(
      '--lanes <n>',
      `parallel lanes of the tick: independent launches run side by side on their own CUDA streams (1..${MAX_LANES}, default ${DEFAULT_MAX_LANES}; 1: every launch in order on one stream)`,
    )
    .option(
      '--branching <mode>',
      `batch or branch: ${COMPILE_BRANCHINGS.join(' | ')} (auto: each group of equal tenants that fits the lanes runs as parallel branches, a lane per tenant, up to ${BRANCH_MAX_LANES} lanes unless --lanes is given, unless the cost model predicts the branched tick more than ${Math.round((BRANCH_TOLERANCE - 1) * 100)}% slower than batching — for the CUDA backend; never: always batched; always: branched whatever the model predicts; measure: plan both, time both on this host's GPU (or CPU), keep the faster — a second compile and two plan loads; default measure where this host runs plans on a CUDA GPU (auto with --shards, --device-memory, --emit or --from launch), else never)`,
    )
    .option(
      '--no-squeeze-excite',
      'keep each squeeze-and-excite block (pool → 1×1 conv → 1×1 conv → scale) as its four launches (default: one generated launch per block)',
    )
    .option('--no-residual-epilogue', 'keep residual adds as elementwise launches (default: added in the epilogue of the GEMM before them)')
    .option('--no-conv-bias-in-gemm', "add an f32 conv's bias in an epilogue pass (default: one more row of the GEMM's k, where the conv runs through im2col)")
    .option(
      '--conv <form>',
      `how an f32 conv that needs im2col runs: ${CONV_KERNELS.join(' | ')} (im2col: an im2col launch and a cuBLAS GEMM; implicit: one generated implicit-GEMM kernel, bias, residual and activation fused — not yet measured faster on a GPU) (default: im2col)`,
    )
    .option('--quiet', 'no progress output')
    .option(
      '--profile <file|name|auto>',
      "plan with the cost model of a device profile written by `loom calibrate`: a file, a shipped profile's name (profiles/), or auto (this host's GPU's shipped profile) (default: a roofline of an H100)",
    )
    .option('--no-nvcc', 'do not compile the CUDA kernels even when nvcc is present')
    .option('--timings <file.json>', 'write where the time went (seconds per phase) and the peak memory to this file')
    .option('--allow-outside-paths', "let a manifest's relative model paths lead out of its folder ('..', or symlinks to elsewhere)")
    .option('--max-weights-mb <MiB>', `refuse a plan whose weights arena passes this (default ${mib(DEFAULT_LIMITS.maxWeightsBytes)})`)
    .option(
      '--max-activations-mb <MiB>',
      `refuse a plan whose activation arena, or any one activation, passes this (default ${mib(DEFAULT_LIMITS.maxActivationsBytes)})`,
    )
    .option('--max-io-mb <MiB>', `refuse a plan whose io arena (all tenants' input and output slots) passes this (default ${mib(DEFAULT_LIMITS.maxIoBytes)})`)
    .option(
      '--max-constant-mb <MiB>',
      `refuse to compute one tensor at compile time (a folded constant, an index table) past this (default ${mib(DEFAULT_LIMITS.maxConstantBytes)})`,
    )
    .option(
      '--cache <dir>',
      `the tenant cache: unchanged tenants are read back instead of imported and lowered again (default $${TENANT_CACHE_ENV}, else $XDG_CACHE_HOME/loom/tenants, else ~/.cache/loom/tenants)`,
    )
    .option('--no-cache', 'import, canonicalize and lower every tenant afresh, and write nothing to the tenant cache')
    .option('--cache-max-mb <MiB>', `after compiling, delete least recently used cache entries past this (default ${mib(DEFAULT_CACHE_MAX_BYTES)})`)
    .option('--client <file.ts>', 'also write the typed TypeScript client here (a full compile always writes <plan-dir>/client.ts)')
    .option('--shards <n>', 'partition the tenants into n shard plans, <plan-dir>/shard-<k>/ and <plan-dir>/shards.json (one device each; see below)')
    .option('--device-memory <GB>', 'with --shards: device memory per shard, GB (10^9 bytes) for the plan arenas (default 80)')
    .addHelpText(
      'after',
      [
        '',
        'Manifest:',
        '  {"tenants": [{"id": "fraud-a", "model": "fraud.onnx", "maxBatch": 4, "sloMs": 20, "dims": {"seq": 64}}],',
        '   "precision": "fp32"}        (fp32 | tf32 | bf16 | fp16; model paths are relative to the manifest)',
        "  relative model paths must stay inside the manifest's folder after symlinks (--allow-outside-paths lifts it);",
        '  absolute paths are taken as written',
        'Stages (src/pipeline.ts), in order; --emit <stage> stops after one, --from <stage> restarts after one:',
        ...STAGES.map(
          (st) =>
            `  ${st.name.padEnd(13)}${st.description}\n  ${''.padEnd(13)}→ ${st.output}${st.load === null ? ` (not a restart point: ${st.notRestartable})` : ''}`,
        ),
        '  (--emit ir = canonicalize; --emit cuda = kernels.cu alone, without the launch files or nvcc)',
        `Passes for --dump-after: ${DUMP_AFTER_PASSES.join(', ')}`,
        'Examples:',
        '  loom compile fleet.json -o plan/',
        '  loom compile a.onnx b.onnx --max-batch 4 -o plan/',
        '  loom compile fleet.json -o out/ --emit ir     (canonical IR per tenant: out/ir/<tenant>.ir + out/dump.json)',
        '  loom compile --from ir out/ -o plan/         (plan, launch and kernels from that dump: the same plan as a full compile)',
        '  loom compile fleet.json -o out/ --emit launch && loom compile --from launch out/ -o plan/',
        '  loom compile fleet.json -o plan/ --dump-after fuse-epilogue   (plan/dump/<tenant>.fuse-epilogue.ir)',
        '  loom compile fleet.json -o plan/ --client src/loom-client.ts   (typed calls: one function per tenant)',
        ...SHARD_HELP,
        '  loom compile fleet.json -o plan/ --cache .loom-cache   (a second compile reads unchanged tenants from .loom-cache)',
        "Tenant cache: an entry per tenant keyed by the model file's sha256, its dims, maxBatch, the precision and",
        "  Loom's version; entries are checksummed (a corrupt or truncated one is recompiled) and written atomically;",
        '  a model whose size, times and inode are unchanged since it was hashed is not read at all. A recompile whose',
        "  weights layout matches the fleet's last recorded plan copies that plan's weights.bin and writes only the",
        "  changed tenants' blobs (keep the serving plan directory until the new one is written).",
        '',
      ].join('\n'),
    )
    .action(async (fleet: string[], flags: CompileFlags) => {
      const { costModel, note: profileNote } = profileCostModel(flags);
      // said in the summary; no whole plan to time with shards, --emit or --from launch
      const wholePlan = flags.shards === undefined && flags.deviceMemory === undefined && flags.emit === undefined && flags.from !== 'launch';
      const hostDefault = flags.branching === undefined ? (wholePlan ? hostBranching() : unmeasured(hostBranching())) : null;
      const branching = hostDefault !== null ? hostDefault.branching : compileBranchingFrom(String(flags.branching));
      // how the plan stage plans, the same for one plan and for each shard's
      const planning = {
        ...(flags.lanes !== undefined ? { maxLanes: lanesFrom(flags.lanes) } : {}),
        ...(flags.squeezeExcite === false ? { squeezeExcite: false } : {}),
        ...(flags.residualEpilogue === false ? { residualEpilogue: false } : {}),
        ...(flags.convBiasInGemm === false ? { convBiasInGemm: false } : {}),
        ...(flags.conv !== undefined ? { convKernel: convKernelFrom(flags.conv) } : {}),
        ...(costModel ? { costModel } : {}),
      };
      if (flags.shards !== undefined || flags.deviceMemory !== undefined) {
        if (branching === 'measure') fail('USAGE', '--branching measure times one whole plan; with --shards or --device-memory choose auto, never or always');
        return runShardedCompile(fleet, flags, limitsFrom(flags), { ...planning, branching });
      }
      const maxBatch = Number(flags.maxBatch ?? '1');
      if (!Number.isInteger(maxBatch) || maxBatch < 1) fail('USAGE', `--max-batch must be a positive integer, got '${flags.maxBatch}'`);
      const emit = flags.emit;
      const from = flags.from;
      checkStageNames(emit, from);
      if (flags.dumpAfter !== undefined && !DUMP_AFTER_PASSES.includes(flags.dumpAfter))
        fail('USAGE', `--dump-after: unknown pass '${flags.dumpAfter}'; passes: ${DUMP_AFTER_PASSES.join(', ')}`);
      const limits = limitsFrom(flags);
      const cache = cacheFrom(flags, emit, from, flags.dumpAfter);
      const progress = createProgressReporter({ quiet: flags.quiet === true });
      const started = Date.now();
      let result;
      try {
        result = await compileFleet(fleet, flags.output, {
          maxBatch,
          nvcc: flags.nvcc ? 'auto' : 'off',
          onProgress: progress.onProgress,
          ...(emit ? { emit: emit as EmitStage } : {}),
          ...(from ? { from: from as FromStage } : {}),
          ...(flags.dumpAfter !== undefined ? { dumpAfter: flags.dumpAfter } : {}),
          ...(flags.client !== undefined ? { client: flags.client } : {}),
          ...(flags.allowOutsidePaths ? { allowOutsidePaths: true } : {}),
          ...(limits ? { limits } : {}),
          ...planning,
          branching,
          ...cache,
          lazyWeights: true, // the CLI uses nothing of the plan but its directory
        });
      } finally {
        progress.finish();
      }
      if (flags.timings !== undefined) writeTimings(flags.timings, result.phases, (Date.now() - started) / 1000, result.cache);
      if (flags.quiet) return;
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      const n = result.manifest.tenants.length;
      const what = result.plan
        ? planHeadline(result.plan)
        : `${emit === 'import' ? 'raw' : emit === 'lower' ? 'lowered' : 'canonical'} IR of ${n} tenant${n === 1 ? '' : 's'}`;
      const cubin = flags.nvcc && result.nvccSkipped ? `; ${result.nvccSkipped}` : '';
      process.stderr.write(`loom: compiled ${n} tenant${n === 1 ? '' : 's'} in ${secs}s → ${result.dir} (${result.files.join(', ')}): ${what}${cubin}\n`);
      if (profileNote && result.plan) process.stderr.write(`loom: cost model: ${profileNote}\n`);
      if (hostDefault && result.plan) process.stderr.write(`loom: branching ${hostDefault.branching}: ${hostDefault.reason} (${hostDefault.otherwise})\n`);
      const measured = result.plan?.cost.branches?.measured;
      if (measured) process.stderr.write(`loom: branching measure: ${measuredText(measured, (result.plan?.cost.branches?.tenants.length ?? 0) > 0)}\n`);
      else if (branching === 'measure' && result.plan)
        process.stderr.write('loom: branching measure: no group of equal tenants fits the lanes as branches; nothing to time, the plan batches\n');
      if (result.cache) process.stderr.write(cacheSummary(result.cache));
    });
}

// --profile FILE | NAME | auto: the device profile's cost model (its reader refuses a bad or foreign file with one
// line), and what was chosen for the summary; auto without a shipped profile for this host's GPU: the roofline.
function profileCostModel(flags: CompileFlags): { costModel?: CostModel; note?: string } {
  if (flags.profile === undefined) return {};
  if (flags.from === 'launch')
    fail('USAGE', '--profile prices the plan stage, which --from launch skips (the launch dump was planned already); restart from lower or earlier');
  if (flags.emit !== undefined && ['import', 'canonicalize', 'ir', 'lower'].includes(flags.emit))
    fail('USAGE', `--profile prices the plan stage, which --emit ${flags.emit} stops before`);
  const choice = chooseProfile(flags.profile, hostGpuName);
  return { ...(choice.file !== null ? { costModel: costModelFromProfile(readProfile(choice.file)) } : {}), note: choice.note };
}

// maxRSS is this process's peak (kilobytes on Linux and macOS); an nvcc child is not counted.
function writeTimings(file: string, phases: readonly PhaseTime[], seconds: number, cache: TenantCacheReport | undefined): void {
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  const tenantCache =
    cache === undefined ? {} : { tenantCache: { hits: cache.hits, misses: cache.misses, modelsRead: cache.modelsRead, bytesWritten: cache.bytesWritten } };
  try {
    writeFileSync(file, `${JSON.stringify({ seconds, peakRssBytes, phases, ...tenantCache }, null, 1)}\n`);
  } catch (e) {
    fail('IO', `cannot write the timings file '${file}': ${(e as Error).message}`);
  }
}
