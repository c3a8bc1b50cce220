// A tick's tensors ⇄ the plan's staging buffers: validates each tenant's inputs against its TenantIO table
// (the shared check, ir/contract/tenant-io.ts), writes them straight into a staging set at the layout the native
// side gave (rows along batchAxis, zero padding up to maxBatch), and reads outputs in place from the tick's
// result buffer, cut back to the rows the tick carried. Pure TypeScript; the native side copies the bytes to
// the device and back, nothing on the host copies them again.
// Everything per tenant that does not depend on the request (slot geometry, where its bytes sit in the
// staging and result layouts) is computed once per plan by TickCodec, so a tick costs a few typed-array
// writes per live tenant, whatever the plan's tenant count.
import { allocArray, byteSize, viewArray } from '../ir/dtype.js';
import { LoomError, fail } from '../ir/errors.js';
import { numel } from '../ir/shape.js';
import { type Tensor, makeTensor, tensorBytes } from '../ir/tensor.js';
import type { PlannedTenant, TenantIO } from '../ir/contract/plan.js';
import { TenantIOError, validateTenantInputs } from '../ir/contract/tenant-io.js';

export type TickInputs = Readonly<Record<string, Readonly<Record<string, Tensor>>>>;
export type TickOutputs = Record<string, Record<string, Tensor>>;

// One io slot's geometry: outer = product of dims before the batch axis, rowBytes = bytes of one row
// slice after it; maxRows = 1 for a slot without a batch axis.
interface Slot {
  readonly io: TenantIO;
  readonly outer: number;
  readonly maxRows: number;
  readonly rowBytes: number;
  readonly hostOffset: number; // where the slot's bytes sit in a staging set (inputs) or a tick's result (outputs)
}

// The native side's staging layout (runtime/native-addon.ts NativeStaging): spans of [ioOffset, bytes, hostOffset].
export interface StagingLayout {
  readonly inSpans: Float64Array;
  readonly outSpans: Float64Array;
  readonly inBytes: number;
  readonly outBytes: number;
}

interface TenantTable {
  readonly tenant: PlannedTenant;
  readonly index: number;
  readonly inputs: readonly Slot[];
  readonly outputs: readonly Slot[];
}

// One output the tick reads back: which, and how many rows.
interface TickRead {
  readonly table: TenantTable;
  readonly slot: Slot;
  readonly rows: number;
}

// A validated tick: its tenants' tables, inputs and row counts, ready to be written into a staging set.
export interface CheckedTick {
  readonly entries: readonly { readonly table: TenantTable; readonly given: Readonly<Record<string, Tensor>>; readonly rows: number | null }[];
}

// A tick written into a staging set: its mask (one byte per plan tenant), each live tenant's rows (the native side
// runs the tick's row-scaled GEMMs at the most rows of any live tenant, rounded up to a power of two) and the
// outputs to read back.
export interface WrittenTick {
  readonly active: Uint8Array;
  readonly rows: Int32Array;
  readonly reads: readonly TickRead[];
}

// Where io range [offset, offset + bytes) sits in the host buffer of `spans`; throws when no span holds it
// (the layout and the plan disagree: a bug, not a request error).
function hostOffset(spans: Float64Array, offset: number, bytes: number, what: string): number {
  let lo = 0;
  let hi = spans.length / 3 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const start = spans[3 * mid]!;
    const end = start + spans[3 * mid + 1]!;
    if (offset < start) hi = mid - 1;
    else if (offset >= end) lo = mid + 1;
    else {
      if (offset + bytes > end) break;
      return spans[3 * mid + 2]! + (offset - start);
    }
  }
  return fail('EVAL', `${what} at io offset ${offset} (+${bytes}) is outside the native staging layout`);
}

function slotOf(io: TenantIO, hostOffset: number): Slot {
  const axis = io.batchAxis ?? 0;
  return {
    io,
    outer: numel(io.shape.slice(0, axis)),
    maxRows: io.shape.length === 0 || io.batchAxis === null ? 1 : io.shape[axis]!,
    rowBytes: numel(io.shape.slice(axis + 1)) * byteSize(io.dtype),
    hostOffset,
  };
}

// The request's row count for one tenant (null: no input has a batch axis), or an EVAL error from the
// shared tenant-I/O check, with that check's error (field path, code) as its cause.
function checkTenantTick(tenant: PlannedTenant, given: Readonly<Record<string, Tensor>>): number | null {
  try {
    return validateTenantInputs(tenant, given);
  } catch (e) {
    if (e instanceof TenantIOError) throw new LoomError('EVAL', e.message, { cause: e });
    throw e;
  }
}

// Rows [0, rows) of each outer block go to the front of the slot's block; the rest of the block is zeroed
// (the buffer is reused from earlier ticks).
function writeInput(data: Uint8Array, slot: Slot, t: Tensor, rows: number): void {
  const src = tensorBytes(t);
  if (slot.io.batchAxis === null || rows === slot.maxRows) {
    data.set(src, slot.hostOffset);
    return;
  }
  const given = rows * slot.rowBytes;
  const block = slot.maxRows * slot.rowBytes;
  for (let o = 0; o < slot.outer; o++) {
    const at = slot.hostOffset + o * block;
    data.set(src.subarray(o * given, (o + 1) * given), at);
    data.fill(0, at + given, at + block);
  }
}

