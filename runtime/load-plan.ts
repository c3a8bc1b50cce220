// loadPlan: a LaunchPlan directory → a plan resident on one backend, ready to run ticks. The runtime
// executes the plan as written (no planning here): it checks a tick's inputs, copies them in, runs every
// launch, and copies the outputs out.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { LoomError, fail, isLoomError } from '../ir/errors.js';
import { MiB, readRegularFile, readTextFile } from '../ir/files.js';
import { type LaunchPlan, loadWeightsAsync, readPlanDir, streamWeights } from '../codegen/index.js';
import { type NativeAddon, type NativeCreateOptions, type NativeHandle, loadNativeAddon } from './native-addon.js';
import { compileEmuKernels } from './emu-kernels.js';
import { type CheckedTick, type SlotViews, type TickInputs, type TickOutputs, TickCodec, type WrittenTick } from './tick-io.js';

// cuda-emu: the CPU backend with the plan's generated CUDA kernels compiled for the host (checks codegen without a
// GPU; never chosen by auto).
export type BackendName = 'cpu' | 'cuda' | 'cuda-emu';

// How a backend's ticks are timed, for the measurements (bench, calibrate, occupancy): on the device by CUDA
// events ('cuda'), or by the host clock ('cpu': the CPU backend, and cuda-emu, the CPU backend running the
// generated kernels' host build).
export function clockOf(backend: BackendName): 'cpu' | 'cuda' {
  return backend === 'cuda' ? 'cuda' : 'cpu';
}

export interface LoadPlanOptions {
  readonly backend?: 'auto' | BackendName; // auto: cuda where this addon was built with it, else cpu
  readonly threads?: number; // CPU backend worker threads (default: hardware concurrency)
  readonly device?: number; // CUDA backend: the GPU index (default 0); checked by the addon against the GPUs it sees
  // Compute of the f32 GEMMs on the CUDA backend: 'fp32' (true fp32, no TF32) or 'tf32'. Default: the plan's
  // precision (a 'tf32' plan runs tf32), or tf32 when the environment variable LOOM_TF32=1; this overrides
  // both. bf16/fp16 plans' GEMMs are half-operand GEMMs with fp32 compute either way; the CPU backend always
  // computes f32 GEMMs in true fp32.
  readonly precision?: 'fp32' | 'tf32';
  // Debugging: fill every output slot with NaN bytes before each tick's launches (a launch that leaves part of
  // an output unwritten shows up as NaN); CUDA: graph false runs launches eagerly, forceNvrtc compiles
  // kernels.cu at load even when the cubin fits.
  readonly debug?: { readonly poisonOutputs?: boolean; readonly graph?: boolean; readonly forceNvrtc?: boolean };
  // TEST ONLY (fault drills): after `after` ticks (default 0), the next `ticks` ticks fail inside the backend as a
  // failing kernel / cuBLAS call / graph launch would (the CUDA backend then runs its real recovery). Without
  // it, the environment variable LOOM_TEST_FAULT_TICKS=N or N@K (K ticks first) does the same at load.
  readonly testFaults?: { readonly ticks: number; readonly after?: number };
  // Ticks that may be in flight at once (staging sets; 1..8, default 3): while the device runs one, the next
  // is written and submitted and the last one's outputs are read.
  readonly pipelineDepth?: number;
}

// Microseconds per replay (or per round of a concurrent bench).
export interface BenchTimes {
  wallUs: number[];
  deviceUs: number[];
}

