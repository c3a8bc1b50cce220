// A tenant's request tensors checked against its plan I/O table before anything runs (the shared check,
// ir/contract/tenant-io.ts, as an EVAL error naming the input's file); and seeded example inputs for demos.
import { LoomError } from '../../ir/errors.js';
import { type Tensor, fromNumbers } from '../../ir/tensor.js';
import type { PlannedTenant } from '../../ir/contract/plan.js';
import { TenantIOError, validateTenantInputs } from '../../ir/contract/tenant-io.js';

// "f32[1..4,784]": the shape a request may have (rows along the batch axis).
export { describeTenantIO as describeIO } from '../../ir/contract/tenant-io.js';

// Checks names, dtypes and shapes; returns the request's row count (1 when no input has a batch axis).
// sourceOf says where an input came from (`loom run`: its .npy file); the message names it.
export function checkTenantInputs(tenant: PlannedTenant, inputs: Readonly<Record<string, Tensor>>, sourceOf?: (name: string) => string | undefined): number {
  try {
    return validateTenantInputs(tenant, inputs, sourceOf ? { sourceOf } : {}) ?? 1;
  } catch (e) {
    if (e instanceof TenantIOError) throw new LoomError('EVAL', e.message, { cause: e });
    throw e;
  }
}

// Deterministic example inputs with `rows` rows: floats in [-1, 1); integer ids in [0, intRange); inputs
// named like a mask get ones, token-type ids zeros (valid for any vocabulary).
export function exampleInputs(tenant: PlannedTenant, rows: number, seed: number, intRange = 64): Record<string, Tensor> {
  let s = (seed * 2654435761) >>> 0 || 1;
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out: Record<string, Tensor> = {};
  for (const io of tenant.inputs) {
    const shape = io.shape.map((d, i) => (i === io.batchAxis ? Math.min(rows, d) : d));
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Float64Array(n);
    const float = io.dtype === 'f32' || io.dtype === 'f64' || io.dtype === 'f16' || io.dtype === 'bf16';
    if (float) for (let i = 0; i < n; i++) v[i] = rand() * 2 - 1;
    else if (/mask/i.test(io.name) || io.dtype === 'bool') v.fill(1);
    else if (!/type/i.test(io.name)) for (let i = 0; i < n; i++) v[i] = Math.floor(rand() * intRange);
    out[io.name] = fromNumbers(io.dtype, shape, v);
  }
  return out;
}

// Full occupancy (the benches, --branching measure): every tenant at maxBatch rows, deterministic values
// (exampleInputs: floats in [-1, 1), masks ones). Integer ids stay below BENCH_INT_RANGE: the plan does not
// record a vocabulary size, and small ids are valid for any embedding table a real model has.
const BENCH_INT_RANGE = 16;

export function benchInputs(plan: { readonly tenants: readonly PlannedTenant[] }): Record<string, Record<string, Tensor>> {
  const inputs: Record<string, Record<string, Tensor>> = {};
  plan.tenants.forEach((t, i) => {
    inputs[t.id] = exampleInputs(t, t.maxBatch, 7000 + i, BENCH_INT_RANGE);
  });
  return inputs;
}
