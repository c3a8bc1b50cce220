// The compile pipeline as data: one ordered list of stages, each with what it takes and gives, how its
// output is dumped (`loom compile --emit <stage>`) and, where it is a restart point, read back
// (`loom compile --from <stage> <dump-dir>`). compileFleet (src/fleet/compile.ts) runs this list.
//
// import, canonicalize and lower work tenant by tenant; the runner streams a tenant through all of them before
// the next one starts (each imported graph is consumed by canonicalize while it is fresh, and progress counts
// tenants). plan, launch and kernels work on the whole fleet. Two shortcuts skip the tenant stages for a
// tenant: a tenant with the same model file, dims and maxBatch as an earlier one shares its outputs
// (PipelineRun.shareKey), and the tenant cache (src/cache/, StageContext.tenantCache) answers with the lower
// stage's output of an unchanged tenant.
//
// Where lowering sits: the planner consumes concrete graphs (src/planner/concretize.ts): the batch symbol bound
// to the tenant's maxBatch, constant folding, then lowerForPlanner's passes, then folding again. That whole
// per-tenant step is the lower stage, so its dump is exactly what the planner reads.
import { copyFileSync } from 'node:fs';
import path from 'node:path';
import { fail } from '../ir/errors.js';
import type { Graph } from '../ir/graph.js';
import type { SizeLimits } from '../ir/limits.js';
import type { Plan } from '../ir/contract/plan.js';
import {
  type BuiltPlan,
  type WrittenPlan,
  WEIGHTS_FILE,
  buildLaunchPlan,
  loadWeights,
  planFromLaunchPlan,
  readPlanDir,
  writeKernels,
  writeLaunchJson,
  writeWeights,
} from '../codegen/index.js';
import { type Branching, type ConcreteIO, type ConcreteTenant, type ConvKernel, type CostModel, concretizeTenant, planConcreteFleet } from './planner/index.js';
import type { Manifest, TenantSpec } from './fleet/manifest.js';
import {
  DUMP_FILE,
  type DumpRecord,
  ensureDir,
  orderedJson,
  parseOrderedJson,
  readDumpRecord,
  readTenantIr,
  writeDumpRecord,
  writeTenantIr,
  writeText,
} from './fleet/stage-dump.js';
import { stableJson } from '../codegen/json.js';
import { canonicalizeTenant, importTenantModel, tenantInput } from './fleet/tenants.js';
import type { PhaseClock } from './fleet/timings.js';
import type { TenantCache } from './cache/tenant-cache.js';
import { forgetTouched, loadTouched } from '../ir/deferred.js';

export const STAGE_NAMES = ['import', 'canonicalize', 'lower', 'plan', 'launch', 'kernels'] as const;
export type StageName = (typeof STAGE_NAMES)[number];

export interface StageContext {
  readonly outDir: string; // where a stage that streams files (launch, kernels) writes them
  readonly nvcc: 'auto' | 'off';
  readonly cacheDir?: string;
  readonly limits?: Partial<SizeLimits>; // size limits for planning (ir/limits.ts)
  readonly maxLanes?: number; // parallel lanes of the tick (src/planner/lanes.ts; default the planner's)
  readonly branching?: Branching; // batch or branch (src/planner/branches.ts; default the planner's)
  readonly squeezeExcite?: boolean; // squeeze-and-excite blocks as one kernel (PlanOptions; default the planner's)
  readonly residualEpilogue?: boolean; // residual adds in the GEMM epilogue (PlanOptions; default the planner's)
  readonly convBiasInGemm?: boolean; // an im2col conv's bias as a k row of its GEMM (PlanOptions; default the planner's)
  readonly convKernel?: ConvKernel; // im2col + GEMM or the generated conv kernel (PlanOptions; default the planner's)
  readonly costModel?: CostModel; // the planner's cost model (a device profile's, `--profile`); default: the roofline
  readonly clock: PhaseClock;
  readonly message: (label: string) => void; // progress within the current step
  readonly onPass?: (tenant: string, pass: string, g: Graph) => void; // after every canonicalizing or lowering pass
  // Tenants whose lowered IR it holds skip import, canonicalize and lower; the others are stored once lowered.
  // Used only when those three stages all run (compileFleet decides).
  readonly tenantCache?: TenantCache;
}

