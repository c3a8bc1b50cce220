// loadPlan streams weights.bin into the backend (create(plan, null) + weightsWindow / weightsCommit /
// weightsFinish): the same answers as weights passed whole, a corrupt weights.bin refused before any tick, and
// the addon's chunk protocol refusing misuse (ticks before the weights are in, chunks out of order, too few bytes).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NativeAddon, loadNativeAddon, loadPlan, withBackendEnv } from '../../runtime/index.js';
import type { NativeHandle } from '../../runtime/native-addon.js';
import { randomF32 } from '../native/helpers.js';
import { type LoadedHandPlan, loadHandPlan } from './hand-plan-dir.js';

let hand: LoadedHandPlan;
let addon: NativeAddon;

beforeAll(async () => {
  hand = await loadHandPlan();
  addon = loadNativeAddon();
});
afterAll(() => hand?.close());

describe('streamed weights (cpu)', () => {
  it('the CPU backend reads weights straight into its arena (host_arena)', () => {
    const cpu = addon.info().registry?.find((b) => b.name === 'cpu');
    expect(cpu?.extensions).toContain('host_arena');
  });

  // Streams weights.bin into a plan created without weights (`stream` sends the chunks and finishes), then checks
  // that a tick gives the bytes of the same plan created with its weights whole.
  async function expectSameAsWhole(seed: number, stream: (h: NativeHandle, weights: Uint8Array) => void | Promise<void>): Promise<void> {
    const plan = hand.loaded.plan;
    const weights = new Uint8Array(readFileSync(path.join(hand.dir, 'weights.bin')));
    const whole = addon.create(plan, weights, { backend: 'cpu', threads: 1 });
    const streamed = addon.create(plan, null, { backend: 'cpu', threads: 1, weightBytes: weights.byteLength });
    try {
      await stream(streamed, weights);
      const active = new Uint8Array(plan.tenants.length).fill(1);
      const a = plan.tenants[0]!;
      const x = new Uint8Array(randomF32(a.inputs[0]!.bytes / 4, seed).buffer);
      const run = (h: NativeHandle) =>
        addon.runTick(h, [{ offset: a.inputs[0]!.ref.offset, data: x }], [{ offset: a.outputs[0]!.ref.offset, bytes: a.outputs[0]!.bytes }], active);
      const [yw] = await run(whole);
      const [ys] = await run(streamed);
      expect(yw!.some((b) => b !== 0)).toBe(true);
      expect(Buffer.from(ys!).equals(Buffer.from(yw!))).toBe(true);
    } finally {
      addon.destroy(whole);
      addon.destroy(streamed);
    }
  }

  // weightsWindow + weightsCommit for [from, end) in chunks of `chunk` bytes
  function sendChunks(h: NativeHandle, weights: Uint8Array, from: number, chunk: number): void {
    for (let at = from; at < weights.byteLength; at += chunk) {
      const n = Math.min(chunk, weights.byteLength - at);
      addon.weightsWindow!(h, at, n)!.set(weights.subarray(at, at + n));
      addon.weightsCommit!(h, at, n);
    }
  }

  it('weights streamed in chunks give the answers of weights passed whole', async () => {
    await expectSameAsWhole(21, (h, weights) => {
      sendChunks(h, weights, 0, 24);
      addon.weightsFinish!(h);
    });
  });

  it("as a backend without host arenas takes them (CUDA's path): staging windows, then copy_in, same answers", async () => {
    // the CPU backend hides host_arena under LOOM_TEST_NO_HOST_ARENA (backend_cpu.cc, test only)
    await expectSameAsWhole(22, (h, weights) =>
      withBackendEnv({ LOOM_TEST_NO_HOST_ARENA: '1' }, () => {
        // without host arenas a commit needs its window (with them, the bytes are already in place)
        expect(() => addon.weightsCommit!(h, 0, 24)).toThrow(/no window was opened/);
        // a window of the executor's own, not the arena: the bytes arrive only when committed
        addon.weightsWindow!(h, 0, 24)!.set(weights.subarray(0, 24));
        addon.weightsCommit!(h, 0, 24);
        sendChunks(h, weights, 24, 40);
        addon.weightsFinish!(h);
      }),
    );
  });

  it('refuses a corrupt weights.bin before serving a tick', async () => {
    const file = path.join(hand.dir, 'weights.bin');
    const good = readFileSync(file);
    const bad = Buffer.from(good);
    bad[bad.length >> 1]! ^= 0x40;
    writeFileSync(file, bad);
    try {
      await expect(loadPlan(hand.dir, { backend: 'cpu', threads: 1 })).rejects.toMatchObject({
        code: 'PLAN_INVALID',
        message: expect.stringMatching(/weights\.bin is corrupt: sha256/),
      });
    } finally {
      writeFileSync(file, good);
    }
  });

  it('the chunk protocol refuses ticks before the weights are in, chunks out of order and a short total', async () => {
    const plan = hand.loaded.plan;
    const bytes = plan.weights.bytes;
    expect(bytes).toBeGreaterThan(8);
    const h = addon.create(plan, null, { backend: 'cpu', threads: 1, weightBytes: bytes });
    try {
      const active = new Uint8Array(plan.tenants.length).fill(1);
      await expect(addon.runTick(h, [], [], active)).rejects.toThrow(/weights are still loading \(0 of \d+ bytes in\)/);
      const w = addon.weightsWindow!(h, 0, 8);
      expect(w).toBeInstanceOf(Uint8Array);
      expect(w!.byteLength).toBe(8);
      expect(() => addon.weightsCommit!(h, 8, 8)).toThrow(/chunks must arrive in order \(next at 0/);
      expect(() => addon.weightsWindow!(h, bytes - 4, 8)).toThrow(/is not a chunk of at most/);
      addon.weightsCommit!(h, 0, 8);
      expect(() => addon.weightsFinish!(h)).toThrow(new RegExp(`8 of ${bytes} weight bytes are in`));
      addon.weightsCommit!(h, 8, bytes - 8, new Uint8Array(readFileSync(path.join(hand.dir, 'weights.bin'))).subarray(8));
      addon.weightsFinish!(h);
      expect(() => addon.weightsFinish!(h)).toThrow(/not loading its weights/);
      expect(addon.staging(h).sets.length).toBeGreaterThan(0);
    } finally {
      addon.destroy(h);
    }
  });
});