export interface LoadedPlan {
  readonly plan: LaunchPlan;
  readonly backend: BackendName;
  // A tenant absent from `inputs` gets no outputs; a tenant's tensors carry 1..maxBatch rows on batchAxis. The
  // output tensors are the caller's to keep: later ticks never change them.
  runTick(inputs: TickInputs): Promise<TickOutputs>;
  // What the backend reports about this loaded plan (CUDA: graph, graphNodes, kernelNodes, device, kernelModule, weightBytes,
  // deviceFreeBytes: cudaMemGetInfo's free bytes on its GPU at the call, ...).
  backendInfo(): Record<string, string | number>;
  // Benchmarks: replays the captured tick `iters` times as it stands (CUDA backend only; blocks the thread):
  // per replay the host wall time of graph launch + synchronize and the device time between CUDA events, µs.
  // `live`: the tenants with work in the replayed tick (default: all), as runTick would run it.
  benchTick(iters: number, live?: readonly string[]): BenchTimes;
  // Benchmarks: the time of every launch of one tick, in plan order (CUDA: device time of an eager tick;
  // CPU: the host clock around each launch).
  profileTick(): Array<{ id: number; us: number }>;
  // TEST ONLY: after `after` more ticks (default 0), the next `ticks` ticks fail inside the backend; 0 disarms.
  testInjectFault(ticks: number, after?: number): void;
  close(): void;
}

// Errors from the addon carry code 'EVAL'; make them LoomErrors so the CLI reports them as such.
function fromNative(e: unknown): never {
  if (isLoomError(e)) throw e;
  const msg = e instanceof Error ? e.message : String(e);
  throw new LoomError('EVAL', msg);
}

// `gpus`: GPUs the addon's CUDA runtime sees (info().cudaDevices); auto picks cuda only where it is built
// AND a GPU is present (undefined: assume present, for callers that cannot tell).
export function chooseBackend(requested: LoadPlanOptions['backend'], available: readonly string[], gpus?: number): BackendName {
  const want = requested ?? 'auto';
  if (want === 'auto') return available.includes('cuda') && (gpus === undefined || gpus > 0) ? 'cuda' : 'cpu';
  if (want !== 'cpu' && want !== 'cuda' && want !== 'cuda-emu') fail('USAGE', `unknown backend '${String(want)}' (expected auto, cpu, cuda or cuda-emu)`);
  if (!available.includes(want)) {
    fail(
      'UNSUPPORTED_FEATURE',
      `backend '${want}' is not built into this addon (it has: ${available.join(', ')}); the CUDA backend needs the CUDA toolkit with cuBLAS at build time (npm run build:native)`,
    );
  }
  return want;
}

export async function loadPlan(dir: string, opts: LoadPlanOptions = {}): Promise<LoadedPlan> {
  const plan = readPlanDir(dir);
  if (opts.threads !== undefined && (!Number.isInteger(opts.threads) || opts.threads < 1))
    fail('USAGE', `threads must be a positive integer, got ${opts.threads}`);
  if (opts.pipelineDepth !== undefined && (!Number.isInteger(opts.pipelineDepth) || opts.pipelineDepth < 1 || opts.pipelineDepth > 8))
    fail('USAGE', `pipelineDepth must be an integer from 1 to 8, got ${opts.pipelineDepth}`);
  if (opts.precision !== undefined && opts.precision !== 'fp32' && opts.precision !== 'tf32')
    fail('USAGE', `precision must be fp32 or tf32, got ${String(opts.precision)}`);
  if (opts.device !== undefined && (!Number.isInteger(opts.device) || opts.device < 0))
    fail('USAGE', `device must be a GPU index (0, 1, ...), got ${opts.device}`);
  const addon = loadNativeAddon();
  const info = addon.info();
  const backend = chooseBackend(opts.backend, info.backends, info.cudaDevices);
  const createOpts: NativeCreateOptions = {
    backend,
    ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
    ...(opts.debug?.poisonOutputs ? { debugPoisonOutputs: true } : {}),
    ...(opts.pipelineDepth !== undefined ? { pipelineDepth: opts.pipelineDepth } : {}),
    ...(backend === 'cuda' ? cudaOptions(dir, plan, opts) : {}),
    ...(backend === 'cuda-emu' ? { emuLibrary: emuLibrary(dir, plan) } : {}),
  };
  const handle = await createWithWeights(addon, dir, plan, createOpts);
  let resident: ResidentPlan;
  try {
    resident = new ResidentPlan(addon, handle, plan, backend);
  } catch (e) {
    addon.destroy(handle);
    fromNative(e);
  }
  const faults = opts.testFaults ?? faultsFromEnv(process.env.LOOM_TEST_FAULT_TICKS);
  if (faults) {
    try {
      resident.testInjectFault(faults.ticks, faults.after ?? 0);
    } catch (e) {
      resident.close();
      throw e;
    }
  }
  return resident;
}

