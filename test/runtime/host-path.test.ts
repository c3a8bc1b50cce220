// The runtime's host path (TickCodec + the addon's staging sets and submitTick) and the bench entry points, on
// the CPU backend: many ticks in flight each get their own outputs, in call order, a failed tick fails alone,
// reused staging sets are re-zeroed where a partial batch pads, output views never overlap, and benchTick /
// benchConcurrent fail clearly here.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTensor, type Tensor } from '../../ir/tensor.js';
import { TickCodec, benchConcurrent, loadNativeAddon, loadPlan, type LoadedPlan } from '../../runtime/index.js';
import { maxRelError, randomF32 } from '../native/helpers.js';
import { type HandPlan, K, expected } from './hand-plan.js';
import { type LoadedHandPlan, loadHandPlan } from './hand-plan-dir.js';
import type { NativeHandle } from '../../runtime/native-addon.js';

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

  it('a reused staging set is zero-padded again for a partial batch (both batch axes)', () => {
    const addon = loadNativeAddon();
    const handle = addon.create(loaded.plan, new Uint8Array(loaded.plan.arenas.weights), { backend: 'cpu', threads: 1 });
    try {
      const staging = addon.staging(handle);
      expect(staging.sets).toHaveLength(3); // the default pipeline depth
      const codec = new TickCodec(loaded.plan.tenants, staging);
      const set = new Uint8Array(staging.sets[0]!, 0, staging.inBytes);
      const mask = new Uint8Array(3);
      const rows = new Int32Array(3);
      const full = codec.write(codec.check({ a: { x: xa(4, 5) }, c: { x: xc(3, 6) } }), set, mask, rows);
      expect(Array.from(mask)).toEqual([1, 0, 1]);
      expect(Array.from(rows)).toEqual([4, 0, 3]);
      codec.clear(full);
      expect(Array.from(mask)).toEqual([0, 0, 0]);
      expect(Array.from(rows)).toEqual([0, 0, 0]);
      codec.write(codec.check({ a: { x: xa(2, 7) }, c: { x: xc(1, 8) } }), set, mask, rows);
      expect(Array.from(rows)).toEqual([2, 0, 1]);
      // read the input slots back out of the staging set, where the layout puts them
      const at = (io: { ref: { offset: number }; bytes: number }) => {
        for (let i = 0; i < staging.inSpans.length; i += 3) {
          const [off, bytes, host] = [staging.inSpans[i]!, staging.inSpans[i + 1]!, staging.inSpans[i + 2]!];
          if (io.ref.offset >= off && io.ref.offset + io.bytes <= off + bytes) return host + io.ref.offset - off;
        }
        throw new Error('slot outside the layout');
      };
      const [a, , c] = loaded.plan.tenants;
      const xaIn = new Float32Array(set.buffer, at(a!.inputs[0]!), 4 * K);
      expect(Array.from(xaIn.subarray(0, 2 * K))).toEqual(Array.from(floats(xa(2, 7))));
      expect(Array.from(xaIn.subarray(2 * K))).toEqual(new Array(2 * K).fill(0));
      const xcIn = new Float32Array(set.buffer, at(c!.inputs[0]!), 3 * K); // [K, 3]: row k holds 1 given value, then 2 zeros
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

describe('submitTick argument checks', () => {
  it('a set that does not exist, a busy set and a mask of the wrong length are EVAL errors', async () => {
    const addon = loadNativeAddon();
    const handle = addon.create(loaded.plan, new Uint8Array(loaded.plan.arenas.weights), { backend: 'cpu', threads: 1, pipelineDepth: 2 });
    try {
      expect(addon.staging(handle).sets).toHaveLength(2);
      expect(() => addon.submitTick(handle, 2, new Uint8Array(3))).toThrow(
        expect.objectContaining({ code: 'EVAL', message: expect.stringMatching(/staging set 2 does not exist \(the plan has 2\)/) }),
      );
      expect(() => addon.submitTick(handle, 0.5, new Uint8Array(3))).toThrow(/staging set 0.5 does not exist/);
      expect(() => addon.submitTick(handle, 0, new Float32Array(3) as unknown as Uint8Array)).toThrow(/active mask must be a Uint8Array/);
      expect(() => addon.submitTick(handle, 0, new Uint8Array(2))).toThrow(
        expect.objectContaining({ code: 'EVAL', message: 'tick names 2 tenants, the plan has 3' }),
      );
      const first = addon.submitTick(handle, 0, new Uint8Array(3));
      expect(() => addon.submitTick(handle, 0, new Uint8Array(3))).toThrow(/staging set 0 is still in use by an earlier tick/);
      await first;
      await addon.submitTick(handle, 0, new Uint8Array(3)); // free again once settled
    } finally {
      addon.destroy(handle);
    }
  });

  it('live tenants: an Int32Array of tenants live in the mask, else an EVAL error', () => {
    const addon = loadNativeAddon();
    const handle = addon.create(loaded.plan, new Uint8Array(loaded.plan.arenas.weights), { backend: 'cpu', threads: 1, pipelineDepth: 1 });
    try {
      expect(addon.staging(handle).compact).toBe(true);
      const mask = Uint8Array.of(1, 0, 1);
      expect(() => addon.submitTick(handle, 0, mask, undefined, [0, 2] as unknown as Int32Array)).toThrow(/live tenants must be an Int32Array/);
      expect(() => addon.submitTick(handle, 0, mask, undefined, Int32Array.of(0, 1))).toThrow(
        expect.objectContaining({ code: 'EVAL', message: expect.stringMatching(/live tenant 1 is not a live tenant of the tick/) }),
      );
      expect(() => addon.submitTick(handle, 0, mask, undefined, Int32Array.of(3))).toThrow(/live tenant 3 is not a live tenant/);
      expect(() => addon.submitTick(handle, 0, mask, undefined, Int32Array.of(-1))).toThrow(/live tenant -1 is not a live tenant/);
    } finally {
      addon.destroy(handle);
    }
  });

  // A CPU executor of the fixture's plan with its staging set 0 and a codec, destroyed after `body`.
  async function withCodec(
    body: (h: {
      addon: ReturnType<typeof loadNativeAddon>;
      handle: NativeHandle;
      staging: ReturnType<ReturnType<typeof loadNativeAddon>['staging']>;
      codec: TickCodec;
      set: Uint8Array;
    }) => Promise<void>,
  ): Promise<void> {
    const addon = loadNativeAddon();
    const weights = new Uint8Array(readFileSync(path.join(dir, loaded.plan.weights.file)));
    const handle = addon.create(loaded.plan, weights, { backend: 'cpu', threads: 1, pipelineDepth: 1 });
    try {
      const staging = addon.staging(handle);
      await body({ addon, handle, staging, codec: new TickCodec(loaded.plan.tenants, staging), set: new Uint8Array(staging.sets[0]!, 0, staging.inBytes) });
    } finally {
      addon.destroy(handle);
    }
  }

  it("a compact result holds exactly the live tenants' outputs of the full-layout result, in the order given", async () => {
    await withCodec(async ({ addon, handle, staging, codec, set }) => {
      const mask = new Uint8Array(3);
      const rows = new Int32Array(3);
      expect(Number(addon.handleInfo(handle).resultBlocksAllocated)).toBe(0); // pinned result blocks wait for their first use
      // c, a: not plan order; a, b, c: the outputs follow each other in both buffers (one copy); a, c: a gap
      const ticks: Record<string, Record<string, Tensor>>[] = [
        { c: { x: xc(2, 11) }, a: { x: xa(3, 12) } },
        { a: { x: xa(4, 13) }, b: { x: xa(4, 14) }, c: { x: xc(3, 15) } },
        { a: { x: xa(1, 16) }, c: { x: xc(3, 17) } },
      ];
      for (const feeds of ticks) {
        const w = codec.write(codec.check(feeds), set, mask, rows);
        const full = codec.unpack(w, await addon.submitTick(handle, 0, w.active, w.rows));
        const compactBuf = await addon.submitTick(handle, 0, w.active, w.rows, w.live);
        expect(compactBuf.byteLength).toBeLessThanOrEqual(staging.outBytes);
        const compact = codec.unpack(w, compactBuf, true);
        expect(Object.keys(compact)).toEqual(Object.keys(feeds));
        for (const id of Object.keys(feeds)) {
          expect(compact[id]!.y!.shape).toEqual(full[id]!.y!.shape);
          expect(Array.from(floats(compact[id]!.y))).toEqual(Array.from(floats(full[id]!.y)));
          expect(compact[id]!.y!.data.buffer).toBe(compactBuf);
        }
        codec.clear(w);
      }
      expect(Number(addon.handleInfo(handle).compactResults)).toBe(ticks.length);
      // the full-layout ticks above made the pool
      expect(Number(addon.handleInfo(handle).resultBlocksAllocated)).toBe(Number(addon.handleInfo(handle).resultBlocks));
    });
  });

  it('full-layout results: a caller holding more than the result pool has gets copies, all correct; the pool never grows', async () => {
    await withCodec(async ({ addon, handle, codec, set }) => {
      const blocks = Number(addon.handleInfo(handle).resultBlocks);
      const xs = Array.from({ length: blocks * 3 }, (_, i) => xa(1 + (i % 4), 700 + i));
      const kept = [];
      for (const x of xs) {
        const w = codec.write(codec.check({ a: { x } }), set, new Uint8Array(3), new Int32Array(3));
        kept.push(codec.unpack(w, await addon.submitTick(handle, 0, w.active, w.rows))); // every result held: the pool runs dry
      }
      kept.forEach((o, i) => {
        const x = xs[i]!;
        expect(maxRelError(floats(o.a!.y), expected(hand, 0, x.data as Float32Array, x.shape[0]!))).toBeLessThan(1e-6);
      });
      const info = addon.handleInfo(handle);
      expect(Number(info.resultBlocks)).toBe(blocks);
      expect(Number(info.copiedResults)).toBeGreaterThan(0);
      expect(Number(info.pooledResults) + Number(info.copiedResults)).toBe(xs.length);
    });
  });

  it('pipeline depth outside 1..8 is refused at load', async () => {
    await expect(loadPlan(dir, { backend: 'cpu', pipelineDepth: 0 })).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringMatching(/pipelineDepth must be an integer from 1 to 8, got 0/),
    });
    const addon = loadNativeAddon();
    expect(() => addon.create(loaded.plan, new Uint8Array(loaded.plan.arenas.weights), { backend: 'cpu', pipelineDepth: 9 })).toThrow(
      /pipeline depth must be 1..8, got 9/,
    );
  });

  it("an io range outside the arena rejects with the executor's error (general runTick)", async () => {
    const addon = loadNativeAddon();
    const handle = addon.create(loaded.plan, new Uint8Array(loaded.plan.arenas.weights), { backend: 'cpu', threads: 1 });
    try {
      const io = loaded.plan.arenas.io;
      await expect(addon.runTick(handle, [], [{ offset: io - 4, bytes: 8 }], new Uint8Array(3))).rejects.toMatchObject({
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
