// Hand-built LaunchPlans for the native addon: a builder that lays tensors into the three arenas and a
// runner that executes the launches once on the CPU backend and reads tensors back. The reference
// computations the tests compare against are plain TypeScript loops.
import type { DType } from '../../ir/dtype.js';
import { allocArray, byteSize } from '../../ir/dtype.js';
import type { ArenaId, Launch, LaunchInfo, Ref } from '../../ir/contract/launch.js';
import { loadNativeAddon } from '../../runtime/native-addon.js';

export type Arr = Float32Array | Float64Array | Int32Array | BigInt64Array | Int8Array | Uint8Array | Uint16Array;

export function info(label = 'test'): LaunchInfo {
  return { stage: 0, label, tenants: [], sources: [], flops: 0, bytes: 0, predictedUs: 0, ungroupedUs: 0 };
}

interface Slot {
  readonly ref: Ref;
  readonly dtype: DType;
  readonly count: number;
}

export class ArenaBuilder {
  private readonly sizes: Record<ArenaId, number> = { weights: 0, act: 0, io: 0 };
  private readonly inits: Array<{ ref: Ref; bytes: Uint8Array }> = [];
  readonly launches: Launch[] = [];
  tenants = 4;

  // Reserve `count` elements of `dtype` (64-byte aligned), optionally initialized.
  alloc(arena: ArenaId, dtype: DType, count: number, init?: Arr): Slot {
    const offset = Math.ceil(this.sizes[arena] / 64) * 64;
    this.sizes[arena] = offset + Math.max(1, count) * byteSize(dtype);
    const ref = { arena, offset };
    if (init) this.inits.push({ ref, bytes: new Uint8Array(init.buffer, init.byteOffset, init.byteLength).slice() });
    return { ref, dtype, count };
  }

  // Runs all launches once; active: which tenants take part (default all).
  async run(opts: { active?: number[]; threads?: number } = {}): Promise<Runner> {
    const addon = loadNativeAddon();
    const weights = new Uint8Array(this.sizes.weights);
    for (const i of this.inits) if (i.ref.arena === 'weights') weights.set(i.bytes, i.ref.offset);
    const plan = {
      arenas: { weights: this.sizes.weights, act: this.sizes.act, io: this.sizes.io },
      tenants: Array.from({ length: this.tenants }, (_, i) => ({ id: `t${i}` })),
      launches: this.launches,
    };
    const handle = addon.create(plan, weights, { backend: 'cpu', threads: opts.threads ?? 4 });
    // act-arena initial values: copied through io by a copy launch would be noise in every test; the
    // addon has no act upload, so tests put kernel inputs in io or weights.
    const ioInits = this.inits.filter((i) => i.ref.arena === 'io').map((i) => ({ offset: i.ref.offset, data: i.bytes }));
    const active = new Uint8Array(this.tenants);
    for (const t of opts.active ?? Array.from({ length: this.tenants }, (_, i) => i)) active[t] = 1;
    const out = await addon.runTick(handle, ioInits, [{ offset: 0, bytes: this.sizes.io }], active);
    addon.destroy(handle);
    return new Runner(out[0]!);
  }

  // The weights and io arenas as the initialized slots leave them (act starts zeroed): what a backend or the
  // simulator starts a tick from when the whole io arena is passed in as one input.
  initialBytes(): { weights: Uint8Array; io: Uint8Array } {
    const bytes = { weights: new Uint8Array(this.sizes.weights), io: new Uint8Array(this.sizes.io) };
    for (const i of this.inits) if (i.ref.arena !== 'act') bytes[i.ref.arena].set(i.bytes, i.ref.offset);
    return bytes;
  }

  plan(): { arenas: Record<ArenaId, number>; tenants: Array<{ id: string }>; launches: Launch[] } {
    return {
      arenas: { ...this.sizes },
      tenants: Array.from({ length: this.tenants }, (_, i) => ({ id: `t${i}` })),
      launches: this.launches,
    };
  }
}

export class Runner {
  constructor(private readonly io: Uint8Array) {}
  read(slot: Slot): Arr {
    if (slot.ref.arena !== 'io') throw new Error('tests read back the io arena only');
    const arr = allocArray(slot.dtype, slot.count) as Arr;
    new Uint8Array(arr.buffer).set(this.io.subarray(slot.ref.offset, slot.ref.offset + arr.byteLength));
    return arr;
  }
  floats(slot: Slot): number[] {
    const a = this.read(slot);
    const out: number[] = [];
    for (let i = 0; i < a.length; i++) out.push(Number(a[i]));
    return out;
  }
}

export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

export function randomF32(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}

// max |got - want| / max(1, |want|) over all elements.
export function maxRelError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) throw new Error(`length ${got.length} vs ${want.length}`);
  let e = 0;
  for (let i = 0; i < got.length; i++) {
    const w = want[i]!;
    const g = got[i]!;
    if (Number.isNaN(w) && Number.isNaN(g)) continue;
    if (w === g) continue;
    e = Math.max(e, Math.abs(g - w) / Math.max(1, Math.abs(w)));
  }
  return e;
}
