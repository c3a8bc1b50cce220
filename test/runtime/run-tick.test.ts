// loadPlan + runTick on the CPU backend over a hand-built plan written by codegen: results, padding of
// partial batches (batchAxis 0 and 1), absent tenants, input validation, repeated ticks, and that a tick
// never blocks the event loop.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writePlanDir } from '../../codegen/index.js';
import { makeTensor, type Tensor } from '../../ir/tensor.js';
import { chooseBackend, loadPlan, type LoadedPlan, nativeAddonInfo } from '../../runtime/index.js';
import { maxRelError, randomF32 } from '../native/helpers.js';
import { type HandPlan, K, N, expected, handPlan } from './hand-plan.js';

let dir: string;
let hand: HandPlan;
let loaded: LoadedPlan;

const xa = (rows: number, seed: number) => makeTensor('f32', [rows, K], randomF32(rows * K, seed));
const xc = (rows: number, seed: number) => makeTensor('f32', [K, rows], randomF32(K * rows, seed));

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'loom-runtime-'));
  hand = handPlan();
  await writePlanDir(hand.plan, dir, { nvcc: 'off' });
  loaded = await loadPlan(dir, { backend: 'cpu', threads: 2 });
});

afterAll(() => {
  loaded?.close();
  rmSync(dir, { recursive: true, force: true });
});

function floats(t: Tensor | undefined): number[] {
  return Array.from(t!.data as Float32Array);
}

describe('runtime loadPlan/runTick (cpu)', () => {
  it('reports the addon and the backend it chose', () => {
    const info = nativeAddonInfo();
    expect(info.backends).toContain('cpu');
    expect(typeof info.cuda).toBe('boolean');
    expect(loaded.backend).toBe('cpu');
    expect(loaded.plan.tenants.map((t) => t.id)).toEqual(['a', 'b', 'c']);
  });

  it('every tenant gets its own answer', async () => {
    const x = [xa(4, 1), xa(4, 2), xc(3, 3)];
    const out = await loaded.runTick({ a: { x: x[0]! }, b: { x: x[1]! }, c: { x: x[2]! } });
    ['a', 'b', 'c'].forEach((id, t) => {
      expect(out[id]!.y!.shape).toEqual(t === 2 ? [3, N] : [4, N]);
      expect(maxRelError(floats(out[id]!.y), expected(hand, t, x[t]!.data as Float32Array, t === 2 ? 3 : 4))).toBeLessThan(1e-6);
    });
  });

  it('pads partial batches and trims outputs to the rows given (batchAxis 0 and 1); absent tenants get nothing', async () => {
    const a = xa(2, 4);
    const c = xc(1, 5);
    const out = await loaded.runTick({ a: { x: a }, c: { x: c } });
    expect(Object.keys(out).sort()).toEqual(['a', 'c']);
    expect(out.a!.y!.shape).toEqual([2, N]);
    expect(out.c!.y!.shape).toEqual([1, N]);
    expect(maxRelError(floats(out.a!.y), expected(hand, 0, a.data as Float32Array, 2))).toBeLessThan(1e-6);
    expect(maxRelError(floats(out.c!.y), expected(hand, 2, c.data as Float32Array, 1))).toBeLessThan(1e-6);
  });

  it('many ticks in a row give identical results; new inputs give new answers', async () => {
    const feeds = { a: { x: xa(3, 6) }, b: { x: xa(4, 7) } };
    const first = await loaded.runTick(feeds);
    for (let i = 0; i < 10; i++) expect(await loaded.runTick(feeds)).toEqual(first);
    // concurrent ticks queue and each gets its own answer
    const [p, q] = await Promise.all([loaded.runTick({ b: { x: xa(4, 8) } }), loaded.runTick({ b: { x: xa(4, 9) } })]);
    expect(maxRelError(floats(p.b!.y), expected(hand, 1, xa(4, 8).data as Float32Array, 4))).toBeLessThan(1e-6);
    expect(maxRelError(floats(q.b!.y), expected(hand, 1, xa(4, 9).data as Float32Array, 4))).toBeLessThan(1e-6);
    expect(floats(p.b!.y)).not.toEqual(floats(first.b!.y));
  });

  it('rejects bad inputs with EVAL errors that say what is wrong', async () => {
    const bad = async (inputs: Parameters<LoadedPlan['runTick']>[0], msg: RegExp) =>
      expect(loaded.runTick(inputs)).rejects.toMatchObject({ name: 'LoomError', code: 'EVAL', message: expect.stringMatching(msg) });
    await bad({ zz: { x: xa(1, 1) } }, /unknown tenant 'zz'.*a, b, c/);
    await bad({ a: { y: xa(1, 1) } }, /tenant 'a' has no input 'y'.*x/);
    await bad({ a: {} }, /tenant 'a' is missing input 'x'/);
    await bad({ a: { x: makeTensor('f64', [1, K]) } }, /tenant 'a' input 'x': dtype f64, expected f32/);
    await bad({ a: { x: makeTensor('f32', [1, K + 1]) } }, /tenant 'a' input 'x': shape \[1,9\], expected f32\[1\.\.4,8\]/);
    await bad({ a: { x: makeTensor('f32', [5, K]) } }, /shape \[5, ?8\]/);
    await bad({ a: { x: makeTensor('f32', [0, K]) } }, /shape \[0, ?8\]/);
    await bad({ c: { x: makeTensor('f32', [K, 4]) } }, /shape \[8,4\], expected f32\[8,1\.\.3\]/);
    await bad({ a: { x: makeTensor('f32', [K]) } }, /shape \[8\], expected f32\[1\.\.4,8\]/);
    // the shared validator's error, with its field path, is the cause
    await expect(loaded.runTick({ a: { x: makeTensor('f32', [5, K]) } })).rejects.toMatchObject({
      cause: { name: 'TenantIOError', code: 'shape', path: "inputs[0] ('x').shape" },
    });
  });

  it('a tick does not block the event loop', async () => {
    const bigDir = mkdtempSync(path.join(tmpdir(), 'loom-runtime-big-'));
    try {
      await writePlanDir(handPlan(700).plan, bigDir, { nvcc: 'off' });
      const big = await loadPlan(bigDir, { backend: 'cpu', threads: 1 });
      const events: string[] = [];
      let ticks = 0;
      const timer = setInterval(() => ticks++, 1);
      const t0 = performance.now();
      const tick = big.runTick({ a: { x: xa(4, 1) } }).then(() => events.push(`tick ${ticks}`));
      setTimeout(() => events.push('timeout'), 0);
      await tick;
      clearInterval(timer);
      const ms = performance.now() - t0;
      big.close();
      expect(events[0]).toBe('timeout');
      // the interval kept firing while the tick ran on the worker thread
      if (ms > 50) expect(ticks).toBeGreaterThan(3);
      await expect(big.runTick({ a: { x: xa(4, 1) } })).rejects.toMatchObject({ code: 'USAGE' });
    } finally {
      rmSync(bigDir, { recursive: true, force: true });
    }
  });

  it('cuda where the addon lacks it is a clear error; auto falls back to cpu', async () => {
    expect(chooseBackend('auto', ['cpu'])).toBe('cpu');
    expect(chooseBackend('auto', ['cpu', 'cuda'])).toBe('cuda');
    expect(() => chooseBackend('cuda', ['cpu'])).toThrow(/backend 'cuda' is not built into this addon/);
    if (!nativeAddonInfo().cuda) await expect(loadPlan(dir, { backend: 'cuda' })).rejects.toMatchObject({ code: 'UNSUPPORTED_FEATURE' });
  });
});
