// The deploy-time compile: manifest → the stages of src/pipeline.ts (import, canonicalize, lower, plan, launch,
// kernels) → LaunchPlan directory. `emit` stops after a stage and writes only that stage's dump, so each stage
// can be inspected alone; `from` restarts after a stage, from its dump.
import path from 'node:path';
import { fail } from '../../ir/errors.js';
import { printGraph } from '../../ir/print.js';
import { renderKernelsCu } from '../../codegen/index.js';
import { CLIENT_FILE, renderClientInWorker } from '../../codegen/client.js';
import { CANONICAL_PASSES, LOWERING_PASS_NAMES } from '../../ir/passes/index.js';
import type { Graph } from '../../ir/graph.js';
import { type SizeLimits, resolveLimits } from '../../ir/limits.js';
import type { Plan, TenantInput } from '../../ir/contract/plan.js';
import type { ConvKernel, CostModel } from '../planner/index.js';
import { type CompileBranching, compileMeasuringBranches } from './branch-measure.js';
import {
  KERNELS,
  type KernelFiles,
  type PerTenant,
  type PlannedFleet,
  RESTART_STAGES,
  STAGE_NAMES,
  type StageName,
  planSummary,
  runPipeline,
  stageNamed,
} from '../pipeline.js';
import { TenantCache, type WeightsNote } from '../cache/tenant-cache.js';
import { DeferredReadError } from '../../ir/deferred.js';
import { writeManifestCopy } from './manifest-copy.js';
import { type Manifest, type TenantSpec, manifestFromFiles, readManifest } from './manifest.js';
import { ensureDir, writeText } from './stage-dump.js';
import { tenantInput } from './tenants.js';
import { type PhaseTime, createPhaseClock } from './timings.js';

export { planSummary };

// `ir` is the canonical IR (the name --emit had before the stages were named); `cuda` is kernels.cu alone,
// rendered from the Plan without writing the launch files or running nvcc.
export const EMIT_STAGES = ['import', 'canonicalize', 'ir', 'lower', 'plan', 'launch', 'cuda'] as const;
export type EmitStage = (typeof EMIT_STAGES)[number];
export const FROM_STAGES: readonly string[] = RESTART_STAGES.flatMap((s) => (s === 'canonicalize' ? [s, 'ir'] : [s]));
export type FromStage = 'ir' | StageName;
export const DUMP_AFTER_PASSES: readonly string[] = [...CANONICAL_PASSES.map((p) => p.name), ...LOWERING_PASS_NAMES];

export interface CompileProgress {
  readonly done: number; // steps finished before this one
  readonly total: number;
  readonly label: string; // what is being done now
}

