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
// item that is live at the same time. Placed items are listed per live stage, so finding an item's conflicts
// reads only the stages it spans (not every placed item: that was quadratic on long graphs).
export function planActivations(bufs: readonly Buf[], items: readonly ActItem[]): ActPlan {
  const sizeOf = (it: ActItem): number => it.bufs.reduce((a, b) => a + alignUp(bufs[b]!.bytes), 0);
  const order = items.map((it, i) => ({ it, i, size: sizeOf(it) }));
  order.sort((x, y) => y.size - x.size || x.it.first - y.it.first || x.i - y.i);
  const placed: Array<{ off: number; size: number }> = [];
  const liveAt: number[][] = []; // per stage: indexes into placed, in placement order
  const seen: number[] = []; // per placed item: the last query that listed it
  const offsets = new Map<number, number>();
  let size = 0;
  let withoutReuse = 0;
  for (let q = 0; q < order.length; q++) {
    const { it, size: sz } = order[q]!;
    withoutReuse += sz;
    const hits: number[] = [];
    for (let st = it.first; st <= it.last; st++) {
      for (const p of liveAt[st] ?? []) {
        if (seen[p] === q) continue;
        seen[p] = q;
        hits.push(p);
      }
    }
    // by offset, ties in placement order (as a stable sort of the placed list would leave them)
    hits.sort((a, b) => placed[a]!.off - placed[b]!.off || a - b);
    let off = 0;
    for (const h of hits) {
      const c = placed[h]!;
      if (off + sz <= c.off) break;
      off = Math.max(off, c.off + c.size);
    }
    const id = placed.length;
    placed.push({ off, size: sz });
    seen.push(-1);
    for (let st = it.first; st <= it.last; st++) (liveAt[st] ??= []).push(id);
    size = Math.max(size, off + sz);
    let o = off;
    for (const b of it.bufs) {
      offsets.set(b, o);
      o += alignUp(bufs[b]!.bytes);
    }
  }
  return { offsets, size, withoutReuse };
}

// Activations in separate regions, one after another: items of different regions never share bytes, so no
// launch of one region waits for another's by memory reuse (write after read). A laned tick plans its tenant
// groups (tenantGroups in lanes.ts) this way: tenants that share no launch then share no dependency, as each
// tenant's own stream would, at the cost of an arena that is the sum of the regions' instead of their peak.
export function planActivationsByRegion(bufs: readonly Buf[], items: readonly ActItem[], regionOf: (it: ActItem) => number): ActPlan {
  const byRegion = new Map<number, ActItem[]>();
  for (const it of items) {
    const r = regionOf(it);
    let list = byRegion.get(r);
    if (list === undefined) byRegion.set(r, (list = []));
    list.push(it);
  }
  const offsets = new Map<number, number>();
  let size = 0;
  let withoutReuse = 0;
  for (const r of [...byRegion.keys()].sort((a, b) => a - b)) {
    const part = planActivations(bufs, byRegion.get(r)!);
    for (const [b, o] of part.offsets) offsets.set(b, size + o);
    size += alignUp(part.size);
    withoutReuse += part.withoutReuse;
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

// io: every tenant's inputs, in tenant order, then every tenant's outputs (identical tenants sit at a uniform
// stride in each half). Inputs and outputs each form one contiguous run, so the host's staging and result
// buffers (native/src/tick_staging.h) and the device copies hold the tick's own bytes: interleaved, the merged
// output span of 64 small MLPs was 220 KB for 2.5 KB of outputs, copied back and allocated every tick.
// Each io slot is IO_ALIGN-byte aligned, not 256 like the arenas' buffers: io bytes are staged and copied every
// tick, and 10,000 tenants with 32-byte inputs and 16-byte outputs moved 2.56 MB each way at 256 (8-16x their
// bytes). Nothing reads io with vector loads wider than 16 bytes (generated kernels and the skinny GEMM load
// scalars; cuBLASLt takes its alignment from the pointers).
export const IO_ALIGN = 16;

export function planIo(
  bufs: readonly Buf[],
  perTenant: ReadonlyArray<{ inputs: readonly number[]; outputs: readonly number[] }>,
): { offsets: Map<number, number>; size: number } {
  const offsets = new Map<number, number>();
  let off = 0;
  for (const side of ['inputs', 'outputs'] as const) {
    for (const t of perTenant) {
      for (const b of t[side]) {
        offsets.set(b, off);
        off += alignUp(bufs[b]!.bytes, IO_ALIGN);
      }
    }
  }
  return { offsets, size: alignUp(off) };
}
