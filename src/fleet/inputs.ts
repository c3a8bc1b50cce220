// A tenant's request tensors checked against its plan I/O table before anything runs, with messages that
// say which input, what was given and what the plan expects; and seeded example inputs for demos.
import { fail } from '../../ir/errors.js';
import { type Tensor, fromNumbers } from '../../ir/tensor.js';
import type { PlannedTenant, TenantIO } from '../../ir/contract/plan.js';

// "f32[1..4,784]": the shape a request may have (rows along the batch axis).
export function describeIO(io: TenantIO): string {
  const dims = io.shape.map((d, i) => (i === io.batchAxis && d > 1 ? `1..${d}` : String(d)));
  return `${io.dtype}[${dims.join(',')}]`;
}

// Checks names, dtypes and shapes; returns the request's row count (1 when no input has a batch axis).
export function checkTenantInputs(tenant: PlannedTenant, inputs: Readonly<Record<string, Tensor>>, sourceOf: (name: string) => string = (n) => `'${n}'`): number {
  const at = `tenant '${tenant.id}'`;
  const known = tenant.inputs.map((io) => io.name);
  for (const name of Object.keys(inputs)) {
    if (!known.includes(name)) fail('EVAL', `${at} has no input '${name}' (its inputs: ${tenant.inputs.map((io) => `${io.name} ${describeIO(io)}`).join(', ')})`);
  }
  let rows: number | null = null;
  let rowsFrom = '';
  for (const io of tenant.inputs) {
    const t = inputs[io.name];
    if (!t) fail('EVAL', `${at} needs input '${io.name}' (${describeIO(io)}), which was not given`);
    const what = `${at}: input '${io.name}' from ${sourceOf(io.name)}`;
    if (t.dtype !== io.dtype) fail('EVAL', `${what} has dtype ${t.dtype}, expected ${io.dtype} (${describeIO(io)})`);
    const shapeOk = t.shape.length === io.shape.length && t.shape.every((d, i) => (i === io.batchAxis ? d >= 1 && d <= io.shape[i]! : d === io.shape[i]));
    if (!shapeOk) fail('EVAL', `${what} has shape [${t.shape.join(',')}], expected ${describeIO(io)}`);
    if (io.batchAxis === null) continue;
    const r = t.shape[io.batchAxis]!;
    if (rows === null) {
      rows = r;
      rowsFrom = io.name;
    } else if (r !== rows) {
      fail('EVAL', `${what} has ${r} rows along axis ${io.batchAxis}, but input '${rowsFrom}' has ${rows}; a request's inputs must agree`);
    }
  }
  return rows ?? 1;
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
