// A tick's tensors ⇄ the plan's staging buffers: validates each tenant's inputs against its TenantIO table
// (the shared check, ir/contract/tenant-io.ts), writes them straight into a staging set at the layout the native
// side gave (rows along batchAxis, zero padding up to maxBatch), and reads outputs in place from the tick's
// result buffer, cut back to the rows the tick carried. Pure TypeScript; the native side copies the inputs to
// the device, and the outputs back into either a block of the whole output layout or (the runtime's path) a
// compact result holding only the live tenants' output bytes (native/src/tick_staging.h compact_copy).
// Everything per tenant that does not depend on the request (slot geometry, where its bytes sit in the
// staging and result layouts, typed views of its input slots, the shapes it returns) is computed once per plan
// by TickCodec, so a tick costs the check (the quick accept of runtime/tick-check.ts over flat per-plan tables; the
// shared check only for a request it leaves) and a few typed-array writes per live tenant and allocates only its
// outputs and a few small arrays, whatever the plan's tenant count.
import { type AnyTypedArray, type DType, allocArray, byteSize, viewArray } from '../ir/dtype.js';
import { LoomError, fail } from '../ir/errors.js';
import { numel } from '../ir/shape.js';
import type { Tensor } from '../ir/tensor.js';
import type { PlannedTenant, TenantIO } from '../ir/contract/plan.js';
import { TenantIOError, validateTenantInputs } from '../ir/contract/tenant-io.js';
import { ASK_SHARED_CHECK, InputTables } from './tick-check.js';

export type TickInputs = Readonly<Record<string, Readonly<Record<string, Tensor>>>>;
export type TickOutputs = Record<string, Record<string, Tensor>>;

// One io slot's geometry: outer = product of dims before the batch axis, rowBytes = bytes of one row
// slice after it; maxRows = 1 for a slot without a batch axis.
interface Slot {
  readonly io: TenantIO;
  readonly name: string;
  readonly dtype: DType;
  readonly batchAxis: number | null;
  readonly outer: number;
  readonly maxRows: number;
  readonly rowBytes: number;
  readonly hostOffset: number; // where the slot's bytes sit in a staging set (inputs) or a tick's result (outputs)
  readonly elems: number; // elements at maxRows
}

interface InSlot extends Slot {
  readonly index: number; // among the plan's input slots (SlotViews)
}

interface OutSlot extends Slot {
  readonly compactAt: number; // where the slot sits in its tenant's part of a compact result
  readonly fullShape: readonly number[]; // frozen, shared by every tick's full-batch output of this slot
  readonly rowShapes: (readonly number[] | undefined)[]; // frozen shapes at r rows (index r), made on first use
}

// The native side's staging layout (runtime/native-addon.ts NativeStaging): spans of [ioOffset, bytes, hostOffset].
export interface StagingLayout {
  readonly inSpans: Float64Array;
  readonly outSpans: Float64Array;
  readonly inBytes: number;
  readonly outBytes: number;
}

// A validated tick, in the order its tenants were given: plan tenant indices, each one's rows (its inputs'
// rows on the batch axis, maxBatch where no input has one) and its tensors. Ready to be written.
export interface CheckedTick {
  readonly count: number;
  readonly tenants: readonly number[];
  readonly rows: readonly number[];
  readonly given: readonly Readonly<Record<string, Tensor>>[];
}

// A tick written into a staging set: its mask (one byte per plan tenant), each live tenant's rows (the native side
// runs the tick's row-scaled GEMMs at the most rows of any live tenant, rounded up to a power of two), and its
// tenants and their rows in call order (the outputs to read back; the tick's own arrays, so they outlive the set's
// mask and rows, which the next tick reuses); `live` holds the same tenants for submitTick (a compact result).
export interface WrittenTick {
  readonly active: Uint8Array;
  readonly rows: Int32Array;
  readonly count: number;
  readonly tenants: readonly number[];
  readonly tenantRows: readonly number[];
  readonly live: Int32Array;
}

