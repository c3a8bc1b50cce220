// writePlanDir: a Plan becomes a LaunchPlan directory (plan.json, weights.bin, kernels.cu and, where nvcc
// is present, kernels.sm_90.cubin). Same Plan → byte-identical files.
import { closeSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { fail, isLoomError } from '../ir/errors.js';
import type { Plan } from '../ir/contract/plan.js';
import { type BuiltPlan, buildLaunchPlan } from './build.js';
import { KERNELS_FILE, PLAN_FILE, WEIGHTS_FILE, type LaunchPlan } from '../ir/contract/launch-plan.js';
import type { WritePlanOptions, WrittenPlan } from './format.js';
import { stableJson } from './json.js';
import { ARCH, compileCubin, defaultCacheDir, findNvcc } from './nvcc.js';

function write(file: string, data: string | Uint8Array): void {
  try {
    writeFileSync(file, data);
  } catch (e) {
    fail('IO', `cannot write '${file}': ${(e as Error).message}`);
  }
}

// Small chunks (biases, padding) are gathered so the file is written in large pieces.
const GATHER = 1 << 20;
// ...but no single write() is larger than this: one multi-MB write from cold memory ran at a third of the
// speed of the same bytes in 256 KB pieces (5 GB of weights took 18 s instead of ~6).
const WRITE_MAX = 1 << 18;

// Builds the LaunchPlan while weights.bin streams into a temporary file, renamed into place only when the
// plan validated: a failed build leaves no weights file behind, and the packed arena is never in memory whole.
function buildWritingWeights(plan: Plan, file: string): BuiltPlan {
  const tmp = `${file}.tmp-${process.pid}`;
  let fd: number;
  try {
    fd = openSync(tmp, 'w');
  } catch (e) {
    fail('IO', `cannot write '${file}': ${(e as Error).message}`);
  }
  const pending = new Uint8Array(GATHER);
  let used = 0;
  const put = (bytes: Uint8Array): void => {
    let done = 0;
    while (done < bytes.byteLength) done += writeSync(fd, bytes, done, Math.min(WRITE_MAX, bytes.byteLength - done));
  };
  const flush = (): void => {
    put(pending.subarray(0, used));
    used = 0;
  };
  let built: BuiltPlan;
  try {
    try {
      built = buildLaunchPlan(plan, (chunk) => {
        if (used + chunk.byteLength > GATHER) flush();
        if (chunk.byteLength >= GATHER) put(chunk);
        else {
          pending.set(chunk, used);
          used += chunk.byteLength;
        }
      });
      flush();
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    if (isLoomError(e)) throw e;
    fail('IO', `cannot write '${file}': ${(e as Error).message}`);
  }
  return built;
}

// The launch stage's half of a plan directory: weights.bin streamed in (never whole in memory) while the
// LaunchPlan is built; plan.json waits for the kernels half, which may add the cubin to it.
export function writeWeights(plan: Plan, dir: string, onProgress?: (msg: string) => void): BuiltPlan {
  onProgress?.(`launch plan: ${plan.launches.length} launches, ${plan.tenants.length} tenants`);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    fail('IO', `cannot create the plan directory '${dir}': ${(e as Error).message}`);
  }
  return buildWritingWeights(plan, path.join(dir, WEIGHTS_FILE));
}

// The launch files alone (`loom compile --emit launch`): plan.json without a cubin, next to weights.bin.
export function writeLaunchJson(built: BuiltPlan, dir: string): string {
  const file = path.join(dir, PLAN_FILE);
  write(file, stableJson(built.plan));
  return file;
}

// The kernels half: kernels.cu, the cubin where nvcc is present, then plan.json (which names the cubin).
export async function writeKernels(built: BuiltPlan, dir: string, opts: WritePlanOptions = {}): Promise<WrittenPlan> {
  const progress = opts.onProgress ?? (() => {});
  const phase = opts.onPhase ?? (() => {});
  let t0 = performance.now();
  const lap = (name: string): void => {
    const now = performance.now();
    phase(name, (now - t0) / 1000);
    t0 = now;
  };
  const files = { plan: path.join(dir, PLAN_FILE), weights: path.join(dir, WEIGHTS_FILE), kernels: path.join(dir, KERNELS_FILE) };
  progress(`kernels: ${built.kernels.kernels.length} generated kernels for ${Object.keys(built.kernels.names).length} launches`);
  write(files.kernels, built.source);

  let launchPlan: LaunchPlan = built.plan;
  let cubinFile: string | null = null;
  let fromCache = false;
  let skipped: string | null = null;
  const nvcc = opts.nvcc === 'off' ? null : findNvcc();
  if (opts.nvcc === 'off') skipped = 'nvcc: off';
  else if (nvcc === null) skipped = 'nvcc not found (PATH, $CUDA_HOME/bin, /usr/local/cuda/bin): no cubin';
  else if (built.kernels.kernels.length === 0) skipped = 'no generated kernels';
  if (nvcc !== null && skipped === null) {
    const r = await compileCubin(built.source, nvcc, opts.cacheDir ?? defaultCacheDir(), progress);
    const name = `kernels.${ARCH}.cubin`;
    cubinFile = path.join(dir, name);
    write(cubinFile, r.cubin);
    fromCache = r.fromCache;
    launchPlan = { ...launchPlan, kernels: { ...launchPlan.kernels, cubin: name, arch: ARCH } };
    lap(fromCache ? 'cubin (cache)' : 'cubin (nvcc)');
  } else if (skipped !== null) progress(`kernels: ${skipped}`);
  write(files.plan, stableJson(launchPlan));
  lap('plan.json');
  progress(`launch plan written to ${dir}`);
  return { dir, plan: launchPlan, files: { ...files, cubin: cubinFile }, cubinFromCache: fromCache, nvccSkipped: skipped };
}

export async function writePlanDir(plan: Plan, dir: string, opts: WritePlanOptions = {}): Promise<WrittenPlan> {
  const t0 = performance.now();
  const built = writeWeights(plan, dir, opts.onProgress);
  opts.onPhase?.('weights + kernels', (performance.now() - t0) / 1000);
  return writeKernels(built, dir, opts);
}
