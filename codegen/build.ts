// Plan → LaunchPlan in memory: packs weights.bin, decides the kernels, renders kernels.cu and validates
// the result. writePlanDir and the --emit support functions share it; nothing here touches the disk.
import { createHash } from 'node:crypto';
import { byteSize } from '../ir/dtype.js';
import { fail } from '../ir/errors.js';
import type { Plan } from '../src/planner/plan.js';
import { FORMAT_NAME, FORMAT_VERSION, KERNELS_FILE, WEIGHTS_FILE, type LaunchPlan, type WeightBlobInfo } from './format.js';
import { planKernels, renderKernelSource, type KernelTable } from './kernels.js';
import { checkLaunchPlan } from './validate.js';

export interface BuiltPlan {
  readonly plan: LaunchPlan; // kernels.cubin/arch still null
  readonly weights: Uint8Array;
  readonly kernels: KernelTable;
  readonly source: string;
}

export function packWeights(plan: Plan): { bytes: Uint8Array; blobs: WeightBlobInfo[] } {
  const bytes = new Uint8Array(plan.arenas.weights);
  const blobs = [...plan.weights].sort((a, b) => a.offset - b.offset);
  let end = 0;
  const info = blobs.map((b): WeightBlobInfo => {
    const t = b.tensor;
    const data = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const expect = t.shape.reduce((x, y) => x * y, 1) * byteSize(t.dtype);
    if (data.byteLength !== expect) fail('PLAN_INVALID', `weight blob at ${b.offset}: ${t.dtype}[${t.shape.join(', ')}] needs ${expect} bytes, its data has ${data.byteLength}`);
    if (!Number.isSafeInteger(b.offset) || b.offset < end) fail('PLAN_INVALID', `weight blob at ${b.offset} overlaps the previous blob (which ends at ${end})`);
    if (b.offset + data.byteLength > bytes.byteLength) fail('PLAN_INVALID', `weight blob at ${b.offset} (${data.byteLength} bytes) runs past the weights arena of ${bytes.byteLength} bytes`);
    bytes.set(data, b.offset);
    end = b.offset + data.byteLength;
    return { offset: b.offset, bytes: data.byteLength, dtype: t.dtype, shape: [...t.shape] };
  });
  return { bytes, blobs: info };
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function buildLaunchPlan(plan: Plan): BuiltPlan {
  const { bytes, blobs } = packWeights(plan);
  const kernels = planKernels(plan.launches);
  const launchPlan: LaunchPlan = {
    format: FORMAT_NAME,
    version: FORMAT_VERSION,
    precision: plan.precision,
    arenas: plan.arenas,
    tenants: plan.tenants,
    launches: plan.launches,
    stages: plan.stages,
    cost: plan.cost,
    weights: { file: WEIGHTS_FILE, bytes: bytes.byteLength, sha256: sha256Hex(bytes), blobs },
    kernels: { source: KERNELS_FILE, cubin: null, arch: null, names: kernels.names, grids: kernels.grids },
  };
  checkLaunchPlan(launchPlan);
  return { plan: launchPlan, weights: bytes, kernels, source: renderKernelSource(kernels) };
}
