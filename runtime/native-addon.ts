// Loads the native addon (native/, built by cmake-js into native/build/Release/loom.node) on first use,
// so importing the runtime never fails on a machine where it is not built; only executing does.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fail } from '../ir/errors.js';

export interface AddonInfo {
  readonly backends: readonly string[]; // backends compiled into this addon ('cpu', 'cuda-emu' on POSIX, 'cuda' where built)
  readonly cuda: boolean; // LOOM_HAVE_CUDA: the CUDA toolkit with cuBLAS was found at build time
  readonly threads: number; // default CPU worker threads
  readonly napiVersion: number;
  readonly cudaDevices?: number; // GPUs the CUDA runtime sees (0 without a GPU or driver; absent in old builds)
  readonly gpu?: Readonly<Record<string, string | number>>; // device 0: name, computeCapability, driver, runtime, cublas, memoryBytes, sms
  readonly registry?: readonly AddonBackendInfo[]; // the backend registry (native/src/backend.h); absent in old builds
}

// One backend of the addon's registry: what it runs and which optional entry points (native/src/backend_ext.h) it offers.
export interface AddonBackendInfo {
  readonly name: string;
  readonly abi: number; // LOOM_BACKEND_ABI it was built against
  readonly available: boolean; // create() can succeed here (cuda: a GPU is visible)
  readonly launchKinds: readonly string[];
  readonly kernelOps: readonly string[];
  readonly extensions: readonly string[]; // e.g. stats, bench, profile, bench_concurrent, device_info
}

// Options of create(): backend choice and, for the CUDA backend, the plan's kernels and debug switches.
export interface NativeCreateOptions {
  readonly backend: 'cpu' | 'cuda' | 'cuda-emu';
  readonly threads?: number;
  readonly device?: number; // cuda: the GPU index (native/src/addon.cc reads it into cuda_options.device; default 0)
  readonly precision?: 'fp32' | 'tf32'; // cuda: tf32 = CUBLAS_COMPUTE_32F_FAST_TF32 for f32 GEMMs
  readonly cubin?: Uint8Array; // the plan's kernels.<arch>.cubin
  readonly cubinArch?: string; // its arch, e.g. 'sm_90'
  readonly kernelSource?: string; // kernels.cu, compiled with NVRTC when the cubin does not fit the GPU
  readonly forceNvrtc?: boolean;
  readonly graph?: boolean; // cuda: false runs launches eagerly instead of replaying a CUDA graph (debugging)
  readonly debugPoisonOutputs?: boolean; // fill output slots with NaN bytes before every tick's launches
  readonly pipelineDepth?: number; // staging sets: ticks that may be in flight at once (1..8, default 3)
  readonly weightBytes?: number; // create(plan, null, ...): the weights come later in chunks, this many bytes
  readonly emuLibrary?: string; // cuda-emu: the plan's kernels.cu compiled for the host (runtime/emu-kernels.ts)
}

// A plan's staging buffers and layout: spans are rows of [ioOffset, bytes, hostOffset]; an io slot's bytes sit
// at hostOffset + (slotOffset − ioOffset) of the span holding it, in a staging set (inputs) or a result (outputs).
export interface NativeStaging {
  readonly sets: readonly ArrayBuffer[];
  readonly inSpans: Float64Array;
  readonly outSpans: Float64Array;
  readonly inBytes: number;
  readonly outBytes: number;
  // submitTick takes `live` (a compact result); false for a hand-built plan without an I/O slot table, absent
  // from older addons
  readonly compact?: boolean;
}

declare const handleBrand: unique symbol;
export type NativeHandle = { readonly [handleBrand]: true };

export interface NativeTickInput {
  readonly offset: number; // io arena byte offset
  readonly data: Uint8Array;
}
export interface NativeTickOutput {
  readonly offset: number;
  readonly bytes: number;
}

