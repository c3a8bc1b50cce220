// A tick's tensors ⇄ the io arena: validates each tenant's inputs against its TenantIO table, lays them
// into their slots (rows along batchAxis, zero padding up to maxBatch), and cuts outputs back to the rows
// the tick carried. Pure TypeScript; the native side only copies the bytes.
import { allocArray, byteSize } from '../ir/dtype.js';
import { fail } from '../ir/errors.js';
import { shapeToString } from '../ir/shape.js';
import { type Tensor, makeTensor, tensorBytes } from '../ir/tensor.js';
import type { PlannedTenant, TenantIO } from '../src/planner/plan.js';
import type { NativeTickInput, NativeTickOutput } from './native-addon.js';

export type TickInputs = Readonly<Record<string, Readonly<Record<string, Tensor>>>>;
export type TickOutputs = Record<string, Record<string, Tensor>>;

export interface PackedTick {
  readonly inputs: NativeTickInput[];
  readonly outputs: NativeTickOutput[];
  readonly active: Uint8Array; // one byte per plan tenant
  readonly reads: ReadonlyArray<{ readonly tenant: PlannedTenant; readonly io: TenantIO; readonly rows: number }>; // one per output
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

// outer = product of dims before the axis, inner = bytes of one row slice after it.
function rowGeometry(io: TenantIO): { outer: number; maxRows: number; rowBytes: number } {
  const axis = io.batchAxis ?? 0;
  const outer = numel(io.shape.slice(0, axis));
  const inner = numel(io.shape.slice(axis + 1));
  return { outer, maxRows: io.shape.length === 0 ? 1 : io.shape[axis]!, rowBytes: inner * byteSize(io.dtype) };
}

// The number of rows `t` carries for `io`, or an EVAL error saying what does not match.
function checkInput(tenant: PlannedTenant, io: TenantIO, t: Tensor): number {
  const where = `tenant '${tenant.id}' input '${io.name}'`;
  if (t.dtype !== io.dtype) fail('EVAL', `${where}: dtype ${t.dtype}, expected ${io.dtype}`);
  if (t.data.length !== numel(t.shape)) fail('EVAL', `${where}: ${t.data.length} elements for shape ${shapeToString(t.shape)}`);
  const bad = (): never =>
    fail('EVAL', `${where}: shape ${shapeToString(t.shape)}, expected ${shapeToString(io.shape)}` +
      (io.batchAxis !== null ? ` with 1..${io.shape[io.batchAxis]} rows on axis ${io.batchAxis}` : ''));
  if (t.shape.length !== io.shape.length) bad();
  for (let d = 0; d < io.shape.length; d++) {
    if (d === io.batchAxis) {
      if (t.shape[d]! < 1 || t.shape[d]! > io.shape[d]!) bad();
    } else if (t.shape[d] !== io.shape[d]) bad();
  }
  return io.batchAxis === null ? 0 : t.shape[io.batchAxis]!;
}

function packInput(io: TenantIO, t: Tensor, rows: number): Uint8Array {
  const src = tensorBytes(t);
  // a copy: the tick may run after the caller has moved on (ticks queue)
  if (io.batchAxis === null || rows === io.shape[io.batchAxis]) return src.slice();
  const { outer, maxRows, rowBytes } = rowGeometry(io);
  const out = new Uint8Array(io.bytes); // zero padding for the rows the tick does not carry
  for (let o = 0; o < outer; o++) out.set(src.subarray(o * rows * rowBytes, (o + 1) * rows * rowBytes), o * maxRows * rowBytes);
  return out;
}

export function packTick(tenants: readonly PlannedTenant[], inputs: TickInputs): PackedTick {
  if (inputs === null || typeof inputs !== 'object') fail('EVAL', 'runTick expects an object of tenant id → { input name → Tensor }');
  const index = new Map(tenants.map((t, i) => [t.id, i]));
  for (const id of Object.keys(inputs)) {
    if (!index.has(id)) fail('EVAL', `unknown tenant '${id}' (the plan has: ${tenants.map((t) => t.id).join(', ')})`);
  }
  const packed: PackedTick = { inputs: [], outputs: [], active: new Uint8Array(tenants.length), reads: [] };
  for (const [id, given] of Object.entries(inputs)) {
    const ti = index.get(id)!;
    const tenant = tenants[ti]!;
    const names = new Set(tenant.inputs.map((io) => io.name));
    for (const name of Object.keys(given)) {
      if (!names.has(name)) fail('EVAL', `tenant '${id}' has no input '${name}' (its inputs: ${[...names].join(', ')})`);
    }
    let rows: number | null = null;
    for (const io of tenant.inputs) {
      const t = given[io.name];
      if (t === undefined) fail('EVAL', `tenant '${id}' is missing input '${io.name}'`);
      const r = checkInput(tenant, io, t);
      if (io.batchAxis !== null) {
        if (rows !== null && r !== rows) fail('EVAL', `tenant '${id}': input '${io.name}' has ${r} rows, the tenant's other inputs ${rows}`);
        rows = r;
      }
      packed.inputs.push({ offset: io.ref.offset, data: packInput(io, t, r) });
    }
    packed.active[ti] = 1;
    for (const io of tenant.outputs) {
      packed.outputs.push({ offset: io.ref.offset, bytes: io.bytes });
      (packed.reads as Array<PackedTick['reads'][number]>).push({ tenant, io, rows: rows ?? tenant.maxBatch });
    }
  }
  return packed;
}

function unpackOutput(io: TenantIO, bytes: Uint8Array, rows: number): Tensor {
  const shape = [...io.shape];
  let data = bytes;
  if (io.batchAxis !== null && rows < io.shape[io.batchAxis]!) {
    const { outer, maxRows, rowBytes } = rowGeometry(io);
    shape[io.batchAxis] = rows;
    data = new Uint8Array(outer * rows * rowBytes);
    for (let o = 0; o < outer; o++) data.set(bytes.subarray(o * maxRows * rowBytes, o * maxRows * rowBytes + rows * rowBytes), o * rows * rowBytes);
  }
  const arr = allocArray(io.dtype, numel(shape));
  new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength).set(data.subarray(0, arr.byteLength));
  return makeTensor(io.dtype, shape, arr);
}

export function unpackTick(packed: PackedTick, results: readonly Uint8Array[]): TickOutputs {
  const out: TickOutputs = {};
  packed.reads.forEach(({ tenant, io, rows }, i) => {
    (out[tenant.id] ??= {})[io.name] = unpackOutput(io, results[i]!, rows);
  });
  return out;
}
