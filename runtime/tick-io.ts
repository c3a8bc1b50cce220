// A tick's tensors ⇄ the io arena: validates each tenant's inputs against its TenantIO table (the shared
// check, ir/contract/tenant-io.ts), lays them into their slots (rows along batchAxis, zero padding up to
// maxBatch), and cuts outputs back to the rows the tick carried. Pure TypeScript; the native side only
// copies the bytes.
// Everything per tenant that does not depend on the request (slot geometry, where its bytes go
// in the packed buffer) is computed once per plan by TickCodec, so a tick costs a few typed-array writes
// per tenant and a constant number of N-API calls (addon runTickPacked).
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
  readonly dataOffset: number; // inputs: where the slot's bytes go in the packed buffer
}

interface TenantTable {
  readonly tenant: PlannedTenant;
  readonly index: number;
  readonly inputs: readonly Slot[];
  readonly outputs: readonly Slot[];
}

// One output the tick reads back: which, how many rows, where in the result buffer.
interface TickRead {
  readonly table: TenantTable;
  readonly slot: Slot;
  readonly rows: number;
  readonly resultOffset: number;
}

// What runTickPacked takes (native-addon.ts), plus what unpack needs.
export interface PackedTick {
  readonly data: Uint8Array; // the inputs' bytes; owned by the codec's pool until release()
  readonly inputs: Float64Array; // [ioOffset, dataOffset, bytes] per input
  readonly outputs: Float64Array; // [ioOffset, bytes, resultOffset] per output
  readonly active: Uint8Array; // one byte per plan tenant
  readonly reads: readonly TickRead[]; // one per output row of the table
}

// Outputs start 8-byte aligned in the result buffer, so every dtype can be viewed in place.
const RESULT_ALIGN = 8;
// Free input buffers kept per plan: enough for a few ticks queued behind the one running.
const POOL_LIMIT = 4;

function slotOf(io: TenantIO, dataOffset: number): Slot {
  const axis = io.batchAxis ?? 0;
  return {
    io,
    outer: numel(io.shape.slice(0, axis)),
    maxRows: io.shape.length === 0 || io.batchAxis === null ? 1 : io.shape[axis]!,
    rowBytes: numel(io.shape.slice(axis + 1)) * byteSize(io.dtype),
    dataOffset,
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
    data.set(src, slot.dataOffset);
    return;
  }
  const given = rows * slot.rowBytes;
  const block = slot.maxRows * slot.rowBytes;
  for (let o = 0; o < slot.outer; o++) {
    const at = slot.dataOffset + o * block;
    data.set(src.subarray(o * given, (o + 1) * given), at);
    data.fill(0, at + given, at + block);
  }
}

// Output tensors are views into the tick's result buffer where the rows carried are contiguous (no batch
// axis, full batch, or batch axis 0); each tenant's view covers only its own range, so tenants never see
// each other's bytes. A partial batch on an inner axis is compacted into a new array.
function readOutput(r: TickRead, result: ArrayBuffer): Tensor {
  const { io, outer, maxRows, rowBytes } = r.slot;
  const elem = byteSize(io.dtype);
  if (io.batchAxis === null || r.rows === maxRows) return makeTensor(io.dtype, io.shape, viewArray(io.dtype, result, r.resultOffset, io.bytes / elem));
  const shape = [...io.shape];
  shape[io.batchAxis] = r.rows;
  const given = r.rows * rowBytes;
  if (outer === 1) return makeTensor(io.dtype, shape, viewArray(io.dtype, result, r.resultOffset, given / elem));
  const arr = allocArray(io.dtype, (outer * given) / elem);
  const dst = new Uint8Array(arr.buffer);
  const src = new Uint8Array(result, r.resultOffset, io.bytes);
  for (let o = 0; o < outer; o++) dst.set(src.subarray(o * maxRows * rowBytes, o * maxRows * rowBytes + given), o * given);
  return makeTensor(io.dtype, shape, arr);
}

// Packs ticks for one plan's tenants and unpacks their results. Built once per loaded plan.
export class TickCodec {
  private readonly tables: readonly TenantTable[];
  private readonly byId: ReadonlyMap<string, TenantTable>;
  private readonly dataBytes: number; // every tenant's input slots, back to back
  private readonly pool: Uint8Array[] = [];

  constructor(tenants: readonly PlannedTenant[]) {
    let dataOffset = 0;
    this.tables = tenants.map((tenant, index) => ({
      tenant,
      index,
      inputs: tenant.inputs.map((io) => {
        const s = slotOf(io, dataOffset);
        dataOffset += io.bytes;
        return s;
      }),
      outputs: tenant.outputs.map((io) => slotOf(io, 0)),
    }));
    this.byId = new Map(this.tables.map((t) => [t.tenant.id, t]));
    this.dataBytes = dataOffset;
  }

  // Validates `inputs` (EVAL errors name the tenant, the input and what is wrong) and lays them out.
  pack(inputs: TickInputs): PackedTick {
    if (inputs === null || typeof inputs !== 'object') fail('EVAL', 'runTick expects an object of tenant id → { input name → Tensor }');
    const ids = Object.keys(inputs);
    let nIn = 0;
    let nOut = 0;
    for (const id of ids) {
      const t = this.byId.get(id);
      if (t === undefined) fail('EVAL', `unknown tenant '${id}' (the plan has: ${this.tables.map((x) => x.tenant.id).join(', ')})`);
      nIn += t.inputs.length;
      nOut += t.outputs.length;
    }
    const data = this.pool.pop() ?? new Uint8Array(this.dataBytes);
    try {
      return this.fill(inputs, ids, data, new Float64Array(3 * nIn), new Float64Array(3 * nOut));
    } catch (e) {
      this.pool.push(data);
      throw e;
    }
  }

  // Output tensors per tenant from the addon's result buffer (see readOutput on sharing).
  unpack(packed: PackedTick, result: ArrayBuffer): TickOutputs {
    const out: TickOutputs = {};
    for (const r of packed.reads) (out[r.table.tenant.id] ??= {})[r.slot.io.name] = readOutput(r, result);
    return out;
  }

  // The tick's input buffer may be reused once the addon is done with it (its promise settled).
  release(packed: PackedTick): void {
    if (this.pool.length < POOL_LIMIT && !this.pool.includes(packed.data)) this.pool.push(packed.data);
  }

  private fill(inputs: TickInputs, ids: readonly string[], data: Uint8Array, inTable: Float64Array, outTable: Float64Array): PackedTick {
    const active = new Uint8Array(this.tables.length);
    const reads: TickRead[] = [];
    let k = 0;
    let resultOffset = 0;
    for (const id of ids) {
      const table = this.byId.get(id)!;
      const { tenant } = table;
      const given = inputs[id]!;
      const rows = checkTenantTick(tenant, given);
      for (const slot of table.inputs) {
        const { io } = slot;
        writeInput(data, slot, given[io.name]!, io.batchAxis === null ? 0 : rows!);
        inTable[k++] = io.ref.offset;
        inTable[k++] = slot.dataOffset;
        inTable[k++] = io.bytes;
      }
      active[table.index] = 1;
      for (const slot of table.outputs) {
        const j = reads.length * 3;
        outTable[j] = slot.io.ref.offset;
        outTable[j + 1] = slot.io.bytes;
        outTable[j + 2] = resultOffset;
        reads.push({ table, slot, rows: rows ?? tenant.maxBatch, resultOffset });
        resultOffset += Math.ceil(slot.io.bytes / RESULT_ALIGN) * RESULT_ALIGN;
      }
    }
    return { data, inputs: inTable, outputs: outTable, active, reads };
  }
}