// One typed view per plan input slot over a staging set, of the slot's dtype (TickCodec.slotViews): a full-batch
// input is one same-type set() into it, no byte view of the caller's array made per tick. Null where the slot's
// offset does not fit its element size (the bytes are copied instead).
export type SlotViews = readonly (AnyTypedArray | null)[];

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
    name: io.name,
    dtype: io.dtype,
    batchAxis: io.batchAxis,
    outer: numel(io.shape.slice(0, axis)),
    maxRows: io.shape.length === 0 || io.batchAxis === null ? 1 : io.shape[axis]!,
    rowBytes: numel(io.shape.slice(axis + 1)) * byteSize(io.dtype),
    hostOffset,
    elems: io.bytes / byteSize(io.dtype),
  };
}

// The request's row count for one tenant (null: no input has a batch axis), or an EVAL error from the
// shared tenant-I/O check, with that check's error (field path, code) as its cause.
function checkTenantTick(tenant: PlannedTenant, given: Readonly<Record<string, Tensor>>): number | null {
  if (given === null || typeof given !== 'object')
    fail('EVAL', `tenant '${tenant.id}': expected an object of input name → Tensor, got ${given === null ? 'null' : typeof given}`);
  try {
    return validateTenantInputs(tenant, given);
  } catch (e) {
    if (e instanceof TenantIOError) throw new LoomError('EVAL', e.message, { cause: e });
    // the shared check reads a null tensor's fields (a TypeError): name the input instead
    const gone = tenant.inputs.find((io) => given[io.name] === null);
    if (gone !== undefined) fail('EVAL', `tenant '${tenant.id}' input '${gone.name}': expected a tensor { dtype, shape, data }, got null`);
    throw e;
  }
}

const align8 = (n: number): number => Math.ceil(n / 8) * 8;

