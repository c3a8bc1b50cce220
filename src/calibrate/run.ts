// `loom calibrate` as a library call: build the micro-benchmark plans (bench-plan.ts), run them on the
// backend, time every point, fit every launch kind (fit.ts) and return the device profile (profile.ts).
//   CUDA: each point's two tenants (N/2 and N repetitions) are replayed alone as masked ticks
//         (LOOM_CUDA_SPARSE=always: only the live tenant's launches run, from a captured graph after the
//         first tick); the difference of their device times (CUDA events) over N/2 is one launch inside a
//         captured tick, every fixed cost of a tick cancelled. Two independent launches' overlap: two
//         plans' ticks side by side on their own streams (benchConcurrent) against one alone.
//   CPU:  the plan's launches timed one by one on the host clock (profileTick): each launch's fastest of a few
//         ticks, the median over a point's launches.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writePlanDir } from '../../codegen/index.js';
import { fail } from '../../ir/errors.js';
import { makeTensor } from '../../ir/tensor.js';
import { type LoadedPlan, benchConcurrent, loadPlan, nativeAddonInfo } from '../../runtime/index.js';
import type { GemmMath } from '../planner/cost.js';
import { type BenchLayout, type BenchPlan, type PointTenants, buildBenchPlan, buildIoPlan, precisionOf } from './bench-plan.js';
import { fitKind, fitLinear, type Measurement } from './fit.js';
import { type BenchPoint, OVERHEAD_PROBE, benchGrid, ioSizes } from './grid.js';
import { type ConcurrencyPoint, type DeviceProfile, PROFILE_FORMAT, PROFILE_VERSION, type ProfileKind, type ProfilePoint } from './profile.js';

export interface CalibrateOptions {
  readonly backend?: 'auto' | 'cpu' | 'cuda';
  readonly quick?: boolean;
  readonly threads?: number; // CPU backend worker threads (default: the backend's)
  readonly onProgress?: (msg: string) => void;
  readonly loomVersion?: string;
  // only these points (tests); default: the grid for the backend and mode
  readonly points?: readonly BenchPoint[];
}

const ROTATE_BYTES = { cuda: 96 * 2 ** 20, cpu: 32 * 2 ** 20 } as const;
const CUDA_ITERS = { quick: 20, full: 50 } as const;
const CPU_REPS = { quick: 3, full: 7 } as const;
const MIN_US = 1e-3;

export interface PointResult {
  readonly point: BenchPoint;
  readonly flops: number;
  readonly bytes: number;
  readonly epilogueBytes: number;
  readonly us: number;
}