// Output tensors are views into the tick's result buffer where the rows carried are contiguous (no batch
// axis, full batch, or batch axis 0); each tenant's view covers only its own range, so tenants never see
// each other's bytes. A partial batch on an inner axis is compacted into a new array.
function readOutput(r: TickRead, result: ArrayBuffer): Tensor {
  const { io, outer, maxRows, rowBytes, hostOffset: at } = r.slot;
  const elem = byteSize(io.dtype);
  if (io.batchAxis === null || r.rows === maxRows) return makeTensor(io.dtype, io.shape, viewArray(io.dtype, result, at, io.bytes / elem));
  const shape = [...io.shape];
  shape[io.batchAxis] = r.rows;
  const given = r.rows * rowBytes;
  if (outer === 1) return makeTensor(io.dtype, shape, viewArray(io.dtype, result, at, given / elem));
  const arr = allocArray(io.dtype, (outer * given) / elem);
  const dst = new Uint8Array(arr.buffer);
  const src = new Uint8Array(result, at, io.bytes);
  for (let o = 0; o < outer; o++) dst.set(src.subarray(o * maxRows * rowBytes, o * maxRows * rowBytes + given), o * given);
  return makeTensor(io.dtype, shape, arr);
}

// Writes ticks for one plan's tenants into its staging sets and reads their results. Built once per loaded plan.
export class TickCodec {
  private readonly tables: readonly TenantTable[];
  private readonly byId: ReadonlyMap<string, TenantTable>;
  readonly inBytes: number;
  readonly outBytes: number;

  constructor(tenants: readonly PlannedTenant[], layout: StagingLayout) {
    this.inBytes = layout.inBytes;
    this.outBytes = layout.outBytes;
    this.tables = tenants.map((tenant, index) => ({
      tenant,
      index,
      inputs: tenant.inputs.map((io) => slotOf(io, hostOffset(layout.inSpans, io.ref.offset, io.bytes, `tenant '${tenant.id}' input '${io.name}'`))),
      outputs: tenant.outputs.map((io) => slotOf(io, hostOffset(layout.outSpans, io.ref.offset, io.bytes, `tenant '${tenant.id}' output '${io.name}'`))),
    }));
    this.byId = new Map(this.tables.map((t) => [t.tenant.id, t]));
  }

  // Validates `inputs` (EVAL errors name the tenant, the input and what is wrong); touches no buffer.
  check(inputs: TickInputs): CheckedTick {
    if (inputs === null || typeof inputs !== 'object') fail('EVAL', 'runTick expects an object of tenant id → { input name → Tensor }');
    const entries: { table: TenantTable; given: Readonly<Record<string, Tensor>>; rows: number | null }[] = [];
    for (const id of Object.keys(inputs)) {
      const table = this.byId.get(id);
      if (table === undefined) fail('EVAL', `unknown tenant '${id}' (${this.describeTenants()})`);
      const given = inputs[id]!;
      entries.push({ table, given, rows: checkTenantTick(table.tenant, given) });
    }
    return { entries };
  }

  // Lays a checked tick's inputs into `data` (a staging set, or a buffer of inBytes copied into one later);
  // `active` and `rowCounts` are the set's mask and rows, all zero on entry. A tenant whose inputs have no batch
  // axis counts maxBatch rows.
  write(tick: CheckedTick, data: Uint8Array, active: Uint8Array, rowCounts: Int32Array): WrittenTick {
    const reads: TickRead[] = [];
    for (const { table, given, rows } of tick.entries) {
      for (const slot of table.inputs) writeInput(data, slot, given[slot.io.name]!, slot.io.batchAxis === null ? 0 : rows!);
      active[table.index] = 1;
      rowCounts[table.index] = rows ?? table.tenant.maxBatch;
      for (const slot of table.outputs) reads.push({ table, slot, rows: rows ?? table.tenant.maxBatch });
    }
    return { active, rows: rowCounts, reads };
  }

  // Output tensors per tenant from the tick's result buffer (see readOutput on sharing).
  unpack(tick: WrittenTick, result: ArrayBuffer): TickOutputs {
    const out: TickOutputs = {};
    for (const r of tick.reads) (out[r.table.tenant.id] ??= {})[r.slot.io.name] = readOutput(r, result);
    return out;
  }

  // The mask and rows back to all zero, touching only the tick's tenants.
  clear(tick: WrittenTick): void {
    for (const r of tick.reads) {
      tick.active[r.table.index] = 0;
      tick.rows[r.table.index] = 0;
    }
  }

  private describeTenants(): string {
    const ids = this.tables.map((x) => x.tenant.id);
    return ids.length <= 20 ? `the plan has: ${ids.join(', ')}` : `the plan has ${ids.length} tenants: ${ids.slice(0, 10).join(', ')}, …`;
  }
}