export interface CompileOptions {
  readonly onProgress?: (p: CompileProgress) => void;
  readonly emit?: EmitStage; // stop after this stage; default: the whole plan directory
  readonly from?: FromStage; // `fleet` is then a dump directory written by emit of this stage
  readonly dumpAfter?: string; // also write <dir>/dump/<tenant>.<pass>.ir after this pass
  readonly nvcc?: 'auto' | 'off';
  readonly cacheDir?: string;
  readonly maxBatch?: number; // for a list of model files (a manifest says it per tenant)
  readonly client?: string; // also write the typed client here (a full compile always writes <dir>/client.ts)
  readonly allowOutsidePaths?: boolean; // a manifest's relative model paths may lead out of its folder
  readonly limits?: Partial<SizeLimits>; // size limits in bytes (ir/limits.ts DEFAULT_LIMITS); past one, compile fails with LIMIT
  readonly maxLanes?: number; // parallel lanes of the tick's DAG (default the planner's; 1: one stream)
  // batch or branch (src/planner/branches.ts; default the planner's); 'measure': plan both, time both on this
  // host's `measureBackend` (default auto), keep the faster (src/fleet/branch-measure.ts; whole plans only)
  readonly branching?: CompileBranching;
  readonly measureBackend?: 'auto' | 'cpu' | 'cuda';
  readonly squeezeExcite?: boolean; // squeeze-and-excite blocks as one kernel (PlanOptions; default the planner's)
  readonly residualEpilogue?: boolean; // residual adds in the GEMM epilogue (PlanOptions; default the planner's)
  readonly convBiasInGemm?: boolean; // an im2col conv's bias as a k row of its GEMM (PlanOptions; default the planner's)
  readonly convKernel?: ConvKernel; // im2col + GEMM or the generated conv kernel (PlanOptions; default the planner's)
  // The planner's cost model: a device profile's (src/calibrate, `loom compile --profile`); default: the roofline.
  readonly costModel?: CostModel;
  // The tenant cache folder (src/cache/): unchanged tenants are read back lowered instead of imported again.
  // Used by compiles that run import through lower without --dump-after; CompileResult.tenants is then empty.
  readonly tenantCache?: string;
  readonly tenantCacheMaxBytes?: number; // pruned to this after the compile (default DEFAULT_CACHE_MAX_BYTES)
  // With tenantCache, a full compile: leave cached tenants' large constants on disk until
  // their bytes are needed (weights.bin; often an earlier plan's bytes are kept instead). CompileResult.plan's
  // weights may then hold zero stand-ins for those constants (ir/deferred.ts): set it only when nothing but
  // the plan directory is used (`loom compile` does).
  readonly lazyWeights?: boolean;
  // With tenantCache: record the written plan's weights.bin for the next compile to keep (default true; false for
  // a plan that will not stay where it is written: --branching measure's scratch plans, the kept one recorded
  // where it lands by CompileResult.recordPlanAt).
  readonly recordPlan?: boolean;
}

export interface TenantCacheReport {
  readonly dir: string;
  readonly weights?: WeightsNote; // how weights.bin was written (full compiles)
  readonly hits: number;
  readonly misses: number;
  readonly modelsRead: number; // model files read: those imported, and those hashed again because their stat changed
  readonly written: number;
  readonly bytesWritten: number;
  readonly rejected: readonly { readonly tenant: string; readonly reason: string }[]; // corrupt, truncated or foreign entries, recompiled
  readonly writeErrors: readonly string[];
  readonly pruned: { readonly removed: number; readonly freedBytes: number; readonly keptBytes: number; readonly maxBytes: number };
}

export interface CompileResult {
  readonly dir: string;
  readonly manifest: Manifest;
  readonly tenants: readonly TenantInput[]; // canonical IR per tenant; empty when restarted after canonicalize
  readonly plan: Plan | null; // null when stopped before the plan
  readonly files: readonly string[]; // what was written, relative to dir
  readonly nvccSkipped?: string | null; // why no cubin was built (full compiles only)
  readonly phases: readonly PhaseTime[]; // seconds per compile phase
  readonly cache?: TenantCacheReport; // when the tenant cache was used
  // With the tenant cache and recordPlan false: records the plan once its weights.bin is where it stays
  readonly recordPlanAt?: (weightsFile: string) => Promise<void>;
}

const stageOf = (name: EmitStage | FromStage): StageName => (name === 'ir' ? 'canonicalize' : name === 'cuda' ? 'plan' : name);

// `fleet` is a Manifest, a manifest file path, or a list of .onnx files (one tenant each); with `from`, the
// dump directory to restart from.
export async function compileFleet(fleet: Manifest | string | readonly string[], outDir: string, opts: CompileOptions = {}): Promise<CompileResult> {
  if (opts.branching === 'measure') {
    if (opts.emit !== undefined) fail('USAGE', `--branching measure times whole plans on the device; it cannot stop at --emit ${opts.emit}`);
    let step = 0;
    return compileMeasuringBranches(
      outDir,
      opts.measureBackend ?? 'auto',
      (dir, branching) => {
        opts.onProgress?.({ done: step, total: 3, label: `planning the fleet ${branching === 'never' ? 'batched' : 'branched'} (--branching measure)` });
        step++;
        return compileFleet(fleet, dir, { ...opts, branching, recordPlan: false });
      },
      (label) => opts.onProgress?.({ done: 2, total: 3, label }),
    );
  }
  try {
    return await compileOnce(fleet, outDir, opts);
  } catch (e) {
    if (!(e instanceof DeferredReadError) || opts.lazyWeights !== true) throw e;
    // a cached constant left on disk could not be read back as recorded: compile again reading entries whole
    // (the bad entry is then found corrupt and recompiled)
    opts.onProgress?.({ done: 0, total: 1, label: `${e.message}; compiling again reading every cache entry whole` });
    return compileOnce(fleet, outDir, { ...opts, lazyWeights: false });
  }
}