// The backend's plan with weights.bin in it, checked. weights.bin is read in chunks straight into the backend's
// memory (the CPU arena itself; on CUDA a pinned buffer copied to the device), its sha256 computed on the way,
// so the weights are never held twice and no JS array as large as the file is needed; a file whose sha256
// differs is refused before the plan can run a tick (the handle is destroyed). The event loop gets a turn
// between chunks (a server loading its next plan keeps answering). Older addons: the whole file, then create.
async function createWithWeights(addon: NativeAddon, dir: string, plan: LaunchPlan, createOpts: NativeCreateOptions): Promise<NativeHandle> {
  const { weightsWindow, weightsCommit, weightsFinish } = addon;
  if (!weightsWindow || !weightsCommit || !weightsFinish) {
    const weights = await loadWeightsAsync(dir, plan);
    try {
      return addon.create(plan, weights, createOpts);
    } catch (e) {
      fromNative(e);
    }
  }
  let handle: NativeHandle;
  try {
    handle = addon.create(plan, null, { ...createOpts, weightBytes: plan.weights.bytes });
  } catch (e) {
    fromNative(e);
  }
  try {
    await streamWeights(dir, plan, {
      window: (at, n) => weightsWindow.call(addon, handle, at, n),
      commit: (at, n, data) => weightsCommit.call(addon, handle, at, n, data ?? undefined),
    });
    weightsFinish.call(addon, handle);
  } catch (e) {
    addon.destroy(handle);
    fromNative(e);
  }
  return handle;
}

// LOOM_TEST_FAULT_TICKS: "N" (the first N ticks fail) or "N@K" (after K good ticks, N fail). Test only.
export function faultsFromEnv(v: string | undefined): { ticks: number; after: number } | null {
  if (v === undefined || v === '') return null;
  const m = /^(\d{1,9})(?:@(\d{1,9}))?$/.exec(v.trim());
  if (!m) fail('USAGE', `LOOM_TEST_FAULT_TICKS must be N or N@K (non-negative integers), got '${v}'`);
  return { ticks: Number(m[1]), after: Number(m[2] ?? 0) };
}

const MAX_KERNEL_FILE_BYTES = 256 * MiB; // kernels.cu and the cubin (a 120-tenant fleet's are under 1 MB)

// The CUDA backend gets the plan's kernels: the cubin `loom compile` built (when present) and kernels.cu
// for NVRTC, which it uses when the cubin is missing or built for another GPU.
function cudaOptions(dir: string, plan: LaunchPlan, opts: LoadPlanOptions): Partial<NativeCreateOptions> {
  const precision = opts.precision ?? (process.env.LOOM_TF32 === '1' || plan.precision === 'tf32' ? 'tf32' : 'fp32');
  const out: { -readonly [K in keyof NativeCreateOptions]?: NativeCreateOptions[K] } = { precision };
  if (opts.device !== undefined) out.device = opts.device;
  const src = path.join(dir, plan.kernels.source);
  if (existsSync(src)) out.kernelSource = readTextFile(src, { what: 'kernel source', maxBytes: MAX_KERNEL_FILE_BYTES });
  if (plan.kernels.cubin !== null) {
    const cubin = path.join(dir, plan.kernels.cubin);
    if (existsSync(cubin)) {
      out.cubin = readRegularFile(cubin, { what: 'cubin', maxBytes: MAX_KERNEL_FILE_BYTES });
      if (plan.kernels.arch !== null) out.cubinArch = plan.kernels.arch;
    }
  }
  if (opts.debug?.graph === false) out.graph = false;
  if (opts.debug?.forceNvrtc) out.forceNvrtc = true;
  return out;
}