// What the tenant stages hand on: one value per manifest tenant, in manifest order.
export interface PerTenant<T> {
  readonly manifest: Manifest;
  readonly values: readonly T[];
}

export interface PlannedFleet {
  readonly manifest: Manifest;
  readonly plan: Plan;
}

// The launch stage's output: the LaunchPlan built, its weights.bin already on disk in `dir`.
export interface LaunchFiles {
  readonly manifest: Manifest;
  readonly plan: Plan;
  readonly built: BuiltPlan;
  readonly dir: string;
}

export interface KernelFiles {
  readonly manifest: Manifest;
  readonly plan: Plan;
  readonly written: WrittenPlan;
}

interface StageInfo<In, Out> {
  readonly name: StageName;
  readonly description: string;
  readonly input: string;
  readonly output: string;
  readonly dump: (output: Out, dir: string) => string[]; // the files written, relative to dir
  readonly load: ((dir: string) => Out) | null; // null: not a restart point
  readonly notRestartable?: string; // why, where load is null
}

export interface TenantStage<A, B> extends StageInfo<PerTenant<A>, PerTenant<B>> {
  readonly scope: 'tenant';
  readonly phase: string; // --timings phase its time is added to
  readonly label: (t: TenantSpec) => string; // the progress step of a tenant whose first stage this is
  readonly runTenant: (value: A, t: TenantSpec, ctx: StageContext) => B;
}

export interface FleetStage<In, Out> extends StageInfo<In, Out> {
  readonly scope: 'fleet';
  readonly label: ((input: In, last: boolean) => string) | null; // a new progress step; null continues the current one
  readonly run: (input: In, ctx: StageContext, last: boolean) => Out | Promise<Out>;
}

export type Stage<In = never, Out = unknown> = TenantStage<In, Out> | FleetStage<In, Out>;

// --- the stages ------------------------------------------------------------------------------------------

// import and canonicalize dump the same way: one IR file per tenant, restartable.
function irDump(stage: StageName): Pick<StageInfo<unknown, PerTenant<Graph>>, 'dump' | 'load'> {
  return {
    dump: (out, dir) => [
      ...out.values.map((g, i) => writeTenantIr(dir, out.manifest.tenants[i]!.id, g)),
      writeDumpRecord(dir, { stage, manifest: out.manifest }),
    ],
    load: (dir) => {
      const { manifest } = readDumpRecord(dir, stage);
      return { manifest, values: manifest.tenants.map((t) => readTenantIr(dir, t.id, stage)) };
    },
  };
}

export const IMPORT: TenantStage<TenantSpec, Graph> = {
  name: 'import',
  scope: 'tenant',
  description: "decode each tenant's ONNX model into the IR, its symbolic dims bound (the batch dim stays symbolic)",
  input: "the manifest's tenants",
  output: 'raw IR per tenant (ir/<tenant>.ir + dump.json)',
  phase: 'import',
  label: (t) => `import ${t.id} (${t.model})`,
  runTenant: (t, _t, ctx) => importTenantModel(t, ctx.tenantCache?.importHooks(t)),
  ...irDump('import'),
};

export const CANONICALIZE: TenantStage<Graph, Graph> = {
  name: 'canonicalize',
  scope: 'tenant',
  description: 'run the canonicalizing passes (ir/passes CANONICAL_PASSES): fold constants, drop dead code, fold BatchNorm, fuse epilogues',
  input: 'raw IR per tenant',
  output: 'canonical IR per tenant (ir/<tenant>.ir + dump.json)',
  phase: 'canonicalize',
  label: (t) => `canonicalize ${t.id}`,
  runTenant: (g, t, ctx) => canonicalizeTenant(t, g, passHook(t, ctx)),
  ...irDump('canonicalize'),
};

interface LoweredIO {
  readonly inputs: readonly ConcreteIO[];
  readonly outputs: readonly ConcreteIO[];
}