// The addon's whole surface (native/src/addon.cc). Errors it throws or rejects with carry code 'EVAL'.
export interface NativeAddon {
  // weights null (with opts.weightBytes): the plan is allocated but not ready; its weights come in chunks, in
  // file order — weightsWindow (host memory to read chunk bytes into: the CPU arena itself, or a pinned
  // buffer; null where this runtime refuses external buffers), weightsCommit (with `data` when there was no
  // window), then weightsFinish. Ticks are refused until then.
  create(plan: unknown, weights: Uint8Array | null, opts: NativeCreateOptions): NativeHandle;
  weightsWindow?(handle: NativeHandle, offset: number, bytes: number): Uint8Array | null; // absent in older builds
  weightsCommit?(handle: NativeHandle, offset: number, bytes: number, data?: Uint8Array): void;
  weightsFinish?(handle: NativeHandle): void;
  // The general tick: one object per input and output (hand-built plans, tests).
  // `rows` (optional): each plan tenant's rows this tick (live ones 1..maxBatch); the native side runs the tick's
  // row-scaled GEMMs (plan problem.rowsUnit) at the most rows of a live tenant rounded up to a power of two.
  runTick(
    handle: NativeHandle,
    inputs: readonly NativeTickInput[],
    outputs: readonly NativeTickOutput[],
    active: Uint8Array,
    rows?: Int32Array,
  ): Promise<Uint8Array[]>;
  // The runtime's tick path (native/src/tick_staging.h): the plan's staging sets and their layout, once per plan.
  staging(handle: NativeHandle): NativeStaging;
  // Submits the tick whose inputs were written into staging set `set` (at the layout's input offsets); the set
  // must not be written again until the promise settles. Without `live`, resolves with the outputs at the layout's
  // output offsets, read in place (on CUDA a pinned block that returns to its pool when the buffer is collected).
  // With `live` (plan tenant indices, each live in `active`; staging().compact), resolves with a compact result of
  // JS's own: only those tenants' output slots, in that order, each slot at the next multiple of 8 bytes.
  submitTick(handle: NativeHandle, set: number, active: Uint8Array, rows?: Int32Array, live?: Int32Array): Promise<ArrayBuffer>;
  destroy(handle: NativeHandle): void;
  info(): AddonInfo;
  // What the backend says about a loaded plan (CUDA: graph, graphNodes, kernelNodes, kernelModule, device, ...).
  handleInfo(handle: NativeHandle): Record<string, string | number>;
  // Replays the captured tick `iters` times (CUDA backend only; blocks the calling thread): microseconds.
  // `active`: one byte per plan tenant (absent: every tenant live).
  benchTick(handle: NativeHandle, iters: number, active?: Uint8Array): { wallUs: number[]; deviceUs: number[] };
  // Every plan's full tick launched at once, one CUDA stream each, `iters` rounds (CUDA backend only).
  benchTicks(handles: readonly NativeHandle[], iters: number): { wallUs: number[]; deviceUs: number[] };
  // Time of every launch of one tick: launch id → microseconds (CUDA: device time of an eager tick; CPU: host clock).
  profileTick(handle: NativeHandle): Array<{ id: number; us: number }>;
  // TEST ONLY: after `after` more ticks, the next `ticks` ticks fail inside the backend (0 disarms).
  testInjectFault(handle: NativeHandle, ticks: number, after: number): void;
}

const ADDON_RELATIVE = path.join('native', 'build', 'Release', 'loom.node');

// The package root: the nearest folder above this file whose package.json is Loom's (works from the
// sources under tsx/vitest and from dist/).
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'loom') return dir;
      } catch {
        // not ours; keep walking
      }
    }
    const up = path.dirname(dir);
    if (up === dir) fail('IO', 'cannot find the loom package root to locate the native addon');
    dir = up;
  }
}

export function nativeAddonPath(): string {
  return process.env.LOOM_NATIVE_ADDON ?? path.join(packageRoot(), ADDON_RELATIVE);
}

let cached: NativeAddon | null = null;

export function loadNativeAddon(): NativeAddon {
  if (cached) return cached;
  const file = nativeAddonPath();
  if (!existsSync(file)) {
    fail('IO', `the native addon is not built (${file} is missing): run \`npm run build:native\` (needs cmake and a C++17 compiler; \`npm ci\` builds it too)`);
  }
  try {
    cached = createRequire(import.meta.url)(file) as NativeAddon;
  } catch (e) {
    fail('IO', `cannot load the native addon ${file}: ${(e as Error).message} (rebuild it with \`npm run build:native\`)`);
  }
  return cached;
}

export function nativeAddonInfo(): AddonInfo {
  return loadNativeAddon().info();
}
