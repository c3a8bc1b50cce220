// Size limits: compile estimates every tensor's bytes from its shape and dtype before anything is built and
// refuses, with a LIMIT error naming the tenant, the node and the size, what one GPU could not hold or what
// would take the compiler itself down (a tiny model whose Tile, Expand or ConstantOfShape asks for 10^10
// elements). The defaults are sized for one 80 GB card: weights 40 GiB + activations 32 GiB + io 4 GiB.
import { type DType, byteSize } from './dtype.js';
import { fail } from './errors.js';

export interface SizeLimits {
  readonly maxWeightsBytes: number; // the weights arena (every constant the plan keeps)
  readonly maxActivationsBytes: number; // the activation arena (after liveness reuse), and any one activation
  readonly maxIoBytes: number; // the io arena (every tenant's input and output slots)
  readonly maxConstantBytes: number; // one tensor computed at compile time (a folded constant, an index table)
  readonly maxTensorElements: number; // elements of one tensor computed at compile time
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export const DEFAULT_LIMITS: SizeLimits = {
  maxWeightsBytes: 40 * GiB,
  maxActivationsBytes: 32 * GiB,
  maxIoBytes: 4 * GiB,
  maxConstantBytes: 1 * GiB,
  maxTensorElements: 2 ** 31,
};

// The flag (CLI) / option (library) that raises each limit, for messages.
export const LIMIT_FLAGS: Readonly<Record<keyof SizeLimits, string>> = {
  maxWeightsBytes: '--max-weights-mb',
  maxActivationsBytes: '--max-activations-mb',
  maxIoBytes: '--max-io-mb',
  maxConstantBytes: '--max-constant-mb',
  maxTensorElements: '(fixed: 2^31 elements)',
};

export function resolveLimits(l: Partial<SizeLimits> | undefined): SizeLimits {
  const out: { -readonly [K in keyof SizeLimits]: number } = { ...DEFAULT_LIMITS, ...(l ?? {}) };
  for (const [k, v] of Object.entries(out)) {
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) fail('USAGE', `size limit ${k} must be a positive number, got ${String(v)}`);
  }
  out.maxTensorElements = Math.min(out.maxTensorElements, DEFAULT_LIMITS.maxTensorElements);
  return out;
}

// "1.5 GiB (1610612736 bytes)"; past 2^53 the count is not exact, so only the rounded form.
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const short = u === 0 ? `${bytes} bytes` : `${v >= 100 || !Number.isFinite(v) ? v.toPrecision(4) : v.toFixed(1)} ${units[u]}`;
  return u === 0 || !Number.isSafeInteger(bytes) ? short : `${short} (${bytes} bytes)`;
}

// Element count of a static shape; Infinity when the product is not exactly representable (past 2^53).
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) return Number.POSITIVE_INFINITY;
  }
  return n;
}

// Refuses a tensor that compile would compute or lay out when its size passes a limit. `what` names it
// (e.g. "tenant 'a': node 'tile' (Tile): output 't' [1,40000000000] f32"); `bytesPerElement` is what it
// costs per element where that is not its dtype's size (an int32 index table).
export function checkComputedTensor(limits: SizeLimits, what: string, shape: readonly number[], dtype: DType, bytesPerElement = byteSize(dtype)): void {
  const n = elementCount(shape);
  if (n > limits.maxTensorElements) {
    fail(
      'LIMIT',
      `${what}: ${Number.isFinite(n) ? `${n} elements` : 'more than 2^53 elements'}, past the ${limits.maxTensorElements} elements Loom computes per tensor at compile time`,
    );
  }
  const bytes = n * bytesPerElement;
  if (bytes > limits.maxConstantBytes) {
    fail(
      'LIMIT',
      `${what}: ${formatBytes(bytes)} to compute at compile time, past the limit of ${formatBytes(limits.maxConstantBytes)} (${LIMIT_FLAGS.maxConstantBytes})`,
    );
  }
}