export const LOWER: TenantStage<Graph, ConcreteTenant> = {
  name: 'lower',
  scope: 'tenant',
  description: 'bind the batch dim to maxBatch, fold, run the lowering passes (LOWERING_PASSES): the graph the planner schedules',
  input: 'canonical IR per tenant',
  output: "concrete lowered IR per tenant (ir/<tenant>.ir + dump.json with each tenant's I/O batch axes)",
  // concretization was always timed as part of planning; keeping its phase keeps --timings comparable
  phase: 'plan',
  label: (t) => `lower ${t.id}`,
  runTenant: (g, t, ctx) => concretizeTenant(tenantInput(t, g), passHook(t, ctx)),
  dump: (out, dir) => [
    ...out.values.map((c, i) => writeTenantIr(dir, out.manifest.tenants[i]!.id, c.graph)),
    writeDumpRecord(dir, { stage: 'lower', manifest: out.manifest, tenants: out.values.map((c): LoweredIO => ({ inputs: c.inputs, outputs: c.outputs })) }),
  ],
  load: (dir) => {
    const { manifest, tenants } = readDumpRecord<LoweredIO>(dir, 'lower');
    if (tenants?.length !== manifest.tenants.length) fail('USAGE', `--from lower: '${dir}' dump.json lacks the tenants' I/O`);
    return { manifest, values: manifest.tenants.map((t, i) => ({ graph: readTenantIr(dir, t.id, 'lower'), ...tenants[i]! })) };
  },
};

export const PLAN: FleetStage<PerTenant<ConcreteTenant>, PlannedFleet> = {
  name: 'plan',
  scope: 'fleet',
  description: 'align equal steps of different tenants into shared launches, place every buffer in the arenas, pack the weights',
  input: 'concrete lowered IR per tenant',
  output: "the Plan (plan-summary.json: everything but the weights' bytes)",
  label: (input) => `plan ${input.values.length} tenant${input.values.length === 1 ? '' : 's'}`,
  run: (input, ctx) => {
    const specs = input.manifest.tenants.map(({ id, model, maxBatch, sloMs, checkFinite }) => ({ id, model, maxBatch, sloMs, checkFinite }));
    const plan = () =>
      planConcreteFleet(specs, input.values, {
        precision: input.manifest.precision,
        ...(ctx.limits ? { limits: ctx.limits } : {}),
        ...(ctx.maxLanes !== undefined ? { maxLanes: ctx.maxLanes } : {}),
        ...(ctx.branching !== undefined ? { branching: ctx.branching } : {}),
        ...(ctx.squeezeExcite !== undefined ? { squeezeExcite: ctx.squeezeExcite } : {}),
        ...(ctx.residualEpilogue !== undefined ? { residualEpilogue: ctx.residualEpilogue } : {}),
        ...(ctx.convBiasInGemm !== undefined ? { convBiasInGemm: ctx.convBiasInGemm } : {}),
        ...(ctx.convKernel !== undefined ? { convKernel: ctx.convKernel } : {}),
        ...(ctx.costModel ? { costModel: ctx.costModel } : {}),
      });
    // Tenants read back lazily from the tenant cache hold stand-ins for their large constants (ir/deferred.ts):
    // a plan made while the planner read one is thrown away, and planned again with those constants loaded.
    forgetTouched();
    let planned = ctx.clock.time('plan', plan);
    for (let n = ctx.clock.time('cache read', loadTouched); n > 0; n = ctx.clock.time('cache read', loadTouched)) {
      ctx.message(`plan: ${n} cached constant${n === 1 ? '' : 's'} read by the planner; loaded them, planning again`);
      planned = ctx.clock.time('plan', plan);
    }
    return { manifest: input.manifest, plan: planned };
  },
  dump: (out, dir) => {
    writeText(path.join(dir, 'plan-summary.json'), `${JSON.stringify(planSummary(out.plan), null, 1)}\n`);
    return ['plan-summary.json'];
  },
  load: null,
  notRestartable:
    "plan-summary.json leaves out the weights' bytes and JSON has no ±Infinity; the launch dump holds the same Plan losslessly: restart --from launch",
};

