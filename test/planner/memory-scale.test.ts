// planActivations reads only the stages an item spans to find its conflicts; it must place every item exactly
// where the rule as first written (filter every placed item, stable sort by offset) placed it.
import { describe, expect, it } from 'vitest';
import { type ActItem, planActivations } from '../../src/planner/memory.js';
import { type Buf, alignUp } from '../../src/planner/steps.js';
import { rng } from '../support/tensors.js';

function byScan(bufs: readonly Buf[], items: readonly ActItem[]) {
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

function randomCase(seed: number): { bufs: Buf[]; items: ActItem[] } {
  const r = rng(seed);
  const stages = 1 + Math.floor(r() * 40);
  const bufs: Buf[] = [];
  const items: ActItem[] = [];
  const n = 1 + Math.floor(r() * 80);
  for (let i = 0; i < n; i++) {
    const group = r() < 0.2 ? 2 + Math.floor(r() * 3) : 1;
    const ids: number[] = [];
    for (let k = 0; k < group; k++) {
      ids.push(bufs.length);
      // few distinct sizes, so that ties in size and offset occur
      bufs.push({ id: bufs.length, tenant: 0, kind: 'act', bytes: [1, 256, 300, 1024, 4096][Math.floor(r() * 5)]!, name: `b${bufs.length}` });
    }
    const first = Math.floor(r() * stages);
    const last = Math.min(stages - 1, first + Math.floor(r() * (r() < 0.2 ? stages : 4)));
    items.push({ bufs: ids, first, last });
  }
  return { bufs, items };
}

describe('planActivations', () => {
  it('places exactly as the scanning rule on 500 random cases', () => {
    for (let seed = 1; seed <= 500; seed++) {
      const { bufs, items } = randomCase(seed);
      expect(planActivations(bufs, items), `seed ${seed}`).toEqual(byScan(bufs, items));
    }
  });

  it('a 200k-item chain is placed in near-linear time', () => {
    const chain = (n: number) => {
      const bufs: Buf[] = Array.from({ length: n }, (_, i) => ({ id: i, tenant: 0, kind: 'act' as const, bytes: 64, name: `v${i}` }));
      return { bufs, items: bufs.map((b, i): ActItem => ({ bufs: [b.id], first: i, last: i + 1 })) };
    };
    const time = (n: number): number => {
      const { bufs, items } = chain(n);
      const t0 = performance.now();
      expect(planActivations(bufs, items).size).toBe(512);
      return performance.now() - t0;
    };
    time(2000);
    const small = time(20_000);
    const big = time(200_000);
    expect(big / Math.max(small, 1)).toBeLessThan(40); // linear ~10x (the scan: ~100x)
  });
});
