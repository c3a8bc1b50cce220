// Requests ⇄ a tenant's slice of a tick: the requests' rows are concatenated along each tensor's batch axis
// in queue order, and the tick's outputs are cut back into one piece per request, in the same order.
import { allocArray, byteSize, viewArray } from '../../ir/dtype.js';
import { type Tensor, makeTensor, tensorBytes } from '../../ir/tensor.js';

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function geometry(t: Tensor, axis: number): { outer: number; rowBytes: number } {
  return { outer: numel(t.shape.slice(0, axis)), rowBytes: numel(t.shape.slice(axis + 1)) * byteSize(t.dtype) };
}

// Where concatRows may write: `byteOffset` into `buffer` (aligned to the dtype), room for the result.
export interface RowsTarget {
  readonly buffer: ArrayBuffer;
  readonly byteOffset: number;
}

// `parts` agree on dtype and on every dim but `axis` (the caller validated them against one TenantIO).
// into: the result is written there (the scheduler lays a tick's tenants out in one buffer), else allocated.
export function concatRows(parts: readonly Tensor[], axis: number, into?: RowsTarget): Tensor {
  if (parts.length === 1) return parts[0]!;
  const first = parts[0]!;
  const rows = parts.reduce((a, p) => a + p.shape[axis]!, 0);
  const shape = first.shape.map((d, i) => (i === axis ? rows : d));
  const { outer, rowBytes } = geometry(first, axis);
  const out = into ? viewArray(first.dtype, into.buffer, into.byteOffset, numel(shape)) : allocArray(first.dtype, numel(shape));
  const dst = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  const sliceBytes = rows * rowBytes; // one outer index's run of rows in the result
  let at = 0; // rows placed so far
  for (const p of parts) {
    const src = tensorBytes(p);
    const n = p.shape[axis]! * rowBytes;
    for (let o = 0; o < outer; o++) dst.set(src.subarray(o * n, (o + 1) * n), o * sliceBytes + at * rowBytes);
    at += p.shape[axis]!;
  }
  return makeTensor(first.dtype, shape, out);
}

// The inverse of concatRows: `rows[i]` rows for piece i, in order; their sum is t.shape[axis]. Where each
// piece is one run of t's memory (nothing before the batch axis but 1s) the pieces are views of t, as the one
// piece of a whole tensor is: like t, they are read before the next tick (the HTTP and gRPC encoders read them
// at once; the intake pool copies them into its message).
export function splitRows(t: Tensor, axis: number, rows: readonly number[]): Tensor[] {
  if (rows.length === 1 && rows[0] === t.shape[axis]) return [t];
  const { outer, rowBytes } = geometry(t, axis);
  if (outer === 1) {
    const rowElems = rowBytes / byteSize(t.dtype);
    let first = 0;
    return rows.map((r) => {
      const shape = t.shape.map((d, i) => (i === axis ? r : d));
      const piece = { dtype: t.dtype, shape, data: t.data.subarray(first * rowElems, (first + r) * rowElems) as typeof t.data };
      first += r;
      return piece;
    });
  }
  const src = tensorBytes(t);
  const sliceBytes = t.shape[axis]! * rowBytes;
  let at = 0;
  return rows.map((r) => {
    const shape = t.shape.map((d, i) => (i === axis ? r : d));
    const out = allocArray(t.dtype, numel(shape));
    const dst = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    const n = r * rowBytes;
    for (let o = 0; o < outer; o++) dst.set(src.subarray(o * sliceBytes + at * rowBytes, o * sliceBytes + (at + r) * rowBytes), o * n);
    at += r;
    return makeTensor(t.dtype, shape, out);
  });
}
