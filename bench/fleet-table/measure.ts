// Loom's side of a fleet row, end to end as a user calls it: runTick wall time (inputs in host memory →
// outputs in host memory); on CUDA also the captured tick's device time (benchTick, CUDA events) and every
// launch's device time in an eager tick (profileTick), the top ones named from plan.json. Then, in the same
// process, Loom space-only: every tenant planned alone (`loom bench`'s space-only mode), all its plans' ticks
// in flight at once; on CUDA each plan's tick is its own captured graph on its own stream (benchConcurrent).
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { type LoadedPlan, type TickInputs, type TickOutputs, benchConcurrent, clockOf, loadPlan, nativeAddonInfo } from '../../runtime/index.js';
import { benchInputs, launchesPerTick, openSpaceOnly, tickStats, workPerTick, worstError } from '../../src/measure/index.js';
import type { SpaceOnlyDirs, TickStats } from '../../src/measure/index.js';
import { launchRows } from '../../src/fleet/summary.js';
import { median } from '../common.js';
import { ioBytes } from './handoff.js';

export const TOP_LAUNCHES = 10;
const PROFILE_REPS = 5;

export interface TopLaunch {
  readonly id: number;
  readonly kind: string; // strided | batched | grouped | generated
  readonly op: string;
  readonly label: string;
  readonly shapes: string;
  readonly us: number; // median over PROFILE_REPS eager ticks
  readonly share: number; // of the eager tick's summed launch time
}

export interface PlanWork {
  readonly launches: number;
  readonly tenantLayers: number;
  readonly flops: number;
  readonly launchBytes: number; // Σ launches' bytes read + written (weights and activations, per launch)
  readonly weightBytes: number; // the weights arena
  readonly ioBytes: number; // host↔device: every tenant's input and output slots at maxBatch
}

export interface LoomMeasurement {
  readonly backend: 'cpu' | 'cuda';
  readonly device: string;
  readonly iters: number;
  readonly warmup: number;
  readonly runTickUs: TickStats;
  // Throughput with ticks in flight (runTick called while earlier ticks run, up to the plan's pipeline depth):
  // wall time of the timed ticks / their count. A user serving a stream of ticks sees this rate.
  readonly pipelinedUsPerTick?: number;
  readonly deviceTickUs: TickStats | null; // CUDA only
  readonly profile: { readonly eagerLaunchUs: number; readonly top: readonly TopLaunch[] } | null; // CUDA only
  readonly work: PlanWork;
  readonly spaceOnly: SpaceOnlyMeasurement | null; // null: not asked for
}

// How far space-only's outputs may be from the plan's (norm-wise relative, worst tenant output) before the row
// says they differ: the same lowering per tenant, so only the order of reductions changes.
export const SPACE_ONLY_AGREE: Readonly<Record<string, number>> = { fp32: 1e-4, tf32: 5e-3, bf16: 2e-2, fp16: 2e-2 };

export interface SpaceOnlyMeasurement {
  readonly plans: number;
  readonly launches: number; // summed over the plans
  readonly runTickUs: TickStats; // wall: every plan's runTick in flight at once, until the last resolves
  readonly deviceTickUs: TickStats | null; // CUDA: every plan's captured tick launched at once, a stream each
  readonly deviceError: string | null; // why there is no device time on CUDA
  readonly maxRelErrorVsPlan: number; // first tick, worst tenant output against the plan's
  readonly agrees: boolean; // maxRelErrorVsPlan ≤ SPACE_ONLY_AGREE[precision]
}

export interface MeasureOptions {
  readonly backend: 'cpu' | 'cuda';
  readonly iters: number;
  readonly warmup: number;
  // The first tick's inputs and outputs, before any timing (the hand-off writes them for the peer).
  readonly onFirstTick?: (plan: LoadedPlan, inputs: TickInputs, outputs: TickOutputs) => void;
  // Also measure Loom space-only from these per-tenant plans (after the plan is closed), with this precision's
  // agreement bound.
  readonly spaceOnly?: { readonly dirs: SpaceOnlyDirs; readonly precision: string } | null;
}

export async function measureLoom(planDir: string, opts: MeasureOptions): Promise<LoomMeasurement> {
  const loaded = await loadPlan(planDir, { backend: opts.backend });
  let first: { inputs: TickInputs; outputs: TickOutputs } | null = null;
  let main: Omit<LoomMeasurement, 'spaceOnly'>;
  try {
    const inputs = benchInputs(loaded.plan);
    first = { inputs, outputs: await loaded.runTick(inputs) };
    opts.onFirstTick?.(loaded, inputs, first.outputs);
    for (let i = 0; i < opts.warmup; i++) await loaded.runTick(inputs);
    const samples: number[] = [];
    for (let i = 0; i < opts.iters; i++) {
      const t0 = performance.now();
      await loaded.runTick(inputs);
      samples.push((performance.now() - t0) * 1e3);
    }
    const pipelinedUsPerTick = await pipelined(loaded, inputs, opts.iters);
    const cuda = loaded.backend === 'cuda';
    main = {
      backend: clockOf(loaded.backend),
      device: deviceName(clockOf(loaded.backend)),
      iters: opts.iters,
      warmup: opts.warmup,
      runTickUs: tickStats(samples),
      pipelinedUsPerTick,
      deviceTickUs: cuda ? tickStats(loaded.benchTick(opts.iters).deviceUs) : null,
      profile: cuda ? profileLaunches(loaded) : null,
      work: planWork(loaded.plan),
    };
  } finally {
    loaded.close();
  }
  const so = opts.spaceOnly;
  return { ...main, spaceOnly: so ? await measureSpaceOnly(so.dirs, loaded.plan, first, { ...opts, precision: so.precision }) : null };
}

