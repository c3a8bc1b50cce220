// The memory plan: byte offsets for every buffer. Weights are packed 256-byte aligned (a strided GEMM's
// operands back to back so its strides are uniform); activations share one arena by liveness over stages
// (an item is live from the first stage that touches it to the last, inclusive, so two launches of one
// stage never share bytes); io holds each tenant's input and output slots.
import type { ArenaId } from '../../ir/contract/launch.js';
import { type Buf, alignUp } from './steps.js';

export interface Placement {
  readonly arena: ArenaId;
  readonly offset: number;
}

// Several act buffers that must sit back to back (a GEMM launch's outputs), or one alone.
export interface ActItem {
  readonly bufs: readonly number[];
  readonly first: number; // stage
  readonly last: number;
}

export interface ActPlan {
  readonly offsets: ReadonlyMap<number, number>;
  readonly size: number;
  readonly withoutReuse: number;
}

// Greedy best-fit by size: each item (largest first) takes the lowest offset where it overlaps no placed
// item that is live at the same time.
export function planActivations(bufs: readonly Buf[], items: readonly ActItem[]): ActPlan {
  const sizeOf = (it: ActItem): number => it.bufs.reduce((a, b) => a + alignUp(bufs[b]!.bytes), 0);
  const order = items.map((it, i) => ({ it, i, size: sizeOf(it) }));
  order.sort((x, y) => y.size - x.size || x.it.first - y.it.first || x.i - y.i);
  const placed: Array<{ off: number; size: number; first: number; last: number }> = [];
  const offsets = new Map<number, number>();
  let size = 0;
  let withoutReuse = 0;
  for (const { it, size: sz } of order) {
    withoutReuse += sz;
    const conflicts = placed.filter((p) => p.first <= it.last && it.first <= p.last).sort((a, b) => a.off - b.off);
    let off = 0;
    for (const c of conflicts) {
      if (off + sz <= c.off) break;
      off = Math.max(off, c.off + c.size);
    }
    placed.push({ off, size: sz, first: it.first, last: it.last });
    size = Math.max(size, off + sz);
    let o = off;
    for (const b of it.bufs) {
      offsets.set(b, o);
      o += alignUp(bufs[b]!.bytes);
    }
  }
  return { offsets, size, withoutReuse };
}

// Weights in the given order (strided groups first, as the caller lists them), each 256-byte aligned.
export function planWeights(bufs: readonly Buf[], order: readonly number[]): { offsets: Map<number, number>; size: number } {
  const offsets = new Map<number, number>();
  let off = 0;
  for (const b of order) {
    if (offsets.has(b)) continue;
    offsets.set(b, off);
    off += alignUp(bufs[b]!.bytes);
  }
  return { offsets, size: off };
}

// io: per tenant in order, its inputs then its outputs (so identical tenants sit at a uniform stride).
export function planIo(
  bufs: readonly Buf[],
  perTenant: ReadonlyArray<{ inputs: readonly number[]; outputs: readonly number[] }>,
): { offsets: Map<number, number>; size: number } {
  const offsets = new Map<number, number>();
  let off = 0;
  for (const t of perTenant) {
    for (const b of [...t.inputs, ...t.outputs]) {
      offsets.set(b, off);
      off += alignUp(bufs[b]!.bytes);
    }
  }
  return { offsets, size: off };
}
