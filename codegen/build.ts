// Plan → LaunchPlan: packs weights.bin (streamed to a sink, never built whole), decides the kernels, renders
// kernels.cu and validates the result. writePlanDir and the --emit support functions share it; nothing here
// touches the disk (writePlanDir's sink does).
import { createHash } from 'node:crypto';
import { byteSize } from '../ir/dtype.js';
import { fail } from '../ir/errors.js';
import type { Plan } from '../ir/contract/plan.js';
import { FORMAT_NAME, FORMAT_VERSION, KERNELS_FILE, WEIGHTS_FILE, type LaunchPlan, type WeightBlobInfo } from '../ir/contract/launch-plan.js';
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

// Streams the weights arena (blobs at their offsets, zeros between them and up to the arena's size) into
// `sink` without building it in memory: a fleet's weights can be several GB, and the plan already holds them.
export function packWeights(plan: Plan, sink: WeightsSink): WeightBlobInfo[] {
  const size = plan.arenas.weights;
  const blobs = [...plan.weights].sort((a, b) => a.offset - b.offset);
  let end = 0;
  const zeros = (n: number): void => {
    for (let left = n; left > 0; left -= ZEROS.byteLength) sink(left >= ZEROS.byteLength ? ZEROS : ZEROS.subarray(0, left));
  };
  const info = blobs.map((b): WeightBlobInfo => {
    const t = b.tensor;
    const data = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const expect = t.shape.reduce((x, y) => x * y, 1) * byteSize(t.dtype);
    if (data.byteLength !== expect)
      fail('PLAN_INVALID', `weight blob at ${b.offset}: ${t.dtype}[${t.shape.join(', ')}] needs ${expect} bytes, its data has ${data.byteLength}`);
    if (!Number.isSafeInteger(b.offset) || b.offset < end) fail('PLAN_INVALID', `weight blob at ${b.offset} overlaps the previous blob (which ends at ${end})`);
    if (b.offset + data.byteLength > size)
      fail('PLAN_INVALID', `weight blob at ${b.offset} (${data.byteLength} bytes) runs past the weights arena of ${size} bytes`);
    zeros(b.offset - end);
    if (data.byteLength > 0) sink(data);
    end = b.offset + data.byteLength;
    return { offset: b.offset, bytes: data.byteLength, dtype: t.dtype, shape: [...t.shape] };
  });
  zeros(size - end);
  return info;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

// `weights` also receives weights.bin as it is hashed (writePlanDir writes it; --emit only needs the hash).
export function buildLaunchPlan(plan: Plan, weights?: WeightsSink): BuiltPlan {
  const hash = createHash('sha256');
  const blobs = packWeights(plan, (chunk) => {
    hash.update(chunk);
    weights?.(chunk);
  });
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
    cost: plan.cost,
    weights: { file: WEIGHTS_FILE, bytes: plan.arenas.weights, sha256: hash.digest('hex'), blobs },
    kernels: { source: KERNELS_FILE, cubin: null, arch: null, names: kernels.names, grids: kernels.grids },
  };
  checkLaunchPlan(launchPlan);
  return { plan: launchPlan, kernels, source: renderKernelSource(kernels) };
}
