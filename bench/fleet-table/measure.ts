// Loom's side of a fleet row, end to end as a user calls it: runTick wall time (inputs in host memory →
// outputs in host memory); on CUDA also the captured tick's device time (benchTick, CUDA events) and every
// launch's device time in an eager tick (profileTick), the top ones named from plan.json.
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { type LoadedPlan, type TickInputs, type TickOutputs, loadPlan, nativeAddonInfo } from '../../runtime/index.js';
import { benchInputs, tickStats, workPerTick } from '../../src/measure/index.js';
import type { TickStats } from '../../src/measure/index.js';
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
}

export interface MeasureOptions {
  readonly backend: 'cpu' | 'cuda';
  readonly iters: number;
  readonly warmup: number;
  // The first tick's inputs and outputs, before any timing (the hand-off writes them for the peer).
  readonly onFirstTick?: (plan: LoadedPlan, inputs: TickInputs, outputs: TickOutputs) => void;
}

export async function measureLoom(planDir: string, opts: MeasureOptions): Promise<LoomMeasurement> {
  const loaded = await loadPlan(planDir, { backend: opts.backend });
  try {
    const inputs = benchInputs(loaded.plan);
    opts.onFirstTick?.(loaded, inputs, await loaded.runTick(inputs));
    for (let i = 0; i < opts.warmup; i++) await loaded.runTick(inputs);
    const samples: number[] = [];
    for (let i = 0; i < opts.iters; i++) {
      const t0 = performance.now();
      await loaded.runTick(inputs);
      samples.push((performance.now() - t0) * 1e3);
    }
    const pipelinedUsPerTick = await pipelined(loaded, inputs, opts.iters);
    const cuda = loaded.backend === 'cuda';
    return {
      backend: loaded.backend,
      device: deviceName(loaded.backend),
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