async function compileOnce(fleet: Manifest | string | readonly string[], outDir: string, opts: CompileOptions): Promise<CompileResult> {
  const { emit, from } = opts;
  checkStageNames(emit, from);
  const until = emit === undefined ? undefined : stageOf(emit);
  const after = from === undefined ? undefined : stageOf(from);
  const index = (s: StageName | undefined, dflt: number) => (s === undefined ? dflt : STAGE_NAMES.indexOf(s));
  if (after !== undefined && until !== undefined && index(until, 0) <= index(after, 0))
    fail('USAGE', `--emit ${emit} stops at or before the restart point --from ${from}`);
  const beforePlan = index(until, STAGE_NAMES.length) < STAGE_NAMES.indexOf('plan');
  if (beforePlan && opts.client !== undefined) fail('USAGE', `a typed client needs the plan; it cannot be written with emit ${emit}`);
  const onPass = opts.dumpAfter === undefined ? undefined : dumpAfterHook(opts.dumpAfter, outDir, index(after, -1), index(until, STAGE_NAMES.length));
  const manifest = from === undefined ? toManifest(fleet, opts) : undefined;
  const dumpDir = from === undefined ? undefined : dumpDirOf(fleet);
  ensureDir(outDir);
  const clock = createPhaseClock();
  const runsLower = index(after, -1) < STAGE_NAMES.indexOf('import') && index(until, STAGE_NAMES.length) >= STAGE_NAMES.indexOf('lower');
  const cache =
    opts.tenantCache !== undefined && runsLower && onPass === undefined
      ? new TenantCache({
          dir: opts.tenantCache,
          ...(opts.tenantCacheMaxBytes !== undefined ? { maxBytes: opts.tenantCacheMaxBytes } : {}),
          // stand-ins for large cached constants only where nothing but the plan directory is made from them
          lazy: opts.lazyWeights === true && emit === undefined,
        })
      : undefined;
  try {
    // a full compile may keep its fleet's last plan's weights.bin: start copying it now (tenant-cache.ts)
    if (cache !== undefined && emit === undefined && manifest !== undefined)
      cache.startEarlyCopy(
        manifest.tenants.map((t) => t.id),
        outDir,
      );
    return await compileWith(cache, outDir, opts, { manifest, dumpDir, until, after, onPass, clock, index });
  } finally {
    cache?.close();
  }
}

interface Prepared {
  readonly manifest: Manifest | undefined;
  readonly dumpDir: string | undefined;
  readonly until: StageName | undefined;
  readonly after: StageName | undefined;
  readonly onPass: ((tenant: string, name: string, g: Graph) => void) | undefined;
  readonly clock: ReturnType<typeof createPhaseClock>;
  readonly index: (s: StageName | undefined, dflt: number) => number;
}

