// One row of bench/space-time.ts: a fleet's `loom bench` result (time-only, space-only, space-time on one
// backend, in one process) reduced to the three device ticks, the two ratios and issue 13's targets.
import type { BenchMode, BenchResult } from '../../src/measure/index.js';
import { TARGET_SPACE_ONLY } from '../fleet-table/row.js';

export { TARGET_SPACE_ONLY };
export const TARGET_TIME_ONLY = 0.5; // issue 13: the plan's device tick ≤ 0.5x time-only's

export interface ModeTick {
  readonly plans: number;
  readonly launches: number; // per tick, summed over the mode's plans
  readonly wallP50Us: number; // wall clock around one tick, host in → host out
  readonly deviceP50Us: number | null; // CUDA events (space-only: every plan's graph at once, a stream each)
}

export interface Ratios {
  readonly vsSpaceOnly: number | null; // space-time p50 / space-only p50
  readonly vsTimeOnly: number | null; // space-time p50 / time-only p50
}

export interface SpaceTimeRow {
  readonly fleet: string;
  readonly description: string;
  readonly tenants: number;
  readonly modes: Readonly<Record<BenchMode, ModeTick>>;
  readonly device: Ratios; // null ratios where a mode has no device time (CPU backend)
  readonly wall: Ratios;
  readonly targets: { readonly spaceOnly: boolean | null; readonly timeOnly: boolean | null }; // on device ticks
  readonly maxRelErrorVsSpaceTime: number; // worst mode, first tick (loom bench refuses > 1e-4)
  readonly seconds: Readonly<Record<string, number>>;
}

export type SpaceTimeEntry =
  | { readonly status: 'measured'; readonly row: SpaceTimeRow }
  | { readonly status: 'failed'; readonly fleet: string; readonly description: string; readonly reason: string };

const ratio = (a: number | null, b: number | null): number | null => (a === null || b === null || !(b > 0) ? null : a / b);

export function spaceTimeRow(
  base: { fleet: string; description: string; seconds: Readonly<Record<string, number>> },
  bench: Pick<BenchResult, 'modes' | 'fleet'>,
): SpaceTimeRow {
  const tick = (mode: BenchMode): ModeTick => {
    const m = bench.modes.find((x) => x.mode === mode);
    if (!m) throw new Error(`the bench result has no ${mode} mode`);
    return { plans: m.plans, launches: m.launchesPerTick, wallP50Us: m.tickUs.p50, deviceP50Us: m.deviceTickUs?.p50 ?? null };
  };
  const modes = { 'time-only': tick('time-only'), 'space-only': tick('space-only'), 'space-time': tick('space-time') };
  const of = (k: 'wallP50Us' | 'deviceP50Us'): Ratios => ({
    vsSpaceOnly: ratio(modes['space-time'][k], modes['space-only'][k]),
    vsTimeOnly: ratio(modes['space-time'][k], modes['time-only'][k]),
  });
  const device = of('deviceP50Us');
  return {
    fleet: base.fleet,
    description: base.description,
    tenants: bench.fleet.tenantCount,
    modes,
    device,
    wall: of('wallP50Us'),
    targets: {
      spaceOnly: device.vsSpaceOnly === null ? null : device.vsSpaceOnly <= TARGET_SPACE_ONLY,
      timeOnly: device.vsTimeOnly === null ? null : device.vsTimeOnly <= TARGET_TIME_ONLY,
    },
    maxRelErrorVsSpaceTime: Math.max(...bench.modes.map((m) => m.maxRelErrorVsSpaceTime)),
    seconds: base.seconds,
  };
}
