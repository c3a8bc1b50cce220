// The runtime's fast host path (TickCodec + addon runTickPacked) and the bench entry points, on the CPU
// backend: many ticks in flight each get their own outputs, pooled input buffers are re-zeroed where a
// partial batch pads, output views never overlap, and benchTick / benchConcurrent fail clearly here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTensor, type Tensor } from '../../ir/tensor.js';
import { TickCodec, benchConcurrent, loadNativeAddon, loadPlan, type LoadedPlan } from '../../runtime/index.js';
import { maxRelError, randomF32 } from '../native/helpers.js';
import { type HandPlan, K, expected } from './hand-plan.js';
import { type LoadedHandPlan, loadHandPlan } from './hand-plan-dir.js';

let fixture: LoadedHandPlan;
let dir: string;
let hand: HandPlan;
let loaded: LoadedPlan;

const xa = (rows: number, seed: number) => makeTensor('f32', [rows, K], randomF32(rows * K, seed));
const xc = (rows: number, seed: number) => makeTensor('f32', [K, rows], randomF32(K * rows, seed));
const floats = (t: Tensor | undefined): Float32Array => t!.data as Float32Array;

beforeAll(async () => {
  fixture = await loadHandPlan();
  ({ dir, hand, loaded } = fixture);
});

afterAll(() => fixture?.close());

describe('runTick host path (cpu)', () => {
  it('many concurrent ticks with different inputs each get their own correct outputs', async () => {
    const feeds = Array.from({ length: 24 }, (_, i) => {
      const rows = 1 + (i % 4);
      const f: Record<string, Record<string, Tensor>> = {};
      if (i % 3 !== 0) f.a = { x: xa(rows, 1000 + i) };
      f.b = { x: xa(rows, 2000 + i) };
      if (i % 2 === 0) f.c = { x: xc(Math.min(rows, 3), 3000 + i) };
      return f;
    });
    const outs = await Promise.all(feeds.map((f) => loaded.runTick(f)));
    const snapshot = outs.map((o) => Object.fromEntries(Object.entries(o).map(([id, ys]) => [id, Array.from(floats(ys.y))])));
    feeds.forEach((f, i) => {
      expect(Object.keys(outs[i]!).sort()).toEqual(Object.keys(f).sort());
      for (const [id, x] of Object.entries(f)) {
        const t = ['a', 'b', 'c'].indexOf(id);
        const rows = id === 'c' ? x.x!.shape[1]! : x.x!.shape[0]!;
        expect(outs[i]![id]!.y!.shape[0]).toBe(rows);
        expect(maxRelError(floats(outs[i]![id]!.y), expected(hand, t, x.x!.data as Float32Array, rows))).toBeLessThan(1e-6);
      }
    });
    // later ticks must not write into the buffers earlier results live in
    await Promise.all(feeds.map((f) => loaded.runTick(f)));
    outs.forEach((o, i) => {
      for (const [id, ys] of Object.entries(o)) expect(Array.from(floats(ys.y))).toEqual(snapshot[i]![id]);
    });
  });

  it("one tenant's output tensor never aliases another's", async () => {
    const out = await loaded.runTick({ a: { x: xa(4, 1) }, b: { x: xa(4, 2) }, c: { x: xc(3, 3) } });
    const b = Array.from(floats(out.b!.y));
    const c = Array.from(floats(out.c!.y));
    floats(out.a!.y).fill(123);
    expect(Array.from(floats(out.b!.y))).toEqual(b);
    expect(Array.from(floats(out.c!.y))).toEqual(c);
  });

  it('a reused input buffer is zero-padded again for a partial batch (both batch axes)', async () => {
    const addon = loadNativeAddon();
    const codec = new TickCodec(loaded.plan.tenants);
    const [a, , c] = loaded.plan.tenants;
    const handle = addon.create(loaded.plan, new Uint8Array(loaded.plan.arenas.weights), { backend: 'cpu', threads: 1 });
    try {
      const full = codec.pack({ a: { x: xa(4, 5) }, c: { x: xc(3, 6) } });
      codec.release(full);
      const partial = codec.pack({ a: { x: xa(2, 7) }, c: { x: xc(1, 8) } });
      expect(partial.data).toBe(full.data); // the pool gave the same buffer back
      // read the input slots themselves back out of the io arena
      const slots = [a!.inputs[0]!, c!.inputs[0]!];
      const table = new Float64Array(slots.flatMap((io, i) => [io.ref.offset, io.bytes, i * 256]));
      const result = new Float32Array(await addon.runTickPacked(handle, partial.data, partial.inputs, table, partial.active));
      const xaIn = result.subarray(0, 4 * K);
      expect(Array.from(xaIn.subarray(0, 2 * K))).toEqual(Array.from(floats(xa(2, 7))));
      expect(Array.from(xaIn.subarray(2 * K))).toEqual(new Array(2 * K).fill(0));
      const xcIn = result.subarray(64, 64 + 3 * K); // [K, 3]: row k holds 1 given value, then 2 zeros
      const given = floats(xc(1, 8));
      for (let k = 0; k < K; k++) expect(Array.from(xcIn.subarray(3 * k, 3 * k + 3))).toEqual([given[k]!, 0, 0]);
    } finally {
      addon.destroy(handle);
    }
  });

  it('an input array whose element size does not fit its dtype is an EVAL error', async () => {
    const wrong = { dtype: 'f32', shape: [1, K], data: new Float64Array(K) } as unknown as Tensor;
    await expect(loaded.runTick({ a: { x: wrong } })).rejects.toMatchObject({
      code: 'EVAL',
      message: expect.stringMatching(/tenant 'a' input 'x': Float64Array, expected Float32Array \(f32\)/),
    });
  });
});

