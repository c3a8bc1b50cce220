// `loom bench` as a library call: re-plan the fleet's baselines, load all three modes on one backend,
// check they compute the same outputs, then time warm ticks of each, interleaved (wall clock around the
// tick; on CUDA also the device time of the captured tick, from CUDA events) and derive throughput and ratios.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type LaunchPlan, readPlanDir } from '../../codegen/index.js';
import { fail } from '../../ir/errors.js';
import { type LoadedPlan, type TickOutputs, benchConcurrent, clockOf, nativeAddonInfo } from '../../runtime/index.js';
import { benchInputs } from '../fleet/inputs.js';
import { relativeError } from '../fleet/oracle.js';
import { planTotals } from '../fleet/summary.js';
import { readPlanManifest } from '../fleet/manifest-copy.js';
import { BENCH_MODES, type BenchMode, type ModeRunner, launchesPerTick, modeSemantics, openModes, workPerTick } from './modes.js';
import { type TickStats, tickStats } from './stats.js';
import { benchLoadOptions, deviceStats, timeInterleaved } from './timing.js';
import { writeBaselines } from './variants.js';
import { type PredictionCheck, checkPredictions, gemmPathsOf, profileLaunchTimes } from './predicted.js';

export const BENCH_FORMAT = 'loom-bench';
const AGREE_TOLERANCE = 1e-4; // fp32, norm-wise relative: the modes run the same lowering, so far below this

export interface BenchOptions {
  readonly backend?: 'auto' | 'cpu' | 'cuda';
  readonly ticks?: number; // timed ticks per mode (default 200)
  readonly warmup?: number; // untimed ticks per mode first (default 20)
  readonly threads?: number; // CPU backend worker threads per loaded plan (default: the backend's)
  readonly manifest?: string; // the fleet's manifest, when the plan dir has no manifest.json copy
  readonly allowOutsidePaths?: boolean; // that manifest's relative model paths may lead out of its folder
  readonly nvcc?: 'auto' | 'off'; // the baselines' kernels: 'off' (default) compiles them at load, 'auto' with nvcc (cached cubins)
  readonly onProgress?: (p: BenchProgress) => void;
}

export interface BenchProgress {
  readonly phase: 'prepare' | 'warm-up' | 'measure';
  readonly done: number;
  readonly total: number;
  readonly label: string;
}

export interface ModeResult {
  readonly mode: BenchMode;
  readonly semantics: string;
  readonly plans: number;
  readonly launchesPerTick: number;
  readonly flopsPerTick: number;
  readonly bytesPerTick: number;
  readonly tickUs: TickStats; // wall clock around one tick (inputs in → outputs out)
  readonly deviceTickUs: TickStats | null; // CUDA events around a replay of the captured tick; null where not measured
  readonly inferencesPerSec: number; // rows over all tenants per tick / p50 tick
  readonly flopsPerSec: number; // flopsPerTick / p50 tick
  readonly bytesPerSec: number;
  readonly spaceTimeSpeedup: number; // this mode's p50 / space-time's p50: how much faster the plan is
  readonly maxRelErrorVsSpaceTime: number; // first tick, worst tenant output (norm-wise relative)
  readonly samplesUs: readonly number[];
}

export interface BenchResult {
  readonly format: typeof BENCH_FORMAT;
  readonly version: 1;
  readonly date: string; // ISO 8601
  readonly planDir: string;
  readonly backend: 'cpu' | 'cuda';
  readonly device: string; // the CPU model, or the GPU's name
  readonly deviceInfo: Readonly<Record<string, string | number>>;
  // loadAverage: the host's 1-minute load before and after the run (a busy host makes wall-clock numbers noisy)
  readonly host: {
    readonly platform: string;
    readonly arch: string;
    readonly cpus: number;
    readonly cpuModel: string;
    readonly node: string;
    readonly loadAverage: readonly [number, number];
  };
  readonly settings: { readonly ticks: number; readonly warmup: number; readonly threads: number | null; readonly rows: 'maxBatch' };
  readonly fleet: {
    readonly tenants: ReadonlyArray<{ readonly id: string; readonly model: string; readonly maxBatch: number; readonly layers: number }>;
    readonly tenantCount: number;
    readonly rowsPerTick: number;
    readonly stages: number;
    readonly launches: number;
    readonly tenantLayers: number;
    readonly flops: number;
    readonly bytes: number;
    readonly predictedTickUs: number;
    readonly ungroupedTickUs: number;
    readonly floorUs: number;
    readonly costModel: string;
  };
  readonly modes: readonly ModeResult[];
  // the cost model against the device: per launch and for the whole tick (predicted.ts)
  readonly predictions: PredictionCheck;
}