// The cuda-emu backend runs the plan's kernels.cu compiled for the host.
function emuLibrary(dir: string, plan: LaunchPlan): string {
  const src = path.join(dir, plan.kernels.source);
  if (!existsSync(src)) fail('IO', `backend 'cuda-emu' runs the plan's generated kernels: ${src} is missing (recompile the plan)`);
  return compileEmuKernels(readTextFile(src, { what: 'kernel source', maxBytes: MAX_KERNEL_FILE_BYTES }));
}

// Every plan's full tick launched at once, one CUDA stream each, `iters` rounds after a warm-up: the
// space-only baseline of `loom bench`. CUDA backend only; blocks the thread.
export function benchConcurrent(plans: readonly LoadedPlan[], iters: number): BenchTimes {
  if (plans.length === 0) fail('USAGE', 'benchConcurrent needs at least one plan');
  checkIters(iters);
  const resident = plans.map((p, i) => {
    if (!(p instanceof ResidentPlan)) fail('USAGE', `benchConcurrent: plan ${i} was not loaded by loadPlan`);
    if (p.backend !== 'cuda')
      fail(
        'USAGE',
        `benchConcurrent runs CUDA graphs side by side: plan ${i} (tenants ${p.plan.tenants.map((t) => t.id).join(', ')}) is on the ${p.backend} backend`,
      );
    return p;
  });
  const handles = resident.map((p) => p.nativeHandle('benchConcurrent'));
  try {
    return resident[0]!.addonOf().benchTicks(handles, iters);
  } catch (e) {
    fromNative(e);
  }
}

function checkIters(iters: number): void {
  if (!Number.isInteger(iters) || iters < 1 || iters > 2 ** 31 - 1) fail('USAGE', `iters must be a positive integer, got ${iters}`);
}

// A tick waiting for a staging set: its inputs already checked, their bytes copied (TickCodec.detach), so the
// caller may reuse its tensors as soon as runTick returns; written into the set that frees up.
interface WaitingTick {
  readonly checked: CheckedTick;
  readonly settle: { resolve(o: TickOutputs): void; reject(e: unknown): void };
}

class ResidentPlan implements LoadedPlan {
  private closed = false;
  private readonly codec: TickCodec;
  private readonly sets: readonly Uint8Array[]; // the native staging sets (pinned memory on CUDA)
  private readonly views: readonly SlotViews[]; // per set: typed views of its input slots (TickCodec.slotViews)
  private readonly masks: readonly Uint8Array[]; // one per set, all zero between ticks
  private readonly rowCounts: readonly Int32Array[]; // one per set (each live tenant's rows), all zero between ticks
  private readonly free: number[]; // staging sets not in flight
  private readonly compact: boolean; // results hold only the live tenants' outputs (NativeStaging.compact)
  private readonly waiting: WaitingTick[] = []; // in call order

  constructor(
    private readonly addon: NativeAddon,
    private readonly handle: NativeHandle,
    readonly plan: LaunchPlan,
    readonly backend: BackendName,
  ) {
    const staging = addon.staging(handle);
    this.codec = new TickCodec(plan.tenants, staging);
    this.sets = staging.sets.map((b) => new Uint8Array(b, 0, staging.inBytes));
    this.views = this.sets.map((set) => this.codec.slotViews(set));
    this.masks = staging.sets.map(() => new Uint8Array(plan.tenants.length));
    this.rowCounts = staging.sets.map(() => new Int32Array(plan.tenants.length));
    this.free = staging.sets.map((_, i) => staging.sets.length - 1 - i);
    this.compact = staging.compact === true;
  }

  // Ticks run in call order, up to the plan's pipeline depth at once: a tick is written straight into a free
  // staging set and submitted before this returns; when none is free it waits (its bytes copied aside first).
  runTick(inputs: TickInputs): Promise<TickOutputs> {
    if (this.closed) return Promise.reject(new LoomError('USAGE', 'runTick on a closed plan'));
    let checked: CheckedTick;
    try {
      checked = this.codec.check(inputs);
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.waiting.length === 0 && this.free.length > 0) {
      const set = this.free.pop()!;
      const written = this.codec.write(checked, this.sets[set]!, this.masks[set]!, this.rowCounts[set]!, this.views[set]!);
      return this.submit(set, written);
    }
    const detached = this.codec.detach(checked);
    return new Promise<TickOutputs>((resolve, reject) => this.waiting.push({ checked: detached, settle: { resolve, reject } }));
  }

