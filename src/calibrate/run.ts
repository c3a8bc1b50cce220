// `loom calibrate` as a library call: build the micro-benchmark plans (bench-plan.ts), run them on the
// backend and time every point (measure.ts), fit every launch kind (fit.ts) and return the device profile
// (profile.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writePlanDir } from '../../codegen/index.js';
import { fail } from '../../ir/errors.js';
import { loadPlan, nativeAddonInfo } from '../../runtime/index.js';
import type { GemmMath } from '../planner/cost.js';
import { type BenchLayout, buildBenchPlan, precisionOf } from './bench-plan.js';
import { fitKind, fitLinear, type Measurement } from './fit.js';
import { type BenchPoint, OVERHEAD_PROBE, benchGrid } from './grid.js';
import {
  CPU_REPS,
  CUDA_ITERS,
  type PointResult,
  ROTATE_BYTES,
  measureConcurrency,
  measureCpu,
  measureCuda,
  measureTickIo,
  tickIoKind,
  withSparse,
} from './measure.js';
import { fmtMiB, fmtUs, round } from './numbers.js';
import { type DeviceProfile, PROFILE_FORMAT, PROFILE_VERSION, type ProfileKind, type ProfilePoint, profileKind } from './profile.js';

export interface CalibrateOptions {
  readonly backend?: 'auto' | 'cpu' | 'cuda';
  readonly quick?: boolean;
  readonly threads?: number; // CPU backend worker threads (default: the backend's)
  readonly onProgress?: (msg: string) => void;
  readonly loomVersion?: string;
  // only these points (tests); default: the grid for the backend and mode
  readonly points?: readonly BenchPoint[];
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
      const loadStart = performance.now();
      const measured = await withSparse(backend, () =>
        loadPlan(dir, { backend, ...(opts.threads !== undefined ? { threads: opts.threads } : {}) }).then(async (loaded) => {
          try {
            progress(`${math}: loaded in ${loadSeconds(loadStart, loaded.backendInfo())}`);
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

// `loom calibrate --tick-io`: only the tick's own cost (tick.io) measured again on this device, written into
// `profile` (a profile of this card and backend: its launch overhead is the probe launch subtracted). Seconds,
// where the whole grid takes minutes: for a profile calibrated before tick.io was measured on full ticks.
export async function remeasureTickIo(profile: DeviceProfile, opts: Pick<CalibrateOptions, 'threads' | 'onProgress'> = {}): Promise<DeviceProfile> {
  const progress = opts.onProgress ?? (() => {});
  const addon = nativeAddonInfo();
  const backend = resolveBackend(profile.backend, addon.backends, addon.cudaDevices ?? 0);
  const here = describeDevice(backend, opts.threads ?? addon.threads, addon.gpu).name;
  if (backend !== profile.backend || here !== profile.name)
    fail('USAGE', `calibrate --tick-io: the profile is of ${profile.name} (${profile.backend}); this host runs ${here} (${backend})`);
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'loom-calibrate-'));
  try {
    const ticks = await measureTickIo(scratch, backend, profile.settings.quick, opts.threads, profile.launchOverheadUs, progress);
    return { ...profile, settings: { ...profile.settings, tickIo: new Date().toISOString() }, kinds: { ...profile.kinds, 'tick.io': tickIoKind(ticks) } };
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
    out[key] = profileKind(fit, labels.get(key)!);
  }
  return out;
}

function shapeKey(p: BenchPoint): string {
  return p.kind === 'gemm' ? `${p.math}:${p.shape.m}x${p.shape.n}x${p.shape.k}x${p.shape.batch}` : '';
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

// "12.3 s (GEMM path choices 4.5 s)": a plan's load time, with the part its backend spent timing GEMM candidates.
function loadSeconds(start: number, info: Record<string, string | number>): string {
  const total = `${((performance.now() - start) / 1e3).toFixed(1)} s`;
  return typeof info.loadChoiceMs === 'number' ? `${total} (GEMM path choices ${(info.loadChoiceMs / 1e3).toFixed(1)} s)` : total;
}