async function compileWith(
  cache: TenantCache | undefined,
  outDir: string,
  opts: CompileOptions,
  { manifest, dumpDir, until, after, onPass, clock }: Prepared,
): Promise<CompileResult> {
  const { emit } = opts;

  // The client is rendered once, written where asked and into the plan dir, on a worker thread started as soon
  // as the plan is known: it runs while this thread writes weights.bin (the 'client' phase overlaps 'weights').
  let clientText: Promise<string> | undefined;
  const render = (plan: Plan) => () => renderClientInWorker(plan.tenants);
  const client = (plan: Plan): Promise<string> => {
    if (clientText === undefined) {
      clientText = clock.timeAsync('client', () => (cache ? cache.client(plan.tenants, render(plan)) : render(plan)()));
      clientText.catch(() => {}); // awaited below; a compile failing before that reports its own error
    }
    return clientText;
  };
  const wantsClient = opts.client !== undefined || emit === undefined;
  const run = await runPipeline({
    ...(manifest ? { manifest } : {}),
    ...(after !== undefined ? { from: { stage: after, dir: dumpDir! } } : {}),
    ...(until !== undefined ? { until } : {}),
    keep: cache === undefined ? ['canonicalize'] : [],
    // tenants of one model file (same dims, maxBatch) are imported and lowered once; --dump-after sees each
    ...(onPass === undefined ? { shareKey: sameModelKey } : {}),
    ctx: {
      outDir,
      nvcc: opts.nvcc ?? 'auto',
      ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
      ...(opts.limits ? { limits: resolveLimits(opts.limits) } : {}),
      ...(opts.maxLanes !== undefined ? { maxLanes: opts.maxLanes } : {}),
      ...(opts.branching !== undefined && opts.branching !== 'measure' ? { branching: opts.branching } : {}),
      ...(opts.squeezeExcite !== undefined ? { squeezeExcite: opts.squeezeExcite } : {}),
      ...(opts.residualEpilogue !== undefined ? { residualEpilogue: opts.residualEpilogue } : {}),
      ...(opts.convBiasInGemm !== undefined ? { convBiasInGemm: opts.convBiasInGemm } : {}),
      ...(opts.convKernel !== undefined ? { convKernel: opts.convKernel } : {}),
      ...(opts.costModel ? { costModel: opts.costModel } : {}),
      clock,
      ...(onPass ? { onPass } : {}),
      ...(cache ? { tenantCache: cache } : {}),
    },
    onStep: (done, total, label) => opts.onProgress?.({ done, total, label }),
    afterStage: async (name, output, step) => {
      if (name !== 'plan' || !wantsClient) return;
      void client((output as PlannedFleet).plan); // started now, awaited where written
      if (opts.client === undefined) return;
      step('write the typed client');
      writeText(opts.client, await client((output as PlannedFleet).plan));
    },
  });
  const canonical = run.outputs.get('canonicalize') as PerTenant<Graph> | undefined;
  const tenants = canonical === undefined ? [] : canonical.values.map((g, i) => tenantInput(run.manifest.tenants[i]!, g));
  const plan = (run.outputs.get('plan') as PlannedFleet | undefined)?.plan ?? (run.outputs.get('launch') as PlannedFleet | undefined)?.plan ?? null;
  if (opts.client !== undefined && clientText === undefined) writeText(opts.client, await client(plan!)); // restarted after plan
  const result = (files: readonly string[], extra: Partial<CompileResult> = {}): CompileResult => {
    const cacheReport = cache === undefined ? undefined : clock.time('cache prune', () => reportCache(cache)); // last: the client is in the cache too
    opts.onProgress?.({ done: run.total, total: run.total, label: 'done' });
    return { dir: outDir, manifest: run.manifest, tenants, plan, files, phases: clock.phases(), ...(cacheReport ? { cache: cacheReport } : {}), ...extra };
  };

  if (emit === 'cuda') {
    writeText(path.join(outDir, 'kernels.cu'), renderKernelsCu(plan!));
    return result(['kernels.cu']);
  }
  if (until !== undefined) return result(stageNamed(until)!.dump(run.outputs.get(until) as never, outDir));

  const kernels = run.outputs.get('kernels') as KernelFiles;
  run.step('write the typed client');
  writeText(path.join(outDir, CLIENT_FILE), await client(plan!));
  const manifestCopy = clock.time('manifest copy', () => writeManifestCopy(run.manifest, outDir)); // lets `loom bench` re-plan the baselines
  const files = [...KERNELS.dump(kernels, outDir), CLIENT_FILE, manifestCopy];
  // the next compile of this fleet may keep this plan's weights.bin bytes
  const record = (weightsFile: string) =>
    cache!.recordPlan(
      weightsFile,
      kernels.written.plan,
      plan!,
      run.manifest.tenants.map((t) => t.id),
    );
  if (cache !== undefined && opts.recordPlan !== false) await clock.timeAsync('plan record', () => record(kernels.written.files.weights));
  const deferred = cache !== undefined && opts.recordPlan === false ? { recordPlanAt: record } : {};
  return result(files, { nvccSkipped: kernels.written.nvccSkipped, ...deferred });
}

