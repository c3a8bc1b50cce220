// The three ways `loom bench` runs a fleet, each behind one `tick(inputs)`:
//   time-only   one plan, one launch per tenant step, tenants one after another (planFleet grouping 'none')
//   space-only  one plan per tenant (each planned alone), all tenants' ticks in flight at once
//   space-time  the compiled plan itself
import type { LaunchPlan } from '../../codegen/index.js';
import { type LoadPlanOptions, type LoadedPlan, type TickInputs, type TickOutputs, loadPlan } from '../../runtime/index.js';
import type { BaselineDirs, SpaceOnlyDirs } from './variants.js';

export const BENCH_MODES = ['time-only', 'space-only', 'space-time'] as const;
export type BenchMode = (typeof BENCH_MODES)[number];

// What each mode means, printed under the table and stored in the JSON (`cpu` / `cuda` differ for space-only).
export function modeSemantics(mode: BenchMode, backend: 'cpu' | 'cuda'): string {
  switch (mode) {
    case 'time-only':
      return 'every tenant step is its own launch, tenants one after another, no batching across tenants (the fleet planned with grouping none)';
    case 'space-only':
      return backend === 'cpu'
        ? "each tenant planned alone (one plan per tenant, no batching across tenants); every tenant's tick is in flight at once (overlapping runTick calls on the libuv pool, each plan with its own CPU worker threads); tick = until the last finishes"
        : "each tenant planned alone (one plan per tenant, no batching across tenants); wall: every tenant's runTick in flight at once, tick = until the last finishes; device: every plan's captured graph launched together, each on its own CUDA stream, from one start event to the last stream's end";
    case 'space-time':
      return "the compiled plan: tenants' equal steps aligned into shared launches";
    default: {
      const never: never = mode;
      throw new Error(`unknown bench mode ${String(never)}`);
    }
  }
}

export interface ModeRunner {
  readonly mode: BenchMode;
  readonly plans: readonly LaunchPlan[];
  readonly loaded: readonly LoadedPlan[];
  tick(inputs: TickInputs): Promise<TickOutputs>;
  close(): void;
}

export async function openMode(mode: BenchMode, planDir: string, baselines: BaselineDirs, opts: LoadPlanOptions): Promise<ModeRunner> {
  switch (mode) {
    case 'space-time':
    case 'time-only': {
      const dir = mode === 'space-time' ? planDir : baselines.timeOnly;
      const loaded = await loadPlan(dir, opts);
      return { mode, plans: [loaded.plan], loaded: [loaded], tick: (inputs) => loaded.runTick(inputs), close: () => loaded.close() };
    }
    case 'space-only':
      return openSpaceOnly(baselines.spaceOnly, opts);
    default: {
      const never: never = mode;
      throw new Error(`unknown bench mode ${String(never)}`);
    }
  }
}

// Space-only: one loaded plan per tenant; a tick hands each plan its tenant's inputs, all in flight at once
// (tick = until the last finishes). Closes what it opened if a load fails.
export async function openSpaceOnly(spaceOnly: SpaceOnlyDirs, opts: LoadPlanOptions): Promise<ModeRunner> {
  const loaded: LoadedPlan[] = [];
  try {
    for (const b of spaceOnly) loaded.push(await loadPlan(b.dir, opts));
  } catch (e) {
    for (const l of loaded) l.close();
    throw e;
  }
  const ids = spaceOnly.map((b) => b.tenant);
  const tick = async (inputs: TickInputs): Promise<TickOutputs> => {
    const parts = await Promise.all(ids.map((id, i) => (inputs[id] ? loaded[i]!.runTick({ [id]: inputs[id]! }) : Promise.resolve({}))));
    return Object.assign({}, ...parts) as TickOutputs;
  };
  return { mode: 'space-only', plans: loaded.map((l) => l.plan), loaded, tick, close: () => loaded.forEach((l) => l.close()) };
}

// Every mode of a plan at once (tests compare their outputs); closes what it opened if one fails.
export async function openModes(
  planDir: string,
  baselines: BaselineDirs,
  opts: LoadPlanOptions,
  modes: readonly BenchMode[] = BENCH_MODES,
): Promise<ModeRunner[]> {
  const out: ModeRunner[] = [];
  try {
    for (const m of modes) out.push(await openMode(m, planDir, baselines, opts));
  } catch (e) {
    for (const r of out) r.close();
    throw e;
  }
  return out;
}

export function launchesPerTick(plans: readonly LaunchPlan[]): number {
  return plans.reduce((a, p) => a + p.launches.length, 0);
}

export function workPerTick(plans: readonly LaunchPlan[]): { flops: number; bytes: number } {
  let flops = 0;
  let bytes = 0;
  for (const p of plans)
    for (const l of p.launches) {
      flops += l.info.flops;
      bytes += l.info.bytes;
    }
  return { flops, bytes };
}
