// The quick accept of runTick's input check: every plan tenant's input table in flat arrays (built once per
// plan), so a well-formed request is accepted touching only its own tensors and these arrays, not the plan's
// tenant objects. It accepts a subset of what the shared check (ir/contract/tenant-io.ts validateTenantInputs,
// without checkFinite) accepts, with the same row count: anything it does not accept goes to the shared check,
// which gives the error (or accepts), so errors read exactly as before.
import { TYPED_ARRAY_NAMES } from '../ir/contract/tenant-io.js';
import type { PlannedTenant } from '../ir/contract/plan.js';

// What quickRows returns for a request it leaves to the shared check.
export const ASK_SHARED_CHECK = -1;

export class InputTables {
  private readonly first: Int32Array; // tenant t's inputs are slots [first[t], first[t + 1])
  private readonly names: readonly string[]; // per slot
  private readonly dtypes: readonly string[];
  private readonly arrays: readonly string[]; // the typed array's name ('' : the quick path never accepts the slot)
  private readonly axis: Int32Array; // batch axis, -1 for none
  private readonly dimFirst: Int32Array; // slot j's dims are dims[dimFirst[j], dimFirst[j + 1])
  private readonly dims: Float64Array;

  constructor(tenants: readonly PlannedTenant[]) {
    const first: number[] = [];
    const names: string[] = [];
    const dtypes: string[] = [];
    const arrays: string[] = [];
    const axis: number[] = [];
    const dimFirst: number[] = [];
    const dims: number[] = [];
    for (const t of tenants) {
      first.push(names.length);
      for (const io of t.inputs) {
        names.push(io.name);
        dtypes.push(io.dtype);
        arrays.push(TYPED_ARRAY_NAMES[io.dtype] ?? '');
        axis.push(io.batchAxis ?? -1);
        dimFirst.push(dims.length);
        dims.push(...io.shape);
      }
    }
    first.push(names.length);
    dimFirst.push(dims.length);
    this.first = Int32Array.from(first);
    this.names = names;
    this.dtypes = dtypes;
    this.arrays = arrays;
    this.axis = Int32Array.from(axis);
    this.dimFirst = Int32Array.from(dimFirst);
    this.dims = Float64Array.from(dims);
  }

  // Tenant t's request rows (the shared check's row count; 0 where no input has a batch axis) when `given`
  // is a request the quick path accepts, else ASK_SHARED_CHECK.
  quickRows(t: number, given: unknown): number {
    if (given === null || typeof given !== 'object') return ASK_SHARED_CHECK;
    const g = given as Record<string, unknown>;
    const lo = this.first[t]!;
    const hi = this.first[t + 1]!;
    let keys = 0;
    for (const _ in g) keys++; // inherited keys too: more keys than inputs is left to the shared check
    if (keys !== hi - lo) return ASK_SHARED_CHECK;
    let rows = 0;
    for (let j = lo; j < hi; j++) {
      const x = g[this.names[j]!] as { dtype?: unknown; shape?: unknown; data?: unknown } | null | undefined;
      if (x === undefined || x === null || typeof x !== 'object') return ASK_SHARED_CHECK;
      if (x.dtype !== this.dtypes[j]) return ASK_SHARED_CHECK;
      const data = x.data;
      if (!ArrayBuffer.isView(data) || (data as unknown as Record<symbol, unknown>)[Symbol.toStringTag] !== this.arrays[j]) return ASK_SHARED_CHECK;
      const shape = x.shape;
      const d0 = this.dimFirst[j]!;
      const rank = this.dimFirst[j + 1]! - d0;
      if (!Array.isArray(shape) || shape.length !== rank) return ASK_SHARED_CHECK;
      const axis = this.axis[j]!;
      let n = 1;
      for (let i = 0; i < rank; i++) {
        const d = shape[i] as number;
        const want = this.dims[d0 + i]!;
        if (i === axis ? !(Number.isInteger(d) && d >= 1 && d <= want) : d !== want) return ASK_SHARED_CHECK;
        n *= d;
      }
      if ((data as unknown as ArrayLike<unknown>).length !== n) return ASK_SHARED_CHECK;
      if (axis < 0) continue;
      const r = shape[axis] as number;
      if (rows === 0) rows = r;
      else if (r !== rows) return ASK_SHARED_CHECK;
    }
    return rows;
  }
}
