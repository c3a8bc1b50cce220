// How `loom calibrate` times things on each backend.
//   CUDA: each point's two tenants (N/2 and N repetitions) are replayed alone as masked ticks
//         (LOOM_CUDA_SPARSE=always: only the live tenant's launches run, from a captured graph after the
//         first tick); the difference of their device times (CUDA events) over N/2 is one launch inside a
//         captured tick, every fixed cost of a tick cancelled. Two independent launches' overlap: two
//         plans' ticks side by side on their own streams (benchConcurrent) against one alone.
//   CPU:  the plan's launches timed one by one on the host clock (profileTick): each launch's fastest of a few
//         ticks, the median over a point's launches.
//   Both: the tick's own cost (tick.io) from one-tenant probe plans' full ticks, one per io size.
import path from 'node:path';
import { rmSync } from 'node:fs';
import { writePlanDir } from '../../codegen/index.js';
import { fail } from '../../ir/errors.js';
import { makeTensor } from '../../ir/tensor.js';
import { type LoadedPlan, benchConcurrent, loadPlan, withBackendEnv } from '../../runtime/index.js';
import { type BenchPlan, type PointTenants, buildBenchPlan, buildIoPlan } from './bench-plan.js';
import { fitLinear, type Measurement } from './fit.js';
import { type BenchPoint, ioSizes } from './grid.js';
import { fmtMiB, fmtUs, median, round, yieldLoop } from './numbers.js';
import type { ConcurrencyPoint, ProfileKind } from './profile.js';

export const ROTATE_BYTES = { cuda: 96 * 2 ** 20, cpu: 32 * 2 ** 20 } as const;
export const CUDA_ITERS = { quick: 20, full: 50 } as const;
export const CPU_REPS = { quick: 3, full: 7 } as const;
export const MIN_US = 1e-3;

export interface PointResult {
  readonly point: BenchPoint;
  readonly flops: number;
  readonly bytes: number;
  readonly epilogueBytes: number;
  readonly us: number;
}

export async function measureCuda(loaded: LoadedPlan, bench: BenchPlan, quick: boolean, onPoint: (i: number, r: PointResult) => void): Promise<PointResult[]> {
  const iters = CUDA_ITERS[quick ? 'quick' : 'full'];
  const out: PointResult[] = [];
  for (const [i, pt] of bench.points.entries()) {
    const time = (tenant: string): number => {
      const t = loaded.benchTick(iters, [tenant]);
      const info = loaded.backendInfo();
      if (info.benchSparse !== 1) {
        fail(
          'EVAL',
          `calibrate: the CUDA backend ran the masked tick of '${tenant}' in full (sparseMode ${String(info.sparseMode)}, available ${String(info.sparseAvailable)}${info.sparseNote ? `: ${String(info.sparseNote)}` : ''}); per-launch times need the sparse tick`,
        );
      }
      return median(t.deviceUs);
    };
    let short = time(pt.short!);
    let long = time(pt.long);
    // The difference of two medians can come out <= 0 when one of them caught noise (seen on an H100 for the
    // quick grid's largest eltwise point: 0.001 us recorded). Measure again; if it stays so, take the long
    // tenant's whole tick per launch (an upper bound: it includes the tick's fixed cost) rather than ~0.
    for (let retry = 0; retry < 2 && long <= short; retry++) {
      short = time(pt.short!);
      long = time(pt.long);
    }
    const perLaunch = long > short ? (long - short) / (pt.longCount - pt.shortCount) : long / pt.longCount;
    const r = result(pt, Math.max(MIN_US, perLaunch));
    out.push(r);
    onPoint(i, r);
    await yieldLoop();
  }
  return out;
}

export async function measureCpu(loaded: LoadedPlan, bench: BenchPlan, quick: boolean, onPoint: (i: number, r: PointResult) => void): Promise<PointResult[]> {
  const reps = CPU_REPS[quick ? 'quick' : 'full'];
  const perId = new Map<number, number[]>();
  loaded.profileTick(); // warm: first touches of the arenas and the thread pool are not a launch's
  for (let r = 0; r < reps; r++) {
    for (const p of loaded.profileTick()) (perId.get(p.id) ?? perId.set(p.id, []).get(p.id)!).push(p.us);
    await yieldLoop();
  }
  // each launch's fastest repetition (another process can only slow a launch down), then the median launch
  return bench.points.map((pt, i) => {
    const r = result(pt, Math.max(MIN_US, median(pt.longLaunchIds.map((id) => Math.min(...(perId.get(id) ?? [Infinity]))))));
    onPoint(i, r);
    return r;
  });
}

function result(pt: PointTenants, us: number): PointResult {
  return { point: pt.point, flops: pt.work.flops, bytes: pt.work.bytes, epilogueBytes: pt.work.epilogueBytes, us };
}