export const LAUNCH: FleetStage<PlannedFleet, LaunchFiles> = {
  name: 'launch',
  scope: 'fleet',
  description: 'write the LaunchPlan: plan.json (launches, tenants, arenas, kernel table) and weights.bin (the packed weights arena)',
  input: 'the Plan',
  output: 'plan.json + weights.bin (+ dump.json)',
  label: (_input, last) => (last ? 'write plan.json and weights.bin' : 'write the plan directory'),
  run: async (input, ctx) => {
    // weights.bin streams to disk while the LaunchPlan is built: a fleet's weights can be several GB. With the
    // tenant cache, an earlier plan's weights.bin of the same layout is copied and only the blobs of changed
    // tenants are written (src/cache/plan-record.ts); the copy may have been started before planning
    const cache = ctx.tenantCache;
    const ids = input.manifest.tenants.map((t) => t.id);
    const found = cache === undefined ? undefined : ctx.clock.time('weights lookup', () => cache.previousWeights(input.plan, ids));
    const copied = cache === undefined ? undefined : await ctx.clock.timeAsync('weights copy (wait)', () => cache.earlyCopyOf(found?.file));
    const previous = found === undefined || copied === undefined ? found : { ...found, copied };
    const built = ctx.clock.time('weights + kernels', () => writeWeights(input.plan, ctx.outDir, ctx.message, previous));
    if (previous !== undefined) cache?.weightsWritten(built.reuse, built.reuseFailed);
    return { ...input, built, dir: ctx.outDir };
  },
  dump: (out, dir) => {
    if (path.resolve(out.dir) !== path.resolve(dir)) copyFileSync(path.join(out.dir, WEIGHTS_FILE), path.join(dir, WEIGHTS_FILE));
    const kernelOps = Object.fromEntries(out.plan.launches.flatMap((l) => (l.kind === 'kernel' ? [[String(l.id), orderedJson(l.op)]] : [])));
    return [path.basename(writeLaunchJson(out.built, dir)), WEIGHTS_FILE, writeDumpRecord(dir, { stage: 'launch', manifest: out.manifest, kernelOps })];
  },
  load: (dir) => {
    const { manifest, kernelOps } = readDumpRecord(dir, 'launch') as DumpRecord & { kernelOps?: Record<string, string> };
    const lp = readPlanDir(dir); // validated; weights.bin's size and sha256 are checked against it
    const plan = planFromLaunchPlan(lp, loadWeights(dir, lp));
    const launches = plan.launches.map((l) => (l.kind === 'kernel' ? { ...l, op: keyOrdered(l.op, kernelOps?.[String(l.id)], dir, l.id) } : l));
    const ordered = { ...plan, launches };
    return { manifest, plan: ordered, built: buildLaunchPlan(ordered), dir };
  },
};

export const KERNELS: FleetStage<LaunchFiles, KernelFiles> = {
  name: 'kernels',
  scope: 'fleet',
  description: 'write kernels.cu (the generated CUDA kernels) and, where nvcc is present, the cubin; plan.json then names the cubin',
  input: 'plan.json + weights.bin',
  output: 'the plan directory: plan.json, weights.bin, kernels.cu (+ kernels.sm_90.cubin)',
  label: null,
  run: async (input, ctx) => {
    ensureDir(ctx.outDir);
    if (path.resolve(input.dir) !== path.resolve(ctx.outDir)) copyFileSync(path.join(input.dir, WEIGHTS_FILE), path.join(ctx.outDir, WEIGHTS_FILE));
    const opts = { nvcc: ctx.nvcc, ...(ctx.cacheDir ? { cacheDir: ctx.cacheDir } : {}), onProgress: ctx.message, onPhase: ctx.clock.add };
    return { manifest: input.manifest, plan: input.plan, written: await writeKernels(input.built, ctx.outDir, opts) };
  },
  // run wrote them already (into the output directory, where a full compile's files go): this names them
  dump: (out) =>
    [out.written.files.plan, out.written.files.weights, out.written.files.kernels, ...(out.written.files.cubin ? [out.written.files.cubin] : [])].map((f) =>
      path.basename(f),
    ),
  load: null,
  notRestartable: 'it is the last stage',
};

export const STAGES = [IMPORT, CANONICALIZE, LOWER, PLAN, LAUNCH, KERNELS] as const;

