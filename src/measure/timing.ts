// How the benches time ticks, shared by `loom bench`'s modes and its occupancy rows.
import { performance } from 'node:perf_hooks';
import type { LoadPlanOptions } from '../../runtime/index.js';
import { type TickStats, tickStats } from './stats.js';

// Timed ticks of several subjects, interleaved: step i runs every subject once, the first one rotating, so
// a busy host or a clock change slows every subject alike and their ratios stay fair. µs per subject.
export async function timeInterleaved(
  subjects: number,
  ticks: number,
  tick: (k: number) => Promise<unknown>,
  onStep?: (i: number) => void,
): Promise<number[][]> {
  const samples: number[][] = Array.from({ length: subjects }, () => []);
  for (let i = 0; i < ticks; i++) {
    onStep?.(i);
    for (let j = 0; j < subjects; j++) {
      const k = (i + j) % subjects;
      const t0 = performance.now();
      await tick(k);
      samples[k]!.push((performance.now() - t0) * 1e3);
    }
  }
  return samples;
}

// CUDA events around replays of a captured tick, as statistics; null where the backend cannot replay one
// (any failure leaves the wall-clock numbers standing).
export function deviceStats(replay: () => { readonly deviceUs: readonly number[] }): TickStats | null {
  try {
    const t = replay();
    return t.deviceUs.length > 0 ? tickStats(t.deviceUs) : null;
  } catch {
    return null;
  }
}

// The loadPlan options a bench passes on: only what the caller set.
export function benchLoadOptions(opts: { readonly backend?: LoadPlanOptions['backend']; readonly threads?: number }): LoadPlanOptions {
  return { ...(opts.backend ? { backend: opts.backend } : {}), ...(opts.threads !== undefined ? { threads: opts.threads } : {}) };
}