describe('runTickPacked argument checks', () => {
  it('tables of the wrong shape or rows outside the data are EVAL errors', () => {
    const addon = loadNativeAddon();
    const handle = addon.create(loaded.plan, new Uint8Array(loaded.plan.arenas.weights), { backend: 'cpu', threads: 1 });
    try {
      const run = (data: Uint8Array, ins: number[], outs: number[]) => () =>
        addon.runTickPacked(handle, data, new Float64Array(ins), new Float64Array(outs), new Uint8Array(3));
      expect(run(new Uint8Array(8), [0, 0], [])).toThrow(expect.objectContaining({ code: 'EVAL', message: expect.stringMatching(/3 numbers per row/) }));
      expect(run(new Uint8Array(8), [0, 4, 8], [])).toThrow(/input 0 \[4, \+8\) lies outside the tick data of 8 bytes/);
      expect(run(new Uint8Array(8), [0, -1, 4], [])).toThrow(/input table row 0: dataOffset must be a non-negative integer/);
      expect(run(new Uint8Array(8), [], [0, 1.5, 0])).toThrow(/output table row 0: bytes must be a non-negative integer/);
      expect(() => addon.runTickPacked(handle, new Uint8Array(8), [] as unknown as Float64Array, new Float64Array(0), new Uint8Array(3))).toThrow(
        /input table must be a Float64Array/,
      );
    } finally {
      addon.destroy(handle);
    }
  });

  it("an io range outside the arena rejects with the executor's error", async () => {
    const addon = loadNativeAddon();
    const handle = addon.create(loaded.plan, new Uint8Array(loaded.plan.arenas.weights), { backend: 'cpu', threads: 1 });
    try {
      const io = loaded.plan.arenas.io;
      await expect(
        addon.runTickPacked(handle, new Uint8Array(0), new Float64Array(0), new Float64Array([io - 4, 8, 0]), new Uint8Array(3)),
      ).rejects.toMatchObject({
        code: 'EVAL',
        message: expect.stringMatching(/tick output \[\d+, \+8\) lies outside the io arena/),
      });
    } finally {
      addon.destroy(handle);
    }
  });
});

describe('bench entry points on the CPU backend', () => {
  it('benchTick: unknown tenant ids and bad masks are clear errors; the CPU backend has no captured tick', () => {
    expect(() => loaded.benchTick(1, ['a', 'zz'])).toThrow(
      expect.objectContaining({ code: 'USAGE', message: expect.stringMatching(/unknown tenant 'zz' \(the plan has: a, b, c\)/) }),
    );
    expect(() => loaded.benchTick(0)).toThrow(
      expect.objectContaining({ code: 'USAGE', message: expect.stringMatching(/iters must be a positive integer, got 0/) }),
    );
    expect(() => loaded.benchTick(1, ['a'])).toThrow(
      expect.objectContaining({ code: 'EVAL', message: expect.stringMatching(/backend 'cpu' has no captured tick to replay/) }),
    );
    expect(() => loaded.benchTick(1)).toThrow(/has no captured tick/);
    const addon = loadNativeAddon();
    const handle = addon.create(loaded.plan, new Uint8Array(loaded.plan.arenas.weights), { backend: 'cpu', threads: 1 });
    try {
      expect(() => addon.benchTick(handle, 1, new Uint8Array(2))).toThrow(
        expect.objectContaining({ code: 'EVAL', message: 'bench mask names 2 tenants, the plan has 3' }),
      );
      expect(() => addon.benchTick(handle, 1, new Float32Array(3) as unknown as Uint8Array)).toThrow(/bench mask must be a Uint8Array/);
    } finally {
      addon.destroy(handle);
    }
  });

  it('benchConcurrent needs CUDA plans and says so', async () => {
    const other = await loadPlan(dir, { backend: 'cpu', threads: 1 });
    try {
      expect(() => benchConcurrent([loaded, other], 1)).toThrow(
        expect.objectContaining({
          code: 'USAGE',
          message: expect.stringMatching(/runs CUDA graphs side by side: plan 0 \(tenants a, b, c\) is on the cpu backend/),
        }),
      );
      expect(() => benchConcurrent([], 1)).toThrow(/needs at least one plan/);
      const addon = loadNativeAddon();
      const handle = addon.create(loaded.plan, new Uint8Array(loaded.plan.arenas.weights), { backend: 'cpu', threads: 1 });
      try {
        expect(() => addon.benchTicks([handle], 1)).toThrow(
          expect.objectContaining({ code: 'EVAL', message: expect.stringMatching(/plan 0 is on backend 'cpu', not cuda/) }),
        );
      } finally {
        addon.destroy(handle);
      }
    } finally {
      other.close();
    }
  });
});
