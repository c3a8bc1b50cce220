// Plan → LaunchPlan: packs weights.bin (streamed to a sink, never built whole), decides the kernels, renders
// kernels.cu and validates the result. writePlanDir and the --emit support functions share it; nothing here
// touches the disk (writePlanDir's sink does).
import { createHash } from 'node:crypto';
import { bytesOf } from '../ir/deferred.js';
import { byteSize } from '../ir/dtype.js';
import { fail } from '../ir/errors.js';
import type { Plan } from '../ir/contract/plan.js';
import {
  FORMAT_NAME,
  FORMAT_VERSION,
  KERNELS_FILE,
  WEIGHTS_FILE,
  WEIGHT_HASH_CHUNK,
  type LaunchPlan,
  type WeightBlobInfo,
  type WeightChunks,
} from '../ir/contract/launch-plan.js';
import { planKernels, renderKernelSource, type KernelTable } from './kernels.js';
import { checkLaunchPlan } from './validate.js';

export interface BuiltPlan {
  readonly plan: LaunchPlan; // kernels.cubin/arch still null
  readonly kernels: KernelTable;
  readonly source: string;
}

// Receives weights.bin in order, a chunk at a time (views of the plan's tensors: never kept, never mutated).
export type WeightsSink = (chunk: Uint8Array) => void;

const ZEROS = new Uint8Array(1 << 16);

// The blob table of weights.bin (sorted by offset), each blob checked against its tensor and the arena.
export function weightBlobInfos(plan: Plan): WeightBlobInfo[] {
  const size = plan.arenas.weights;
  let end = 0;
  return sortedBlobs(plan).map((b): WeightBlobInfo => {
    const t = b.tensor;
    const bytes = t.data.byteLength;
    const expect = t.shape.reduce((x, y) => x * y, 1) * byteSize(t.dtype);
    if (bytes !== expect) fail('PLAN_INVALID', `weight blob at ${b.offset}: ${t.dtype}[${t.shape.join(', ')}] needs ${expect} bytes, its data has ${bytes}`);
    if (!Number.isSafeInteger(b.offset) || b.offset < end) fail('PLAN_INVALID', `weight blob at ${b.offset} overlaps the previous blob (which ends at ${end})`);
    if (b.offset + bytes > size) fail('PLAN_INVALID', `weight blob at ${b.offset} (${bytes} bytes) runs past the weights arena of ${size} bytes`);
    end = b.offset + bytes;
    return { offset: b.offset, bytes, dtype: t.dtype, shape: [...t.shape] };
  });
}

export function sortedBlobs(plan: Plan): Plan['weights'] {
  return [...plan.weights].sort((a, b) => a.offset - b.offset);
}

// Streams the weights arena (blobs at their offsets, zeros between them and up to the arena's size) into
// `sink` without building it in memory: a fleet's weights can be several GB, and the plan already holds them.
export function packWeights(plan: Plan, sink: WeightsSink): WeightBlobInfo[] {
  const size = plan.arenas.weights;
  const info = weightBlobInfos(plan);
  let end = 0;
  const zeros = (n: number): void => {
    for (let left = n; left > 0; left -= ZEROS.byteLength) sink(left >= ZEROS.byteLength ? ZEROS : ZEROS.subarray(0, left));
  };
  for (const b of sortedBlobs(plan)) {
    const data = bytesOf(b.tensor); // a constant a cached tenant left on disk is read now (ir/deferred.ts)
    zeros(b.offset - end);
    if (data.byteLength > 0) sink(data);
    end = b.offset + data.byteLength;
  }
  zeros(size - end);
  return info;
}

// sha256 of each `chunk` bytes of a stream (the last chunk may be shorter): weights.chunks.
export class ChunkHasher {
  private readonly hashes: string[] = [];
  private hash = createHash('sha256');
  private filled = 0; // bytes in the current chunk

  constructor(readonly chunk = WEIGHT_HASH_CHUNK) {}

  update(bytes: Uint8Array): void {
    for (let at = 0; at < bytes.byteLength; ) {
      const n = Math.min(this.chunk - this.filled, bytes.byteLength - at);
      this.hash.update(n === bytes.byteLength ? bytes : bytes.subarray(at, at + n));
      this.filled += n;
      at += n;
      if (this.filled === this.chunk) this.next();
    }
  }

  digest(): WeightChunks {
    if (this.filled > 0) this.next();
    return { bytes: this.chunk, sha256: this.hashes };
  }

  private next(): void {
    this.hashes.push(this.hash.digest('hex'));
    this.hash = createHash('sha256');
    this.filled = 0;
  }
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

// `weights` also receives weights.bin as it is hashed (writePlanDir writes it; --emit only needs the hashes).
export function buildLaunchPlan(plan: Plan, weights?: WeightsSink): BuiltPlan {
  const hash = new ChunkHasher();
  const blobs = packWeights(plan, (chunk) => {
    hash.update(chunk);
    weights?.(chunk);
  });
  return buildLaunchPlanWith(plan, blobs, hash.digest());
}

// The LaunchPlan around a weights table already made (a recompile that kept most of the previous weights.bin).
export function buildLaunchPlanWith(plan: Plan, blobs: WeightBlobInfo[], chunks: WeightChunks): BuiltPlan {
  const kernels = planKernels(plan.launches);
  const launchPlan: LaunchPlan = {
    format: FORMAT_NAME,
    version: FORMAT_VERSION,
    precision: plan.precision,
    arenas: plan.arenas,
    tenants: plan.tenants,
    launches: plan.launches,
    stages: plan.stages,
    ...(plan.lanes !== undefined ? { lanes: plan.lanes } : {}),
    ...(plan.priorityLanes !== undefined ? { priorityLanes: plan.priorityLanes } : {}),
    cost: plan.cost,
    weights: { file: WEIGHTS_FILE, bytes: plan.arenas.weights, chunks, blobs },
    kernels: { source: KERNELS_FILE, cubin: null, arch: null, names: kernels.names, grids: kernels.grids },
  };
  checkLaunchPlan(launchPlan);
  return { plan: launchPlan, kernels, source: renderKernelSource(kernels) };
}
