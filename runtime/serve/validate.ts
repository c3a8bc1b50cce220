// A request's tensors checked against its tenant's I/O table before the request may join a batch: names,
// dtypes, shapes (1..maxBatch rows on the batch axis), element counts, byte sizes, and optionally finite
// values. A failure is a 400 that names the input and says what the plan expects; nothing else is touched.
import { byteSize } from '../../ir/dtype.js';
import type { Tensor } from '../../ir/tensor.js';
import type { PlannedTenant, TenantIO } from '../../ir/contract/plan.js';
import { refuse } from './errors.js';

// "f32[1..4,784]": the shapes a request may have.
export function describeTenantIO(io: TenantIO): string {
  const dims = io.shape.map((d, i) => (i === io.batchAxis && d > 1 ? `1..${d}` : String(d)));
  return `${io.dtype}[${dims.join(',')}]`;
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

// Index of the first NaN/Inf element, or -1. f16/bf16 are raw bits: all-ones exponent means non-finite.
export function firstNonFinite(t: Tensor): number {
  const d = t.data;
  switch (t.dtype) {
    case 'f32':
    case 'f64':
      for (let i = 0; i < d.length; i++) if (!Number.isFinite((d as Float32Array)[i]!)) return i;
      return -1;
    case 'f16':
      for (let i = 0; i < d.length; i++) if (((d as Uint16Array)[i]! & 0x7c00) === 0x7c00) return i;
      return -1;
    case 'bf16':
      for (let i = 0; i < d.length; i++) if (((d as Uint16Array)[i]! & 0x7f80) === 0x7f80) return i;
      return -1;
    default:
      return -1;
  }
}

function describeElement(t: Tensor, i: number): string {
  switch (t.dtype) {
    case 'f32':
    case 'f64':
      return String((t.data as Float32Array)[i]);
    default: {
      // f16 / bf16 bits with an all-ones exponent: a zero mantissa is an infinity
      const bits = (t.data as Uint16Array)[i]!;
      if ((bits & (t.dtype === 'f16' ? 0x03ff : 0x007f)) !== 0) return 'NaN';
      return bits & 0x8000 ? '-Infinity' : 'Infinity';
    }
  }
}

export interface ValidateOptions {
  readonly checkFinite?: boolean;
}

// Returns the request's row count (1 for a tenant whose inputs have no batch axis).
export function validateRequest(tenant: PlannedTenant, inputs: Readonly<Record<string, Tensor>>, opts: ValidateOptions = {}): number {
  const at = `model '${tenant.id}'`;
  const known = new Set(tenant.inputs.map((io) => io.name));
  for (const name of Object.keys(inputs)) {
    if (!known.has(name)) refuse(400, `${at} has no input '${name}' (its inputs: ${tenant.inputs.map((io) => `${io.name} ${describeTenantIO(io)}`).join(', ')})`);
  }
  let rows: number | null = null;
  let rowsFrom = '';
  for (const io of tenant.inputs) {
    const t = inputs[io.name];
    const what = `input '${io.name}'`;
    if (t === undefined) refuse(400, `${at} needs ${what} (${describeTenantIO(io)}), which the request does not give`);
    if (t.dtype !== io.dtype) refuse(400, `${what}: datatype ${t.dtype}, expected ${describeTenantIO(io)}`);
    const shapeOk = t.shape.length === io.shape.length && t.shape.every((d, i) => (i === io.batchAxis ? Number.isInteger(d) && d >= 1 && d <= io.shape[i]! : d === io.shape[i]));
    if (!shapeOk) refuse(400, `${what}: shape [${t.shape.join(',')}], expected ${describeTenantIO(io)}`);
    const n = numel(t.shape);
    if (t.data.length !== n) refuse(400, `${what}: ${t.data.length} elements for shape [${t.shape.join(',')}] (${n} expected)`);
    if (t.data.byteLength !== n * byteSize(io.dtype)) refuse(400, `${what}: ${t.data.byteLength} bytes, expected ${n * byteSize(io.dtype)}`);
    if (opts.checkFinite) {
      const bad = firstNonFinite(t);
      if (bad >= 0) refuse(400, `${at}, ${what}: element ${bad} is not finite (${describeElement(t, bad)}, row-major index); this model refuses NaN and Inf`);
    }
    if (io.batchAxis === null) continue;
    const r = t.shape[io.batchAxis]!;
    if (rows === null) {
      rows = r;
      rowsFrom = io.name;
    } else if (r !== rows) {
      refuse(400, `${what}: ${r} rows along axis ${io.batchAxis}, but input '${rowsFrom}' has ${rows}; a request's inputs must agree`);
    }
  }
  return rows ?? 1;
}

// A tenant can batch several requests into one tick only when every input and output has a batch axis.
export function isBatchable(tenant: PlannedTenant): boolean {
  return [...tenant.inputs, ...tenant.outputs].every((io) => io.batchAxis !== null);
}