function sameModelKey(t: TenantSpec): string {
  const dims = Object.keys(t.dims)
    .sort()
    .map((k) => [k, t.dims[k]]);
  return JSON.stringify([t.modelPath, dims, t.maxBatch]);
}

function reportCache(cache: TenantCache): TenantCacheReport {
  const { hits, misses, modelsRead, written, bytesWritten, rejected, writeErrors } = cache.stats;
  const weights = cache.weights === undefined ? {} : { weights: cache.weights };
  return {
    dir: cache.dir,
    hits,
    misses,
    modelsRead,
    written,
    bytesWritten,
    rejected,
    writeErrors,
    pruned: { ...cache.prune(), maxBytes: cache.maxBytes },
    ...weights,
  };
}

// Shared with the CLI, so both say why a stage name does not fit.
export function checkStageNames(emit: string | undefined, from: string | undefined): void {
  if (emit !== undefined && !(EMIT_STAGES as readonly string[]).includes(emit)) {
    const why = emit === 'kernels' ? ' (kernels is the last stage: leave --emit out for the whole plan directory)' : '';
    fail('USAGE', `--emit must be one of ${EMIT_STAGES.join(', ')}, got '${emit}'${why}`);
  }
  if (from !== undefined && !FROM_STAGES.includes(from)) {
    const stage = stageNamed(from);
    const why = stage?.notRestartable ? ` (${from} is not a restart point: ${stage.notRestartable})` : '';
    fail('USAGE', `--from must be one of ${FROM_STAGES.join(', ')} (the stages whose dump can be read back), got '${from}'${why}`);
  }
}

// --dump-after: the pass must be one the stages that run will run.
function dumpAfterHook(pass: string, outDir: string, afterIndex: number, untilIndex: number): (tenant: string, name: string, g: Graph) => void {
  const all = DUMP_AFTER_PASSES;
  if (!all.includes(pass)) fail('USAGE', `--dump-after: unknown pass '${pass}'; passes: ${all.join(', ')}`);
  const stage = LOWERING_PASS_NAMES.includes(pass) ? 'lower' : 'canonicalize';
  const at = STAGE_NAMES.indexOf(stage);
  if (at <= afterIndex || at > untilIndex) fail('USAGE', `--dump-after ${pass}: that pass runs in the ${stage} stage, which this compile does not run`);
  const dir = path.join(outDir, 'dump');
  return (tenant, name, g) => {
    if (name !== pass) return;
    ensureDir(dir);
    writeText(path.join(dir, `${tenant}.${pass}.ir`), printGraph(g));
  };
}

function dumpDirOf(fleet: Manifest | string | readonly string[]): string {
  const list = typeof fleet === 'string' ? [fleet] : isStringList(fleet) ? fleet : [];
  if (list.length !== 1) fail('USAGE', `--from restarts from one dump directory, got ${list.length === 0 ? 'a manifest' : list.join(', ')}`);
  return list[0]!;
}

function toManifest(fleet: Manifest | string | readonly string[], opts: CompileOptions): Manifest {
  const pathOpts = { allowOutsidePaths: opts.allowOutsidePaths === true };
  if (typeof fleet === 'string') {
    return fleet.endsWith('.json') ? readManifest(fleet, pathOpts) : manifestFromFiles([fleet], opts.maxBatch === undefined ? {} : { maxBatch: opts.maxBatch });
  }
  if (isStringList(fleet)) {
    const jsons = fleet.filter((f) => f.endsWith('.json'));
    if (jsons.length > 0) {
      if (fleet.length > 1) fail('USAGE', `give either one manifest (.json) or a list of .onnx files, not both (got ${fleet.join(', ')})`);
      return readManifest(jsons[0]!, pathOpts);
    }
    return manifestFromFiles(fleet, opts.maxBatch === undefined ? {} : { maxBatch: opts.maxBatch });
  }
  return fleet as Manifest;
}

function isStringList(v: unknown): v is readonly string[] {
  return Array.isArray(v);
}