// A tenant stage's output (a Graph, or a ConcreteTenant holding one) under another tenant's name: import names
// each graph after its tenant, and messages use it; the rest is shared, never copied.
function named(v: unknown, id: string): unknown {
  const o = v as { graph?: Graph; nodes?: unknown };
  if (o.graph !== undefined) return { ...o, graph: { ...o.graph, name: id } };
  if (o.nodes !== undefined) return { ...o, name: id };
  return v;
}

// The cache holds the lower stage's output: it stands in only for a run of import, canonicalize and lower
// that keeps nothing but the last one.
function cachedStages(stages: readonly TenantStage<never, unknown>[], kept: readonly boolean[]): boolean {
  return stages.map((s) => s.name).join(',') === 'import,canonicalize,lower' && kept.filter(Boolean).length === 1;
}

// plan.json's op with the planner's key order back (see orderedJson); both must say the same.
function keyOrdered<T>(op: T, text: string | undefined, dir: string, id: number): T {
  if (text === undefined)
    fail('USAGE', `--from launch: '${path.join(dir, DUMP_FILE)}' lacks kernel op ${id} (write the dump with \`loom compile --emit launch\`)`);
  const ordered = parseOrderedJson(text, `--from launch: kernel op ${id} in '${path.join(dir, DUMP_FILE)}'`) as T;
  if (stableJson(ordered) !== stableJson(op)) fail('PLAN_INVALID', `--from launch: launch ${id}'s op differs between plan.json and ${DUMP_FILE}`);
  return ordered;
}

function passHook(t: TenantSpec, ctx: StageContext): { onPass?: (pass: string, g: Graph) => void } {
  const onPass = ctx.onPass;
  return onPass ? { onPass: (pass, g) => onPass(t.id, pass, g) } : {};
}

// The Plan as JSON for `--emit plan`: everything but the weights' data (their placement stays).
export function planSummary(plan: Plan): unknown {
  return {
    ...plan,
    weights: plan.weights.map((w) => ({
      offset: w.offset,
      dtype: w.tensor.dtype,
      shape: w.tensor.shape,
      bytes: w.tensor.data.byteLength,
    })),
  };
}

export function stageNamed(name: string): Stage<never> | undefined {
  return (STAGES as readonly Stage<never>[]).find((s) => s.name === name);
}

export const RESTART_STAGES: readonly StageName[] = STAGES.filter((s) => s.load !== null).map((s) => s.name);

// --- the runner --------------------------------------------------------------------------------------------

export interface PipelineRun {
  readonly manifest?: Manifest; // the fleet, when starting at import
  readonly from?: { readonly stage: StageName; readonly dir: string }; // or restart after this stage's dump
  readonly until?: StageName; // stop after this stage (default: the last)
  readonly ctx: Omit<StageContext, 'message'>;
  readonly onStep?: (done: number, total: number, label: string) => void;
  readonly afterStage?: (name: StageName, output: unknown, step: (label: string) => void) => void | Promise<void>;
  readonly keep?: readonly StageName[]; // tenant stages whose outputs to keep besides the last one's (they cost memory)
  // Tenants with equal keys get equal tenant-stage outputs (one model file, the same dims and maxBatch): the
  // first is computed, the others share it under their own names. Undefined: no sharing.
  readonly shareKey?: (t: TenantSpec) => string;
}

export interface PipelineResult {
  readonly manifest: Manifest;
  readonly outputs: ReadonlyMap<StageName, unknown>; // each stage's output (the restart point's loaded one too)
  readonly total: number; // progress steps
  readonly step: (label: string) => void; // reports a message in the current step (for what follows the stages)
}

