// The cost model against the device: every launch's predicted time (LaunchInfo.predictedUs, from the model
// the plan was compiled with: the default roofline or a `--profile`) next to its measured time, and the
// predicted tick next to the measured one, with the error in %.
//   per launch: LoadedPlan.profileTick (CUDA: device time of each launch in an eager tick, CUDA events;
//               CPU: the host clock around each launch), each launch's median (CUDA) or fastest (CPU, where
//               another process can only slow it down) over PROFILE_REPS ticks after a warm one
//   tick:       the space-time mode's device p50 (CUDA: the captured tick replayed) or tick p50 (CPU, wall)
import type { LaunchPlan } from '../../codegen/index.js';
import type { LoadedPlan } from '../../runtime/index.js';
import { launchRows } from '../fleet/summary.js';

export const PROFILE_REPS = 5;

export interface LaunchAccuracy {
  readonly id: number;
  readonly stage: number;
  readonly kind: string; // strided | batched | grouped | generated
  readonly op: string; // gemm or the KernelOp
  readonly label: string;
  readonly predictedUs: number;
  readonly measuredUs: number;
  readonly errorPct: number; // (predicted − measured) / measured · 100
  readonly path?: string; // a GEMM launch: how the backend runs it, as it chose at load (backendInfo gemmPaths)
}

export interface KindAccuracyRow {
  readonly kind: string; // e.g. "strided gemm", "generated softmax"
  readonly launches: number;
  readonly predictedUs: number;
  readonly measuredUs: number;
  readonly errorPct: number;
}

export interface PredictionCheck {
  readonly costModel: string; // plan.cost.device
  readonly profile: { readonly name: string; readonly hash: string } | null;
  readonly launchTiming: string; // how the per-launch times were taken
  readonly tick: { readonly predictedUs: number; readonly measuredUs: number; readonly errorPct: number; readonly measured: string };
  readonly launchSum: { readonly predictedUs: number; readonly measuredUs: number; readonly errorPct: number } | null;
  readonly byKind: readonly KindAccuracyRow[];
  readonly launches: readonly LaunchAccuracy[]; // empty where the backend could not profile
  readonly gemmPaths?: string; // the backend's load-time GEMM choices, summed up (backendInfo gemmPathsNote)
}

// The CUDA backend's load-time GEMM choices (backendInfo): per launch id its path and timing, from `gemmPaths`
// ("67: tiled kernel, split-K 4, epilogue fused 21.7 us (was 26.3 us); 79: …"), and their summary.
export function gemmPathsOf(info: Readonly<Record<string, unknown>>): { readonly byLaunch: Map<number, string>; readonly note?: string } {
  const byLaunch = new Map<number, string>();
  const raw = info.gemmPaths;
  if (typeof raw === 'string')
    for (const part of raw.split(/;\s*(?=\d+:\s)/)) {
      const m = /^(\d+):\s+(.*)$/s.exec(part.trim());
      if (m) byLaunch.set(Number(m[1]), m[2]!);
    }
  return { byLaunch, ...(typeof info.gemmPathsNote === 'string' && info.gemmPathsNote ? { note: info.gemmPathsNote } : {}) };
}

export const errorPct = (predicted: number, measured: number): number => (measured > 0 ? ((predicted - measured) / measured) * 100 : 0);

export function profileLaunchTimes(loaded: LoadedPlan): Map<number, number> | null {
  try {
    const perId = new Map<number, number[]>();
    loaded.profileTick(); // warm: first-use costs (cuBLAS heuristics, module loads, page faults) are not a launch's
    for (let r = 0; r < PROFILE_REPS; r++) for (const p of loaded.profileTick()) (perId.get(p.id) ?? perId.set(p.id, []).get(p.id)!).push(p.us);
    const pick = loaded.backend === 'cpu' ? (xs: number[]) => Math.min(...xs) : median;
    return new Map([...perId].map(([id, xs]) => [id, pick(xs)]));
  } catch {
    return null; // a backend that cannot profile: the tick comparison stands alone
  }
}

export function checkPredictions(
  plan: LaunchPlan,
  perLaunch: ReadonlyMap<number, number> | null,
  tick: { readonly measuredUs: number; readonly measured: string },
  backend: 'cpu' | 'cuda',
  paths?: ReturnType<typeof gemmPathsOf>,
): PredictionCheck {
  const rows = launchRows(plan);
  const launches: LaunchAccuracy[] = perLaunch
    ? rows
        .filter((r) => perLaunch.has(r.id))
        .map((r) => {
          const measuredUs = perLaunch.get(r.id)!;
          return {
            id: r.id,
            stage: r.stage,
            kind: r.kind,
            op: r.op,
            label: r.label,
            predictedUs: r.predictedUs,
            measuredUs,
            errorPct: errorPct(r.predictedUs, measuredUs),
            ...(paths?.byLaunch.has(r.id) ? { path: paths.byLaunch.get(r.id)! } : {}),
          };
        })
    : [];
  const byKind = new Map<string, { launches: number; predictedUs: number; measuredUs: number }>();
  for (const l of launches) {
    const k = `${l.kind} ${l.op}`;
    const a = byKind.get(k) ?? { launches: 0, predictedUs: 0, measuredUs: 0 };
    byKind.set(k, { launches: a.launches + 1, predictedUs: a.predictedUs + l.predictedUs, measuredUs: a.measuredUs + l.measuredUs });
  }
  const sum = (f: (l: LaunchAccuracy) => number) => launches.reduce((a, l) => a + f(l), 0);
  return {
    costModel: plan.cost.device,
    profile: plan.cost.profile ? { name: plan.cost.profile.name, hash: plan.cost.profile.hash } : null,
    launchTiming:
      backend === 'cuda'
        ? `device time of each launch in an eager tick (CUDA events), median of ${PROFILE_REPS}`
        : `host clock around each launch, fastest of ${PROFILE_REPS} ticks`,
    tick: {
      predictedUs: predictedTickUs(plan),
      measuredUs: tick.measuredUs,
      errorPct: errorPct(predictedTickUs(plan), tick.measuredUs),
      measured: tick.measured,
    },
    launchSum:
      launches.length > 0
        ? {
            predictedUs: sum((l) => l.predictedUs),
            measuredUs: sum((l) => l.measuredUs),
            errorPct: errorPct(
              sum((l) => l.predictedUs),
              sum((l) => l.measuredUs),
            ),
          }
        : null,
    byKind: [...byKind].map(([kind, a]) => ({ kind, ...a, errorPct: errorPct(a.predictedUs, a.measuredUs) })).sort((x, y) => y.measuredUs - x.measuredUs),
    launches,
    ...(paths?.note ? { gemmPaths: paths.note } : {}),
  };
}

// The tick the cost model predicts as the plan runs: a laned plan's lanes run by lane-sim (plus the tick's io
// with a profile), else the launches in order (predictedTickUs includes the io).
export function predictedTickUs(plan: { readonly cost: LaunchPlan['cost'] }): number {
  const c = plan.cost;
  return c.criticalPathUs !== undefined ? c.criticalPathUs + (c.tickIoUs ?? 0) : c.predictedTickUs;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