// Loom space-only, timed like the plan: the same inputs, warm-up, then `iters` wall-clock ticks (every
// tenant's runTick in flight at once) and, on CUDA, `iters` rounds of every plan's captured tick launched
// together, each on its own stream, from one start event to the last stream's end.
async function measureSpaceOnly(
  dirs: SpaceOnlyDirs,
  plan: LoadedPlan['plan'],
  first: { inputs: TickInputs; outputs: TickOutputs },
  opts: MeasureOptions & { precision: string },
): Promise<SpaceOnlyMeasurement> {
  const runner = await openSpaceOnly(dirs, { backend: opts.backend });
  try {
    const err = worstError(await runner.tick(first.inputs), first.outputs, plan);
    for (let i = 0; i < opts.warmup; i++) await runner.tick(first.inputs);
    const samples: number[] = [];
    for (let i = 0; i < opts.iters; i++) {
      const t0 = performance.now();
      await runner.tick(first.inputs);
      samples.push((performance.now() - t0) * 1e3);
    }
    let deviceTickUs: TickStats | null = null;
    let deviceError: string | null = null;
    if (runner.loaded.every((l) => l.backend === 'cuda')) {
      try {
        deviceTickUs = tickStats(benchConcurrent(runner.loaded, opts.iters).deviceUs);
      } catch (e) {
        deviceError = (e as Error).message; // the wall-clock numbers still stand
      }
    }
    return {
      plans: runner.plans.length,
      launches: launchesPerTick(runner.plans),
      runTickUs: tickStats(samples),
      deviceTickUs,
      deviceError,
      maxRelErrorVsPlan: err,
      agrees: err <= (SPACE_ONLY_AGREE[opts.precision] ?? SPACE_ONLY_AGREE.fp32!),
    };
  } finally {
    runner.close();
  }
}

const PIPELINE_DEPTH = 3; // loadPlan's default

async function pipelined(loaded: LoadedPlan, inputs: TickInputs, n: number): Promise<number> {
  const inFlight: Promise<unknown>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    inFlight.push(loaded.runTick(inputs));
    if (inFlight.length >= PIPELINE_DEPTH) await inFlight.shift();
  }
  await Promise.all(inFlight);
  return ((performance.now() - t0) * 1e3) / n;
}

export function planWork(plan: LoadedPlan['plan']): PlanWork {
  const w = workPerTick([plan]);
  return {
    launches: plan.launches.length,
    tenantLayers: plan.tenants.reduce((a, t) => a + t.layers, 0),
    flops: w.flops,
    launchBytes: w.bytes,
    weightBytes: plan.weights.bytes,
    ioBytes: ioBytes(plan.tenants),
  };
}

// Where the device time goes: each launch's median over a few eager ticks, the largest first.
function profileLaunches(loaded: LoadedPlan): LoomMeasurement['profile'] {
  const perId = new Map<number, number[]>();
  loaded.profileTick(); // warm: first-use costs (cuBLAS heuristics, module loads) are not the launch's
  for (let r = 0; r < PROFILE_REPS; r++) for (const p of loaded.profileTick()) (perId.get(p.id) ?? perId.set(p.id, []).get(p.id)!).push(p.us);
  const rows = new Map(launchRows(loaded.plan).map((r) => [r.id, r]));
  const timed = [...perId].map(([id, xs]) => ({ id, us: median(xs) }));
  const total = timed.reduce((a, x) => a + x.us, 0);
  const top = timed
    .sort((a, b) => b.us - a.us)
    .slice(0, TOP_LAUNCHES)
    .map((x): TopLaunch => {
      const r = rows.get(x.id);
      return {
        id: x.id,
        kind: r?.kind ?? '?',
        op: r?.op ?? '?',
        label: r?.label ?? '?',
        shapes: r?.shapes ?? '',
        us: x.us,
        share: total > 0 ? x.us / total : 0,
      };
    });
  return { eagerLaunchUs: total, top };
}

function deviceName(backend: 'cpu' | 'cuda'): string {
  if (backend === 'cpu') return os.cpus()[0]?.model ?? 'unknown CPU';
  const gpu = nativeAddonInfo().gpu;
  return typeof gpu?.name === 'string' ? gpu.name : 'CUDA device';
}