  private submit(set: number, written: WrittenTick): Promise<TickOutputs> {
    let pending: Promise<ArrayBuffer>;
    try {
      if (this.closed) fail('USAGE', 'the plan was closed before this tick ran');
      pending = this.compact
        ? this.addon.submitTick(this.handle, set, written.active, written.rows, written.live)
        : this.addon.submitTick(this.handle, set, written.active, written.rows);
    } catch (e) {
      this.release(set, written);
      return Promise.reject(isLoomError(e) ? e : new LoomError('EVAL', e instanceof Error ? e.message : String(e)));
    }
    return pending.then(
      (result) => {
        this.release(set, written);
        return this.codec.unpack(written, result, this.compact);
      },
      (e: unknown) => {
        this.release(set, written);
        return fromNative(e);
      },
    );
  }

  // The set is free again: the next waiting tick (in call order) takes it.
  private release(set: number, written: WrittenTick): void {
    this.codec.clear(written);
    const next = this.waiting.shift();
    if (next === undefined) {
      this.free.push(set);
      return;
    }
    const nextWritten = this.codec.write(next.checked, this.sets[set]!, this.masks[set]!, this.rowCounts[set]!, this.views[set]!);
    this.submit(set, nextWritten).then(next.settle.resolve, next.settle.reject);
  }

  backendInfo(): Record<string, string | number> {
    if (this.closed) fail('USAGE', 'backendInfo on a closed plan');
    try {
      return this.addon.handleInfo(this.handle);
    } catch (e) {
      fromNative(e);
    }
  }

  benchTick(iters: number, live?: readonly string[]): BenchTimes {
    if (this.closed) fail('USAGE', 'benchTick on a closed plan');
    checkIters(iters);
    let mask: Uint8Array | undefined;
    if (live !== undefined) {
      const index = new Map(this.plan.tenants.map((t, i) => [t.id, i]));
      mask = new Uint8Array(this.plan.tenants.length);
      for (const id of live) {
        const i = index.get(id);
        if (i === undefined) fail('USAGE', `benchTick: unknown tenant '${id}' (the plan has: ${this.plan.tenants.map((t) => t.id).join(', ')})`);
        mask[i] = 1;
      }
    }
    try {
      return this.addon.benchTick(this.handle, iters, mask);
    } catch (e) {
      fromNative(e);
    }
  }

  // For benchConcurrent: this plan's native handle and addon.
  nativeHandle(what: string): NativeHandle {
    if (this.closed) fail('USAGE', `${what} on a closed plan`);
    return this.handle;
  }

  addonOf(): NativeAddon {
    return this.addon;
  }

  profileTick(): Array<{ id: number; us: number }> {
    if (this.closed) fail('USAGE', 'profileTick on a closed plan');
    try {
      return this.addon.profileTick(this.handle);
    } catch (e) {
      fromNative(e);
    }
  }

  testInjectFault(ticks: number, after = 0): void {
    if (this.closed) fail('USAGE', 'testInjectFault on a closed plan');
    for (const [k, v] of [
      ['ticks', ticks],
      ['after', after],
    ] as const)
      if (!Number.isInteger(v) || v < 0 || v > 1e9) fail('USAGE', `testInjectFault: ${k} must be an integer in [0, 1e9], got ${v}`);
    try {
      this.addon.testInjectFault(this.handle, ticks, after);
    } catch (e) {
      fromNative(e);
    }
  }

  // Ticks in flight finish (the native side keeps the plan alive for them); ticks still waiting for a staging
  // set are refused.
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.addon.destroy(this.handle);
    for (const w of this.waiting.splice(0)) w.settle.reject(new LoomError('USAGE', 'the plan was closed before this tick ran'));
  }
}