// A tick's own cost by its io bytes: a one-tenant plan per size, its full tick (CUDA: the captured tick's device
// time, the io copies with it; CPU: runTick's wall clock, fastest), less one launch (the probe GEMM's, taken as the
// smallest launch's time). Full ticks, as the planner's tick.io prices them: until stop 20 one plan of every size
// was timed one tenant live at a time, by the masked (sparse) tick, whose own fixed cost is larger (an H100
// profile put the fixed part at 27.5 µs, where the full ticks of 64 MLPs measured 9 to 15 µs besides their
// launches).
export async function measureTickIo(
  scratch: string,
  backend: 'cpu' | 'cuda',
  quick: boolean,
  threads: number | undefined,
  launchUs: number,
  progress: (msg: string) => void,
): Promise<Measurement[]> {
  const iters = backend === 'cuda' ? CUDA_ITERS[quick ? 'quick' : 'full'] : 4 * CPU_REPS[quick ? 'quick' : 'full'];
  const out: Measurement[] = [];
  for (const [i, size] of ioSizes({ backend, quick }).entries()) {
    const { plan, tenants } = buildIoPlan([size]);
    const t = tenants[0]!;
    const dir = path.join(scratch, `tick-io-${i}`);
    await writePlanDir(plan, dir, { nvcc: 'off' });
    const loaded = await loadPlan(dir, { backend, ...(threads !== undefined ? { threads } : {}) });
    let us: number;
    try {
      if (backend === 'cuda') {
        us = median(loaded.benchTick(iters).deviceUs);
      } else {
        const spec = loaded.plan.tenants[0]!;
        const input = { x: makeTensor('f32', spec.inputs[0]!.shape) };
        for (let k = 0; k < 3; k++) await loaded.runTick({ [t.id]: input });
        const wall: number[] = [];
        for (let k = 0; k < iters; k++) {
          const t0 = performance.now();
          await loaded.runTick({ [t.id]: input });
          wall.push((performance.now() - t0) * 1e3);
        }
        us = Math.min(...wall);
      }
    } finally {
      loaded.close();
      rmSync(dir, { recursive: true, force: true });
    }
    out.push({ flops: 0, bytes: t.ioBytes, us: us - launchUs });
    progress(`tick with ${fmtMiB(t.ioBytes)} of inputs and outputs: ${fmtUs(us)}${backend === 'cuda' ? ' (device)' : ' (wall, fastest)'}`);
  }
  return out;
}

export function tickIoKind(ms: readonly Measurement[]): ProfileKind {
  const fit = fitLinear(ms);
  return {
    fit: { overheadUs: round(fit.overheadUs), flopsPerS: 0, bytesPerS: round(fit.bytesPerS), correction: [] },
    points: ms.map((m) => ({ label: `tick, ${m.bytes} bytes of io`, flops: 0, bytes: m.bytes, us: round(m.us) })),
  };
}

// Two independent launches on two streams: how much of the second hides behind the first.
export async function measureConcurrency(scratch: string, quick: boolean, progress: (msg: string) => void): Promise<ConcurrencyPoint[]> {
  const cases: BenchPoint[] = [
    {
      kind: 'gemm',
      key: 'gemm.f32',
      math: 'f32',
      shape: { m: 1, n: 1024, k: 1024, batch: 1 },
      epilogue: false,
      label: 'gemm 1x1024x1024 x1 f32 (latency-bound)',
    },
    {
      kind: 'gemm',
      key: 'gemm.f32',
      math: 'f32',
      shape: { m: 16, n: 1024, k: 1024, batch: 16 },
      epilogue: false,
      label: 'gemm 16x1024x1024 x16 f32 (bandwidth-bound)',
    },
    {
      kind: 'gemm',
      key: 'gemm.f32',
      math: 'f32',
      shape: { m: 256, n: 1024, k: 1024, batch: 8 },
      epilogue: false,
      label: 'gemm 256x1024x1024 x8 f32 (compute-bound)',
    },
  ];
  const iters = CUDA_ITERS[quick ? 'quick' : 'full'];
  const out: ConcurrencyPoint[] = [];
  for (const [i, c] of cases.entries()) {
    const dir = path.join(scratch, `concurrency-${i}`);
    await writePlanDir(buildBenchPlan([c], 'fp32', 'single', ROTATE_BYTES.cuda / 4).plan, dir, { nvcc: 'off' });
    const a = await loadPlan(dir, { backend: 'cuda' });
    let b: LoadedPlan | null = null;
    try {
      b = await loadPlan(dir, { backend: 'cuda' });
      const solo = median(a.benchTick(iters).deviceUs);
      const pair = median(benchConcurrent([a, b], iters).deviceUs);
      const overlap = Math.min(1, Math.max(0, (2 * solo - pair) / solo));
      out.push({ label: c.label, soloUs: round(solo), pairUs: round(pair), overlap: round(overlap) });
      progress(`concurrency ${c.label}: alone ${fmtUs(solo)}, two at once ${fmtUs(pair)}: overlap ${(overlap * 100).toFixed(0)}%`);
    } finally {
      a.close();
      b?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return out;
}

// The CUDA backend reads LOOM_CUDA_SPARSE when a plan is created: 'always' for the calibration plans, so
// every masked tick runs only its live tenant's launches.
export function withSparse<T>(backend: 'cpu' | 'cuda', f: () => Promise<T>): Promise<T> {
  return backend === 'cuda' ? withBackendEnv({ LOOM_CUDA_SPARSE: 'always' }, f) : f();
}
