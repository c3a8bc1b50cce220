// writePlanDir: a Plan becomes a LaunchPlan directory (plan.json, weights.bin, kernels.cu and, where nvcc
// is present, kernels.sm_90.cubin). Same Plan → byte-identical files.
import {
  closeSync,
  constants as fsConstants,
  copyFileSync,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { DeferredReadError, bytesOf } from '../ir/deferred.js';
import { fail, isLoomError } from '../ir/errors.js';
import type { Plan } from '../ir/contract/plan.js';
import { type BuiltPlan, ChunkHasher, buildLaunchPlan, buildLaunchPlanWith, sortedBlobs, weightBlobInfos } from './build.js';
import { KERNELS_FILE, PLAN_FILE, WEIGHTS_FILE, WEIGHT_HASH_CHUNK, type LaunchPlan } from '../ir/contract/launch-plan.js';
import type { PreviousWeights, WeightsReuse, WritePlanOptions, WrittenPlan } from './format.js';
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
    if (isLoomError(e) || e instanceof DeferredReadError) throw e;
    fail('IO', `cannot write '${file}': ${(e as Error).message}`);
  }
  return built;
}

// The launch stage's half of a plan directory: weights.bin streamed in (never whole in memory) while the
// LaunchPlan is built; plan.json waits for the kernels half, which may add the cubin to it. With `previous`,
// weights.bin starts as a copy of that file and only the blobs it does not hold are written; where that cannot
// be done (the file changed size, a read or write failed) every byte is written as without it, and
// `reuse.fellBack` says why.
export function writeWeights(
  plan: Plan,
  dir: string,
  onProgress?: (msg: string) => void,
  previous?: PreviousWeights,
): BuiltPlan & { readonly reuse?: WeightsReuse; readonly reuseFailed?: string } {
  onProgress?.(`launch plan: ${plan.launches.length} launches, ${plan.tenants.length} tenants`);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    fail('IO', `cannot create the plan directory '${dir}': ${(e as Error).message}`);
  }
  const file = path.join(dir, WEIGHTS_FILE);
  if (previous !== undefined) {
    try {
      return buildKeepingWeights(plan, file, previous);
    } catch (e) {
      if (e instanceof DeferredReadError || (isLoomError(e) && e.code !== 'IO')) throw e; // the plan or the cache is bad: the caller decides
      const why = (e as Error).message;
      onProgress?.(`weights.bin: could not keep ${previous.file}'s bytes (${why}); writing every byte`);
      return { ...buildWritingWeights(plan, file), reuseFailed: why };
    }
  }
  return buildWritingWeights(plan, file);
}

// weights.bin as a copy of previous.file with the blobs it does not hold written over it; each chunk that a
// rewritten blob touches is read back and hashed, the others keep previous.chunks' hashes. The copy is made by
// the kernel (copy_file_range, or a reflink where the file system has them), never through this process.
function buildKeepingWeights(plan: Plan, file: string, previous: PreviousWeights): BuiltPlan & { readonly reuse: WeightsReuse } {
  const infos = weightBlobInfos(plan);
  const size = plan.arenas.weights;
  const chunk = previous.chunks.bytes;
  const total = Math.ceil(size / chunk);
  const tmp = `${file}.tmp-${process.pid}`;
  let fd = -1;
  try {
    if (previous.keep.length !== infos.length) throw new Error(`the layout differs (${previous.keep.length} blobs kept or not, the plan has ${infos.length})`);
    if (chunk !== WEIGHT_HASH_CHUNK || previous.chunks.sha256.length !== total) throw new Error('its chunk hashes do not cover this arena');
    if (previous.copied !== undefined) renameSync(previous.copied, tmp);
    else copyFileSync(previous.file, tmp, fsConstants.COPYFILE_FICLONE);
    const changed = previous.stillSame?.() ?? null;
    if (changed !== null) throw new Error(changed);
    fd = openSync(tmp, 'r+');
    if (fstatSync(fd).size !== size) throw new Error(`it has ${fstatSync(fd).size} bytes, the arena ${size}`);
    const dirty = new Set<number>();
    let rewrittenBlobs = 0;
    let rewrittenBytes = 0;
    sortedBlobs(plan).forEach((b, i) => {
      if (previous.keep[i]) return;
      const data = bytesOf(b.tensor);
      for (let done = 0; done < data.byteLength; ) done += writeSync(fd, data, done, Math.min(WRITE_MAX, data.byteLength - done), b.offset + done);
      for (let k = Math.floor(b.offset / chunk); k * chunk < b.offset + data.byteLength; k++) dirty.add(k);
      rewrittenBlobs++;
      rewrittenBytes += data.byteLength;
    });
    const hashes = [...previous.chunks.sha256];
    const buf = new Uint8Array(chunk);
    for (const k of [...dirty].sort((a, b) => a - b)) {
      const from = k * chunk;
      const n = Math.min(chunk, size - from);
      for (let got = 0; got < n; ) {
        const r = readSync(fd, buf, got, n - got, from + got);
        if (r === 0) throw new Error(`it ended before byte ${from + got}`);
        got += r;
      }
      const h = new ChunkHasher(chunk);
      h.update(buf.subarray(0, n));
      hashes[k] = h.digest().sha256[0]!;
    }
    closeSync(fd);
    fd = -1;
    const built = buildLaunchPlanWith(plan, infos, { bytes: chunk, sha256: hashes }); // validated before it is in place
    renameSync(tmp, file);
    const reuse: WeightsReuse = {
      from: previous.file,
      keptBlobs: infos.length - rewrittenBlobs,
      rewrittenBlobs,
      rewrittenBytes,
      hashedChunks: dirty.size,
      totalChunks: total,
    };
    return { ...built, reuse };
  } catch (e) {
    if (fd >= 0) closeSync(fd);
    rmSync(tmp, { force: true });
    if (previous.copied !== undefined) rmSync(previous.copied, { force: true });
    throw e;
  }
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