export async function benchFleet(planDir: string, opts: BenchOptions = {}): Promise<BenchResult> {
  const ticks = opts.ticks ?? 200;
  const warmup = opts.warmup ?? 20;
  if (!Number.isInteger(ticks) || ticks < 1) fail('USAGE', `ticks must be a positive integer, got ${ticks}`);
  if (!Number.isInteger(warmup) || warmup < 0) fail('USAGE', `warmup must be a non-negative integer, got ${warmup}`);
  const plan = readPlanDir(planDir);
  const manifest = readPlanManifest(planDir, opts.manifest, { allowOutsidePaths: opts.allowOutsidePaths === true });
  const progress = opts.onProgress ?? (() => {});
  const prepTotal = plan.tenants.length * 2 + 2;
  let prepDone = 0;
  const prep = (label: string) => progress({ phase: 'prepare', done: prepDone++, total: prepTotal, label });

  const loadBefore = os.loadavg()[0]!;
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'loom-bench-'));
  let runners: ModeRunner[] = [];
  try {
    const baselines = await writeBaselines(plan, manifest, scratch, { onStep: prep, ...(opts.nvcc ? { nvcc: opts.nvcc } : {}) });
    prep('load the three modes');
    runners = await openModes(planDir, baselines, benchLoadOptions(opts));
    const backend = clockOf(runners[0]!.loaded[0]!.backend);
    const inputs = benchInputs(plan);

    const first = new Map<BenchMode, TickOutputs>();
    for (const r of runners) first.set(r.mode, await r.tick(inputs));
    const reference = first.get('space-time')!;
    const errors = new Map(runners.map((r) => [r.mode, worstError(first.get(r.mode)!, reference, plan)]));
    const disagree = [...errors].filter(([, e]) => !(e <= AGREE_TOLERANCE));
    if (disagree.length > 0) {
      fail(
        'EVAL',
        `bench: ${disagree.map(([m, e]) => `${m} (rel. error ${e.toExponential(2)})`).join(', ')} computes different outputs than the plan; did the models change since \`loom compile\`?`,
      );
    }

    // Timed ticks go round-robin over the modes (the first mode rotating), so a busy host or a clock change
    // slows every mode alike and the ratios stay fair; each mode warms up on its own first.
    for (const [k, r] of runners.entries()) {
      for (let i = 0; i < warmup; i++) {
        progress({ phase: 'warm-up', done: k * warmup + i, total: runners.length * warmup, label: r.mode });
        await r.tick(inputs);
      }
    }
    const timed = await timeInterleaved(
      runners.length,
      ticks,
      (k) => runners[k]!.tick(inputs),
      (i) => progress({ phase: 'measure', done: i, total: ticks, label: 'one tick of every mode per step' }),
    );
    const samples = new Map<BenchMode, number[]>(runners.map((r, k) => [r.mode, timed[k]!]));
    progress({ phase: 'measure', done: ticks, total: ticks, label: 'done' });
    const measured = new Map(runners.map((r) => [r.mode, { samples: samples.get(r.mode)!, device: backend === 'cuda' ? deviceTimes(r, ticks) : null }]));

    const rowsPerTick = plan.tenants.reduce((a, t) => a + t.maxBatch, 0);
    const spaceTimeP50 = tickStats(measured.get('space-time')!.samples).p50;
    progress({ phase: 'measure', done: ticks, total: ticks, label: 'per-launch times of the plan' });
    const planRunner = runners.find((r) => r.mode === 'space-time')!;
    const deviceP50 = measured.get('space-time')!.device?.p50;
    const predictions = checkPredictions(
      plan,
      profileLaunchTimes(planRunner.loaded[0]!),
      deviceP50 !== undefined
        ? { measuredUs: deviceP50, measured: 'device p50 (CUDA events around a replay of the captured tick)' }
        : { measuredUs: spaceTimeP50, measured: 'tick p50 (wall clock around one tick)' },
      backend,
      backend === 'cuda' ? gemmPathsOf(planRunner.loaded[0]!.backendInfo()) : undefined,
    );
    const modes = BENCH_MODES.map((mode): ModeResult => {
      const r = runners.find((x) => x.mode === mode)!;
      const m = measured.get(mode)!;
      const stats = tickStats(m.samples);
      const work = workPerTick(r.plans);
      const secs = stats.p50 / 1e6;
      return {
        mode,
        semantics: modeSemantics(mode, backend),
        plans: r.plans.length,
        launchesPerTick: launchesPerTick(r.plans),
        flopsPerTick: work.flops,
        bytesPerTick: work.bytes,
        tickUs: stats,
        deviceTickUs: m.device,
        inferencesPerSec: rowsPerTick / secs,
        flopsPerSec: work.flops / secs,
        bytesPerSec: work.bytes / secs,
        spaceTimeSpeedup: stats.p50 / spaceTimeP50,
        maxRelErrorVsSpaceTime: errors.get(mode)!,
        samplesUs: m.samples,
      };
    });
    return {
      format: BENCH_FORMAT,
      version: 1,
      date: new Date().toISOString(),
      planDir: path.resolve(planDir),
      backend,
      ...deviceOf(backend, runners.find((r) => r.mode === 'space-time')!.loaded[0]!),
      host: {
        platform: process.platform,
        arch: process.arch,
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        node: process.version,
        loadAverage: [loadBefore, os.loadavg()[0]!],
      },
      settings: { ticks, warmup, threads: opts.threads ?? null, rows: 'maxBatch' },
      fleet: fleetSummary(plan, rowsPerTick),
      modes,
      predictions,
    };
  } finally {
    for (const r of runners) r.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}