export async function runPipeline(run: PipelineRun): Promise<PipelineResult> {
  const names = STAGES.map((s) => s.name);
  const first = run.from === undefined ? 0 : names.indexOf(run.from.stage) + 1;
  const last = run.until === undefined ? names.length - 1 : names.indexOf(run.until);
  if (first > last) fail('USAGE', `cannot stop after '${run.until}' when restarting after '${run.from?.stage}'`);
  const stages = STAGES.slice(first, last + 1) as readonly Stage<never>[];
  const outputs = new Map<StageName, unknown>();

  let input: unknown;
  if (run.from !== undefined) {
    const from = STAGES[first - 1] as Stage<never>;
    if (from.load === null) fail('USAGE', `--from ${from.name}: not a restart point (${from.notRestartable}); restart from ${RESTART_STAGES.join(', ')}`);
    input = from.load(run.from.dir);
    outputs.set(from.name, input);
  } else {
    if (run.manifest === undefined) fail('USAGE', 'runPipeline: no manifest and no dump to restart from');
    input = { manifest: run.manifest, values: run.manifest.tenants } satisfies PerTenant<TenantSpec>;
  }
  const manifest = (input as { manifest: Manifest }).manifest;

  const tenantStages = stages.filter((s): s is TenantStage<never, unknown> => s.scope === 'tenant');
  const fleetStages = stages.filter((s): s is FleetStage<never, unknown> => s.scope === 'fleet');
  // a stage that continues the current step opens one when nothing ran before it (a restart)
  const opensStep = (s: FleetStage<never, unknown>) => s.label !== null || s === stages[0];
  const total = (tenantStages.length > 0 ? manifest.tenants.length : 0) + fleetStages.filter(opensStep).length;
  let done = -1; // the step under way
  const message = (l: string) => run.onStep?.(Math.max(done, 0), total, l);
  const newStep = (l: string) => {
    done++;
    message(l);
  };
  const ctx: StageContext = { ...run.ctx, message };

  if (tenantStages.length > 0) {
    const per = input as PerTenant<unknown>;
    // an earlier stage's values are dropped unless asked for: a fleet's raw graphs would double its memory
    const kept = tenantStages.map((s, k) => k === tenantStages.length - 1 || (run.keep ?? []).includes(s.name));
    const results = tenantStages.map(() => [] as unknown[]);
    const cache = cachedStages(tenantStages, kept) ? ctx.tenantCache : undefined;
    const shareKey = tenantStages[0]!.name === 'import' ? run.shareKey : undefined;
    const shared = new Map<string, { readonly id: string; readonly values: unknown[] }>();
    manifest.tenants.forEach((t, i) => {
      const key = shareKey?.(t);
      const first = key === undefined ? undefined : shared.get(key);
      if (first !== undefined) {
        newStep(`${t.id}: the same model as ${first.id}`);
        cache?.sharedWith(t.id, first.id);
        first.values.forEach((v, k) => v !== undefined && results[k]!.push(named(v, t.id)));
        return;
      }
      const cached = cache === undefined ? undefined : ctx.clock.time('cache read', () => cache.lookup(t, manifest.precision));
      if (cached !== undefined) {
        newStep(`cached ${t.id}`);
        results[tenantStages.length - 1]!.push(cached);
        if (key !== undefined) shared.set(key, { id: t.id, values: tenantStages.map((_, k) => (k === tenantStages.length - 1 ? cached : undefined)) });
        return;
      }
      newStep(tenantStages[0]!.label(t));
      let v = per.values[i];
      const values: unknown[] = [];
      tenantStages.forEach((s, k) => {
        v = ctx.clock.time(s.phase, () => s.runTenant(v as never, t, ctx));
        if (kept[k]) results[k]!.push(v);
        values.push(kept[k] ? v : undefined);
      });
      if (key !== undefined) shared.set(key, { id: t.id, values });
      if (cache !== undefined) ctx.clock.time('cache write', () => cache.store(t, manifest.precision, v as ConcreteTenant));
    });
    for (const [k, s] of tenantStages.entries()) {
      if (!kept[k]) continue;
      input = { manifest, values: results[k]! } satisfies PerTenant<unknown>;
      outputs.set(s.name, input);
      await run.afterStage?.(s.name, input, message);
    }
  }
  for (const s of fleetStages) {
    const isLast = s === stages[stages.length - 1];
    if (s.label !== null) newStep(s.label(input as never, isLast));
    else if (opensStep(s)) newStep(`write ${s.output}`);
    input = await s.run(input as never, ctx, isLast);
    outputs.set(s.name, input);
    await run.afterStage?.(s.name, input, message);
  }
  return { manifest, outputs, total, step: message };
}