function bytesOf(a: AnyTypedArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

// Rows [0, rows) of each outer block go to the front of the slot's block; the rest of the block is zeroed
// (the buffer is reused from earlier ticks). A full batch is one copy, through the slot's typed view when there is one.
function writeInput(data: Uint8Array, view: AnyTypedArray | null, slot: InSlot, src: AnyTypedArray, rows: number): void {
  if (slot.batchAxis === null || rows === slot.maxRows) {
    if (view !== null) (view as Float32Array).set(src as Float32Array);
    else data.set(bytesOf(src), slot.hostOffset);
    return;
  }
  const bytes = bytesOf(src);
  const given = rows * slot.rowBytes;
  const block = slot.maxRows * slot.rowBytes;
  for (let o = 0; o < slot.outer; o++) {
    const at = slot.hostOffset + o * block;
    data.set(bytes.subarray(o * given, (o + 1) * given), at);
    data.fill(0, at + given, at + block);
  }
}

// Output tensors are views into the tick's result buffer (the slot's bytes at `at`) where the rows carried are
// contiguous (no batch axis, full batch, or batch axis 0); each tenant's view covers only its own range, so tenants
// never see each other's bytes. A partial batch on an inner axis is compacted into a new array. Shapes are frozen
// and shared between ticks (a Tensor's shape is readonly).
function readOutput(s: OutSlot, rows: number, result: ArrayBuffer, at: number): Tensor {
  if (s.batchAxis === null || rows === s.maxRows) return { dtype: s.dtype, shape: s.fullShape, data: viewArray(s.dtype, result, at, s.elems) };
  const shape = (s.rowShapes[rows] ??= Object.freeze(s.fullShape.map((d, i) => (i === s.batchAxis ? rows : d))));
  const elem = byteSize(s.dtype);
  const given = rows * s.rowBytes;
  if (s.outer === 1) return { dtype: s.dtype, shape, data: viewArray(s.dtype, result, at, given / elem) };
  const arr = allocArray(s.dtype, (s.outer * given) / elem);
  const dst = new Uint8Array(arr.buffer);
  const src = new Uint8Array(result, at, s.io.bytes);
  for (let o = 0; o < s.outer; o++) dst.set(src.subarray(o * s.maxRows * s.rowBytes, o * s.maxRows * s.rowBytes + given), o * given);
  return { dtype: s.dtype, shape, data: arr };
}

// Writes ticks for one plan's tenants into its staging sets and reads their results. Built once per loaded plan.
export class TickCodec {
  private readonly tenants: readonly PlannedTenant[];
  private readonly ids: readonly string[];
  private readonly byId: ReadonlyMap<string, number>;
  private readonly inputTables: InputTables; // the check's quick accept
  private readonly inputs: readonly (readonly InSlot[])[]; // per plan tenant
  private readonly outputs: readonly (readonly OutSlot[])[];
  private readonly inSlots: readonly InSlot[]; // every tenant's, in plan order (InSlot.index)
  // the same slots flat, for write: tenant t's are [inFirst[t], inFirst[t + 1]); inRows: maxRows, 0 without a batch axis
  private readonly inFirst: Int32Array;
  private readonly inNames: readonly string[];
  private readonly inRows: Int32Array;
  private readonly compactBytes: Float64Array; // per plan tenant: its part of a compact result (its slots, each 8-aligned)
  readonly inBytes: number;
  readonly outBytes: number;

  constructor(tenants: readonly PlannedTenant[], layout: StagingLayout) {
    this.inBytes = layout.inBytes;
    this.outBytes = layout.outBytes;
    this.tenants = tenants;
    this.ids = tenants.map((t) => t.id);
    this.byId = new Map(tenants.map((t, i) => [t.id, i]));
    this.inputTables = new InputTables(tenants);
    const inSlots: InSlot[] = [];
    this.inputs = tenants.map((tenant) =>
      tenant.inputs.map((io) => {
        const s: InSlot = {
          ...slotOf(io, hostOffset(layout.inSpans, io.ref.offset, io.bytes, `tenant '${tenant.id}' input '${io.name}'`)),
          index: inSlots.length,
        };
        inSlots.push(s);
        return s;
      }),
    );
    this.inSlots = inSlots;
    this.inFirst = Int32Array.from([0, ...this.inputs.map((slots) => slots.length)]);
    for (let t = 0; t < tenants.length; t++) this.inFirst[t + 1]! += this.inFirst[t]!;
    this.inNames = inSlots.map((s) => s.name);
    this.inRows = Int32Array.from(inSlots, (s) => (s.batchAxis === null ? 0 : s.maxRows));
    this.compactBytes = new Float64Array(tenants.length);
    this.outputs = tenants.map((tenant, t) =>
      tenant.outputs.map((io) => {
        const compactAt = this.compactBytes[t]!;
        this.compactBytes[t] = compactAt + align8(io.bytes);
        return {
          ...slotOf(io, hostOffset(layout.outSpans, io.ref.offset, io.bytes, `tenant '${tenant.id}' output '${io.name}'`)),
          compactAt,
          fullShape: Object.freeze([...io.shape]),
          rowShapes: [],
        };
      }),
    );
  }

  // Typed views of every input slot over `data` (a staging set), made once per set by the caller and passed to write.
  slotViews(data: Uint8Array): SlotViews {
    return this.inSlots.map((s) => {
      const at = data.byteOffset + s.hostOffset;
      return at % byteSize(s.dtype) === 0 ? viewArray(s.dtype, data.buffer, at, s.elems) : null;
    });
  }

  // Validates `inputs` (EVAL errors name the tenant, the input and what is wrong); touches no buffer.
  check(inputs: TickInputs): CheckedTick {
    if (inputs === null || typeof inputs !== 'object') fail('EVAL', 'runTick expects an object of tenant id → { input name → Tensor }');
    const keys = Object.keys(inputs);
    const tenants: number[] = []; // plain arrays: a small typed array costs more to allocate than these to fill
    const rows: number[] = [];
    const given: Readonly<Record<string, Tensor>>[] = [];
    for (let i = 0; i < keys.length; i++) {
      const id = keys[i]!;
      const t = this.byId.get(id);
      if (t === undefined) fail('EVAL', `unknown tenant '${id}' (${this.describeTenants()})`);
      const g = inputs[id]!;
      let r = this.inputTables.quickRows(t, g);
      if (r === ASK_SHARED_CHECK) r = checkTenantTick(this.tenants[t]!, g) ?? 0;
      tenants.push(t);
      rows.push(r === 0 ? this.tenants[t]!.maxBatch : r);
      given.push(g);
    }
    return { count: keys.length, tenants, rows, given };
  }

  // The tick with its tensors' bytes copied (a tick that waits for a staging set: the caller may reuse its tensors
  // as soon as runTick returns): proportional to the tick's bytes, not the plan's.
  detach(tick: CheckedTick): CheckedTick {
    const given = tick.given.map((g, i) => {
      const rec: Record<string, Tensor> = {};
      for (const s of this.inputs[tick.tenants[i]!]!) {
        const x = g[s.name]!;
        rec[s.name] = { dtype: x.dtype, shape: [...x.shape], data: x.data.slice() };
      }
      return rec;
    });
    return { count: tick.count, tenants: tick.tenants, rows: tick.rows, given };
  }

  // Lays a checked tick's inputs into `data` (a staging set with its slotViews, or a buffer of inBytes copied into
  // one later, views null); `active` and `rowCounts` are the set's mask and rows, all zero on entry.
  write(tick: CheckedTick, data: Uint8Array, active: Uint8Array, rowCounts: Int32Array, views: SlotViews | null = null): WrittenTick {
    const live = new Int32Array(tick.count);
    for (let i = 0; i < tick.count; i++) {
      const t = tick.tenants[i]!;
      const rows = tick.rows[i]!;
      const given = tick.given[i]!;
      for (let j = this.inFirst[t]!; j < this.inFirst[t + 1]!; j++) {
        const src = given[this.inNames[j]!]!.data;
        const view = views === null ? null : views[j]!;
        const whole = this.inRows[j]!;
        // a full slot through its typed view: one set(), no slot object read
        if (view !== null && (whole === 0 || rows === whole)) (view as Float32Array).set(src as Float32Array);
        else writeInput(data, view, this.inSlots[j]!, src, rows);
      }
      active[t] = 1;
      rowCounts[t] = rows;
      live[i] = t;
    }
    return { active, rows: rowCounts, count: tick.count, tenants: tick.tenants, tenantRows: tick.rows, live };
  }

  // Output tensors per tenant from the tick's result buffer (see readOutput on sharing): a block of the whole
  // output layout, or, `compact`, submitTick's compact result for tick.live.
  unpack(tick: WrittenTick, result: ArrayBuffer, compact = false): TickOutputs {
    const out: TickOutputs = {};
    let base = 0; // the tenant's part of a compact result
    for (let i = 0; i < tick.count; i++) {
      const t = tick.tenants[i]!;
      const rows = tick.tenantRows[i]!;
      const slots = this.outputs[t]!;
      if (slots.length === 0) continue;
      const rec: Record<string, Tensor> = {};
      for (let k = 0; k < slots.length; k++) {
        const s = slots[k]!;
        rec[s.name] = readOutput(s, rows, result, compact ? base + s.compactAt : s.hostOffset);
      }
      if (compact) base += this.compactBytes[t]!;
      out[this.ids[t]!] = rec;
    }
    return out;
  }

  // The mask and rows back to all zero, touching only the tick's tenants.
  clear(tick: WrittenTick): void {
    for (let i = 0; i < tick.count; i++) {
      const t = tick.tenants[i]!;
      tick.active[t] = 0;
      tick.rows[t] = 0;
    }
  }

  private describeTenants(): string {
    const ids = this.ids;
    return ids.length <= 20 ? `the plan has: ${ids.join(', ')}` : `the plan has ${ids.length} tenants: ${ids.slice(0, 10).join(', ')}, …`;
  }
}
