// The tick's launches as a DAG: which launch must follow which, from the bytes each one reads and writes
// (ir/contract/extents.ts, exactly as FORMAT.md defines them). Found on byte ranges, not on values, so the
// memory plan's reuse is honoured: a buffer placed where an earlier, dead one lived waits for that buffer's
// last reader (write after read) as well as its producer (read after write). Weights are read-only and never
// create a dependency. The planner assigns lanes from it (src/planner/lanes.ts); the validator checks that a
// plan's lanes and waits cover every dependency, since a backend that runs lanes in parallel trusts them.
import type { ArenaId, Launch } from './launch.js';
import { accessBytes, launchAccesses } from './extents.js';

// One byte range a launch touches.
export interface ByteAccess {
  readonly arena: ArenaId;
  readonly begin: number;
  readonly end: number; // exclusive
  readonly write: boolean;
}

export function byteAccesses(l: Launch): ByteAccess[] {
  return launchAccesses(l).map((a) => {
    const { start, end } = accessBytes(a);
    return { arena: a.ref.arena, begin: start, end, write: a.written === true };
  });
}

export function launchDependencies(launches: readonly Launch[]): number[][] {
  return accessDependencies(launches.map(byteAccesses));
}

// Per launch, the earlier launches it must follow: the last writer of each byte it touches, and (when it
// writes) every reader since that write. Every range's bounds are known up front, so each arena is cut once
// into elementary pieces and each access walks the pieces it covers (no interval splitting as it goes).
export function accessDependencies(accesses: ReadonlyArray<readonly ByteAccess[]>): number[][] {
  const bounds = new Map<ArenaId, number[]>();
  for (const list of accesses)
    for (const a of list) {
      if (!touches(a)) continue;
      let b = bounds.get(a.arena);
      if (b === undefined) bounds.set(a.arena, (b = []));
      b.push(a.begin, a.end);
    }
  const maps = new Map<ArenaId, PieceMap>();
  for (const [arena, b] of bounds) maps.set(arena, new PieceMap(b));
  return accesses.map((list, i) => {
    const deps = new Set<number>();
    for (const a of list) if (touches(a)) maps.get(a.arena)!.touch(a.begin, a.end, a.write, i, deps);
    deps.delete(i);
    return [...deps].sort((x, y) => x - y);
  });
}

const touches = (a: ByteAccess): boolean => a.arena !== 'weights' && a.end > a.begin;

// Where `launches` (with lane/after as set) would run a launch before one it depends on: a message naming
// both, or null when every dependency is covered (same lane and earlier, or waited for: a launch of `after` on
// the dependency's lane at or after it). Launch ids are positions (the validator checks that first).
export function laneOrderViolation(launches: readonly Launch[], deps: ReadonlyArray<readonly number[]>): string | null {
  const laneOf = (i: number): number => launches[i]!.lane ?? 0;
  for (let i = 0; i < launches.length; i++) {
    const after = launches[i]!.after ?? [];
    for (const d of deps[i]!) {
      if (laneOf(d) === laneOf(i)) continue;
      if (after.some((a) => a >= d && a < i && laneOf(a) === laneOf(d))) continue;
      return `launch ${i} (lane ${laneOf(i)}) depends on launch ${d} (lane ${laneOf(d)}) but waits for no launch of lane ${laneOf(d)} at or after it`;
    }
  }
  return null;
}

// One arena cut at every bound any access has: piece k is [cuts[k], cuts[k+1]), with its last writer and the
// readers since that write.
class PieceMap {
  private readonly cuts: number[];
  private readonly writer: Int32Array;
  private readonly readers: number[][];

  constructor(bounds: number[]) {
    this.cuts = [...new Set(bounds)].sort((x, y) => x - y);
    this.writer = new Int32Array(Math.max(0, this.cuts.length - 1)).fill(-1);
    this.readers = Array.from({ length: this.writer.length }, () => []);
  }

  touch(begin: number, end: number, write: boolean, launch: number, deps: Set<number>): void {
    for (let k = this.pieceAt(begin); k < this.writer.length && this.cuts[k]! < end; k++) {
      const w = this.writer[k]!;
      if (w >= 0) deps.add(w);
      const rs = this.readers[k]!;
      if (write) {
        for (const r of rs) deps.add(r);
        this.writer[k] = launch;
        rs.length = 0;
      } else if (rs.at(-1) !== launch) rs.push(launch);
    }
  }

  private pieceAt(x: number): number {
    let lo = 0;
    let hi = this.cuts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.cuts[mid]! <= x) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