export async function calibrate(opts: CalibrateOptions = {}): Promise<DeviceProfile> {
  const quick = opts.quick === true;
  const progress = opts.onProgress ?? (() => {});
  const addon = nativeAddonInfo();
  const backend = resolveBackend(opts.backend ?? 'auto', addon.backends, addon.cudaDevices ?? 0);
  const layout: BenchLayout = backend === 'cuda' ? 'pair' : 'single';
  const points = [...(opts.points ?? benchGrid({ backend, quick }))];
  if (!points.some((p) => p.kind === 'kernel' && p.kernel === OVERHEAD_PROBE)) points.push(probePoint());
  const byMath = new Map<GemmMath, BenchPoint[]>();
  for (const p of points) {
    const math = p.kind === 'kernel' ? 'f32' : p.math;
    byMath.set(math, [...(byMath.get(math) ?? []), p]);
  }
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'loom-calibrate-'));
  const results: PointResult[] = [];
  let deviceName = '';
  let deviceInfo: Record<string, string | number> = {};
  const t0 = performance.now();
  try {
    let done = 0;
    for (const [math, list] of byMath) {
      const bench = buildBenchPlan(list, precisionOf(math), layout, ROTATE_BYTES[backend]);
      const dir = path.join(scratch, math);
      progress(
        `${math}: ${list.length} points, ${bench.plan.launches.length} launches, ${fmtMiB(bench.plan.arenas.weights)} of operands; writing and loading the plan${list.some((p) => p.kind === 'kernel') && backend === 'cuda' ? ' (its kernels compile with NVRTC)' : ''}`,
      );
      await writePlanDir(bench.plan, dir, { nvcc: 'off' }); // CUDA: its kernels compile with NVRTC at load (faster than nvcc here)
      const measured = await withSparse(backend, () =>
        loadPlan(dir, { backend, ...(opts.threads !== undefined ? { threads: opts.threads } : {}) }).then(async (loaded) => {
          try {
            if (!deviceName) ({ name: deviceName, info: deviceInfo } = describeDevice(backend, opts.threads ?? addon.threads, addon.gpu));
            return await (backend === 'cuda'
              ? measureCuda(loaded, bench, quick, (i, r) => progress(`${math}: ${done + i + 1}/${points.length} ${r.point.label}: ${fmtUs(r.us)}`))
              : measureCpu(loaded, bench, quick, (i, r) => progress(`${math}: ${done + i + 1}/${points.length} ${r.point.label}: ${fmtUs(r.us)}`)));
          } finally {
            loaded.close();
          }
        }),
      );
      results.push(...measured);
      done += list.length;
      rmSync(dir, { recursive: true, force: true });
    }
    const probe = results.find((r) => r.point.kind === 'kernel' && r.point.kernel === OVERHEAD_PROBE);
    const ticks = await measureTickIo(scratch, backend, quick, opts.threads, probe?.us ?? 0, progress);
    const concurrency = backend === 'cuda' ? await measureConcurrency(scratch, quick, progress) : [];
    progress(`measured ${results.length} points in ${((performance.now() - t0) / 1000).toFixed(1)} s; fitting`);
    return {
      format: PROFILE_FORMAT,
      version: PROFILE_VERSION,
      name: deviceName,
      backend,
      date: new Date().toISOString(),
      device: deviceInfo,
      settings: {
        quick,
        reps: backend === 'cuda' ? CUDA_ITERS[quick ? 'quick' : 'full'] : CPU_REPS[quick ? 'quick' : 'full'],
        loom: opts.loomVersion ?? 'unknown',
      },
      launchOverheadUs: round(probe?.us ?? 0),
      concurrency,
      kinds: { ...fitResults(results), 'tick.io': tickIoKind(ticks) },
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function probePoint(): BenchPoint {
  return { kind: 'kernel', key: 'kernel.fill', kernel: OVERHEAD_PROBE, label: 'fill 1 (launch overhead)' };
}

// Every kind's points and fit. The epilogue points are priced as their extra time over the same GEMM
// without a bias and activation.
export function fitResults(results: readonly PointResult[]): Record<string, ProfileKind> {
  const byKey = new Map<string, Measurement[]>();
  const labels = new Map<string, ProfilePoint[]>();
  const add = (key: string, m: Measurement, label: string) => {
    byKey.set(key, [...(byKey.get(key) ?? []), m]);
    labels.set(key, [...(labels.get(key) ?? []), { label, flops: m.flops, bytes: m.bytes, us: round(m.us) }]);
  };
  const plain = new Map<string, number>();
  for (const r of results) if (r.point.kind === 'gemm' && !r.point.epilogue) plain.set(shapeKey(r.point), r.us);
  for (const r of results) {
    if (r.point.kind === 'gemm' && r.point.epilogue) {
      const base = plain.get(shapeKey(r.point));
      if (base === undefined) continue;
      add('gemm.epilogue', { flops: 0, bytes: r.epilogueBytes, us: r.us - base }, r.point.label);
    } else {
      add(r.point.key, { flops: r.flops, bytes: r.bytes, us: r.us }, r.point.label);
    }
  }
  const out: Record<string, ProfileKind> = {};
  for (const [key, ms] of [...byKey].sort(([a], [b]) => a.localeCompare(b))) {
    const fit = key === 'gemm.epilogue' ? fitLinear(ms) : fitKind(ms, { compute: key.startsWith('gemm') });
    out[key] = {
      fit: { overheadUs: round(fit.overheadUs), flopsPerS: round(fit.flopsPerS), bytesPerS: round(fit.bytesPerS), correction: fit.correction },
      points: labels.get(key)!,
    };
  }
  return out;
}

function shapeKey(p: BenchPoint): string {
  return p.kind === 'gemm' ? `${p.math}:${p.shape.m}x${p.shape.n}x${p.shape.k}x${p.shape.batch}` : '';
}

async function measureCuda(loaded: LoadedPlan, bench: BenchPlan, quick: boolean, onPoint: (i: number, r: PointResult) => void): Promise<PointResult[]> {
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
    const short = time(pt.short!);
    const long = time(pt.long);
    const r = result(pt, Math.max(MIN_US, (long - short) / (pt.longCount - pt.shortCount)));
    out.push(r);
    onPoint(i, r);
    await yieldLoop();
  }
  return out;
}

async function measureCpu(loaded: LoadedPlan, bench: BenchPlan, quick: boolean, onPoint: (i: number, r: PointResult) => void): Promise<PointResult[]> {
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

// A tick's own cost by its io bytes: one tenant of the io plan live at a time (CUDA: the masked tick's device
// time; CPU: runTick's wall clock with only that tenant's input), less one launch (the probe GEMM's, taken as
// the smallest launch's time).
async function measureTickIo(
  scratch: string,
  backend: 'cpu' | 'cuda',
  quick: boolean,
  threads: number | undefined,
  launchUs: number,
  progress: (msg: string) => void,
): Promise<Measurement[]> {
  const { plan, tenants } = buildIoPlan(ioSizes({ backend, quick }));
  const dir = path.join(scratch, 'tick-io');
  await writePlanDir(plan, dir, { nvcc: 'off' });
  const iters = backend === 'cuda' ? CUDA_ITERS[quick ? 'quick' : 'full'] : 4 * CPU_REPS[quick ? 'quick' : 'full'];
  const out: Measurement[] = [];
  await withSparse(backend, async () => {
    const loaded = await loadPlan(dir, { backend, ...(threads !== undefined ? { threads } : {}) });
    try {
      for (const t of tenants) {
        let us: number;
        if (backend === 'cuda') {
          const times = loaded.benchTick(iters, [t.id]);
          if (loaded.backendInfo().benchSparse !== 1)
            fail('EVAL', `calibrate: the CUDA backend ran the masked tick of '${t.id}' in full; the tick probe needs the sparse tick`);
          us = median(times.deviceUs);
        } else {
          const spec = loaded.plan.tenants.find((x) => x.id === t.id)!;
          const input = { x: makeTensor('f32', spec.inputs[0]!.shape) };
          for (let i = 0; i < 3; i++) await loaded.runTick({ [t.id]: input });
          const wall: number[] = [];
          for (let i = 0; i < iters; i++) {
            const t0 = performance.now();
            await loaded.runTick({ [t.id]: input });
            wall.push((performance.now() - t0) * 1e3);
          }
          us = Math.min(...wall);
        }
        out.push({ flops: 0, bytes: t.ioBytes, us: us - launchUs });
        progress(`tick with ${fmtMiB(t.ioBytes)} of inputs and outputs: ${fmtUs(us)}${backend === 'cuda' ? ' (device)' : ' (wall, fastest)'}`);
      }
    } finally {
      loaded.close();
    }
  });
  rmSync(dir, { recursive: true, force: true });
  return out;
}

function tickIoKind(ms: readonly Measurement[]): ProfileKind {
  const fit = fitLinear(ms);
  return {
    fit: { overheadUs: round(fit.overheadUs), flopsPerS: 0, bytesPerS: round(fit.bytesPerS), correction: [] },
    points: ms.map((m) => ({ label: `tick, ${m.bytes} bytes of io`, flops: 0, bytes: m.bytes, us: round(m.us) })),
  };
}

// Two independent launches on two streams: how much of the second hides behind the first.
async function measureConcurrency(scratch: string, quick: boolean, progress: (msg: string) => void): Promise<ConcurrencyPoint[]> {
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
async function withSparse<T>(backend: 'cpu' | 'cuda', f: () => Promise<T>): Promise<T> {
  if (backend !== 'cuda') return f();
  const before = process.env.LOOM_CUDA_SPARSE;
  process.env.LOOM_CUDA_SPARSE = 'always';
  try {
    return await f();
  } finally {
    if (before === undefined) delete process.env.LOOM_CUDA_SPARSE;
    else process.env.LOOM_CUDA_SPARSE = before;
  }
}

function resolveBackend(want: 'auto' | 'cpu' | 'cuda', backends: readonly string[], cudaDevices: number): 'cpu' | 'cuda' {
  const cudaOk = backends.includes('cuda') && cudaDevices > 0;
  if (want === 'cuda' && !cudaOk)
    fail(
      'USAGE',
      `calibrate --backend cuda: ${backends.includes('cuda') ? 'no GPU is visible' : 'this addon was built without CUDA'}; calibrate the CPU with --backend cpu`,
    );
  if (want === 'cpu') return 'cpu';
  return cudaOk ? 'cuda' : 'cpu';
}

function describeDevice(
  backend: 'cpu' | 'cuda',
  threads: number,
  gpu: Readonly<Record<string, string | number>> | undefined,
): { name: string; info: Record<string, string | number> } {
  if (backend === 'cpu') {
    const cpus = os.cpus();
    return {
      name: cpus[0]?.model?.trim() || 'unknown CPU',
      info: { cpus: cpus.length, threads, platform: `${process.platform}-${process.arch}`, node: process.version },
    };
  }
  const info: Record<string, string | number> = { ...(gpu ?? {}) };
  const name = typeof info.name === 'string' ? info.name : 'CUDA device';
  return { name, info };
}

function median(xs: readonly number[]): number {
  if (xs.length === 0) fail('EVAL', 'calibrate: a measurement came back empty');
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function round(v: number): number {
  return Number(v.toPrecision(6));
}

function fmtUs(us: number): string {
  return us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(us < 10 ? 2 : 1)} us`;
}

function fmtMiB(b: number): string {
  return `${(b / 2 ** 20).toFixed(1)} MiB`;
}

const yieldLoop = () => new Promise<void>((r) => setImmediate(r));