export { benchInputs };

// The worst norm-wise relative error over the outputs of `tenants` (default: all of the plan's).
export function worstError(got: TickOutputs, want: TickOutputs, plan: LaunchPlan, tenants?: readonly string[]): number {
  let worst = 0;
  for (const t of plan.tenants) {
    if (tenants !== undefined && !tenants.includes(t.id)) continue;
    for (const io of t.outputs) {
      const g = got[t.id]?.[io.name];
      const w = want[t.id]?.[io.name];
      const e = g && w ? relativeError(g, w) : Infinity;
      if (!(e <= worst)) worst = e;
    }
  }
  return worst;
}

// CUDA: replays of the captured tick timed with CUDA events. Space-only's plans (one per tenant) are
// launched together, each graph on its own stream, from one start event to the last stream's end.
function deviceTimes(r: ModeRunner, iters: number): TickStats | null {
  if (r.loaded.length === 0 || r.loaded.some((l) => l.backend !== 'cuda')) return null;
  return deviceStats(() => (r.loaded.length === 1 ? r.loaded[0]!.benchTick(iters) : benchConcurrent(r.loaded, iters)));
}

// The CPU model, or the GPU's name and what the addon and `loaded` (a plan on it) report about it.
export function deviceOf(backend: 'cpu' | 'cuda', loaded: LoadedPlan): { device: string; deviceInfo: Record<string, string | number> } {
  if (backend === 'cpu') {
    const cpus = os.cpus();
    return { device: cpus[0]?.model ?? 'unknown CPU', deviceInfo: { cpus: cpus.length, threadsDefault: safeAddonThreads() } };
  }
  const info: Record<string, string | number> = {};
  try {
    Object.assign(info, nativeAddonInfo().gpu ?? {});
  } catch {
    // the addon loaded before (the plans run on it); info is best effort
  }
  try {
    const st = loaded.backendInfo();
    for (const [k, v] of Object.entries(st)) if (!(k in info)) info[k] = v;
  } catch {
    // best effort
  }
  const name = typeof info.name === 'string' ? info.name : typeof info.device === 'string' ? info.device : 'CUDA device';
  return { device: name, deviceInfo: info };
}

function safeAddonThreads(): number {
  try {
    return nativeAddonInfo().threads;
  } catch {
    return 0;
  }
}

function fleetSummary(plan: LaunchPlan, rowsPerTick: number): BenchResult['fleet'] {
  const t = planTotals(plan);
  return {
    tenants: plan.tenants.map((x) => ({ id: x.id, model: x.model, maxBatch: x.maxBatch, layers: x.layers })),
    tenantCount: t.tenants,
    rowsPerTick,
    stages: t.stages,
    launches: t.launches,
    tenantLayers: t.tenantLayers,
    flops: t.flops,
    bytes: t.bytes,
    predictedTickUs: t.predictedTickUs,
    ungroupedTickUs: t.ungroupedTickUs,
    floorUs: t.floorUs,
    costModel: t.device,
  };
}
