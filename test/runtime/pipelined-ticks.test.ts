// Pipelined ticks (issue 12): several ticks in flight through the staging sets, on the CPU backend. Results
// come back in call order, a tick that fails fails alone, the caller may reuse its input tensors as soon as
// runTick returns (a tick waiting for a set has its bytes copied aside), rows per tenant come back as given,
// and closing the plan refuses only the ticks still waiting.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTensor, type Tensor } from '../../ir/tensor.js';
import { type LoadedPlan, loadPlan } from '../../runtime/index.js';
import { maxRelError, randomF32 } from '../native/helpers.js';
import { K, expected } from './hand-plan.js';
import { type LoadedHandPlan, loadHandPlan } from './hand-plan-dir.js';

let fixture: LoadedHandPlan;
const plans: LoadedPlan[] = [];

const xa = (rows: number, seed: number) => makeTensor('f32', [rows, K], randomF32(rows * K, seed));
const floats = (t: Tensor | undefined): Float32Array => t!.data as Float32Array;

async function load(opts: Parameters<typeof loadPlan>[1]): Promise<LoadedPlan> {
  const p = await loadPlan(fixture.dir, { backend: 'cpu', threads: 1, ...opts });
  plans.push(p);
  return p;
}

beforeAll(async () => {
  fixture = await loadHandPlan(1);
});

afterAll(() => {
  for (const p of plans) p.close();
  fixture?.close();
});

describe('pipelined ticks (cpu)', () => {
  it('settle in call order, each with its own rows, with more ticks than staging sets', async () => {
    const plan = await load({ pipelineDepth: 2 });
    const order: number[] = [];
    const feeds = Array.from({ length: 12 }, (_, i) => ({ a: { x: xa(1 + (i % 4), 10 + i) }, b: { x: xa(4 - (i % 4), 50 + i) } }));
    const outs = await Promise.all(
      feeds.map((f, i) =>
        plan.runTick(f).then((o) => {
          order.push(i);
          return o;
        }),
      ),
    );
    expect(order).toEqual(feeds.map((_, i) => i));
    feeds.forEach((f, i) => {
      expect(Object.keys(outs[i]!).sort()).toEqual(['a', 'b']);
      for (const [id, t] of [
        ['a', 0],
        ['b', 1],
      ] as const) {
        const x = f[id].x;
        expect(outs[i]![id]!.y!.shape[0]).toBe(x.shape[0]);
        expect(maxRelError(floats(outs[i]![id]!.y), expected(fixture.hand, t, x.data as Float32Array, x.shape[0]!))).toBeLessThan(1e-6);
      }
    });
  });

  it('input tensors may be reused as soon as runTick returns, whether the tick ran at once or waited', async () => {
    const plan = await load({ pipelineDepth: 1 });
    const x = xa(4, 7);
    const before = Float32Array.from(floats(x));
    const pending = [plan.runTick({ a: { x } }), plan.runTick({ a: { x } }), plan.runTick({ a: { x } })]; // 1 runs, 2 wait
    floats(x).fill(1e6); // the caller's buffer changes before any tick has run
    const want = expected(fixture.hand, 0, before, 4);
    for (const o of await Promise.all(pending)) expect(maxRelError(floats(o.a!.y), want)).toBeLessThan(1e-6);
  });

  it('a failing tick fails alone: the ticks around it, in flight at the same time, are answered', async () => {
    const plan = await load({ pipelineDepth: 3, testFaults: { ticks: 1, after: 2 } });
    const feeds = Array.from({ length: 6 }, (_, i) => ({ b: { x: xa(2, 100 + i) } }));
    const settled = await Promise.allSettled(feeds.map((f) => plan.runTick(f)));
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect((settled[2] as PromiseRejectedResult).reason).toMatchObject({ code: 'EVAL', message: expect.stringMatching(/injected fault/) });
    settled.forEach((r, i) => {
      if (r.status !== 'fulfilled') return;
      const x = feeds[i]!.b.x;
      expect(maxRelError(floats(r.value.b!.y), expected(fixture.hand, 1, x.data as Float32Array, 2))).toBeLessThan(1e-6);
    });
    expect(Number(plan.backendInfo().failedTicks)).toBe(1);
  });

  it('ticks that finish while a hand-back is queued ride on it: one call settles them, in order, a failed one alone', async () => {
    const plan = await load({ pipelineDepth: 3, testFaults: { ticks: 1, after: 2 } });
    await plan.runTick({ a: { x: xa(1, 1) } }); // the tick waiter exists
    const before = plan.backendInfo();
    const feeds = [0, 1, 2].map((i) => ({ a: { x: xa(2, 300 + i) } }));
    const order: number[] = [];
    const ticks = feeds.map((f, i) =>
      plan.runTick(f).finally(() => {
        order.push(i);
      }),
    );
    // the JS thread stays busy while the waiter finishes all three: the first one's call into JS cannot run yet
    const until = Date.now() + 400;
    while (Date.now() < until) {}
    const settled = await Promise.allSettled(ticks);
    const after = plan.backendInfo();
    expect(order).toEqual([0, 1, 2]);
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'EVAL', message: expect.stringMatching(/injected fault/) });
    for (const i of [0, 2]) {
      const out = (settled[i] as PromiseFulfilledResult<Awaited<ReturnType<LoadedPlan['runTick']>>>).value;
      expect(maxRelError(floats(out.a!.y), expected(fixture.hand, 0, floats(feeds[i]!.a.x), 2))).toBeLessThan(1e-6);
    }
    expect(Number(after.handedBackTicks) - Number(before.handedBackTicks)).toBe(3);
    expect(Number(after.handBacks) - Number(before.handBacks)).toBe(1);
    expect(Number(after.lastHandBackUs)).toBeGreaterThan(0);
  });

  it('results stay intact while later ticks reuse the staging sets and result blocks', async () => {
    const plan = await load({ pipelineDepth: 2 });
    const first = await plan.runTick({ a: { x: xa(4, 1) } });
    const snapshot = Array.from(floats(first.a!.y));
    for (let i = 0; i < 20; i++) await plan.runTick({ a: { x: xa(4, 200 + i) } });
    expect(Array.from(floats(first.a!.y))).toEqual(snapshot);
    const info = plan.backendInfo();
    expect(Number(info.pipelineDepth)).toBe(2);
    expect(Number(info.stagedTicks)).toBe(21);
  });

  it('a caller holding many results keeps every one correct; runTick results are compact and hold no result block', async () => {
    const plan = await load({ pipelineDepth: 2 });
    const blocks = Number(plan.backendInfo().resultBlocks);
    const n = blocks * 3;
    const xs = Array.from({ length: n }, (_, i) => xa(1 + (i % 4), 500 + i));
    const kept = [];
    for (const x of xs) kept.push(await plan.runTick({ a: { x } })); // every result held
    kept.forEach((o, i) => {
      const x = xs[i]!;
      expect(maxRelError(floats(o.a!.y), expected(fixture.hand, 0, x.data as Float32Array, x.shape[0]!))).toBeLessThan(1e-6);
    });
    const info = plan.backendInfo();
    expect(Number(info.resultBlocks)).toBe(blocks);
    expect(Number(info.compactResults)).toBe(n);
    expect(Number(info.pooledResults) + Number(info.copiedResults)).toBe(0);
  });

  it('closing the plan refuses the ticks still waiting for a staging set; the one in flight is answered', async () => {
    const plan = await loadPlan(fixture.dir, { backend: 'cpu', threads: 1, pipelineDepth: 1 });
    const running = plan.runTick({ a: { x: xa(1, 1) } });
    const waiting = plan.runTick({ a: { x: xa(1, 2) } });
    plan.close();
    await expect(waiting).rejects.toMatchObject({ code: 'USAGE', message: expect.stringMatching(/closed before this tick ran/) });
    const out = await running;
    expect(maxRelError(floats(out.a!.y), expected(fixture.hand, 0, floats(xa(1, 1)), 1))).toBeLessThan(1e-6);
    await expect(plan.runTick({ a: { x: xa(1, 3) } })).rejects.toMatchObject({ code: 'USAGE' });
  });

  it('a process whose plan is left open exits once its ticks are answered (the tick waiter does not hold it)', () => {
    const runtime = path.resolve(import.meta.dirname, '../../runtime/index.ts');
    const script = [
      `const { loadPlan } = await import(${JSON.stringify(runtime)});`,
      `const p = await loadPlan(${JSON.stringify(fixture.dir)}, { backend: 'cpu', threads: 1 });`,
      "const x = { dtype: 'f32', shape: [1, " + K + '], data: new Float32Array(' + K + ') };',
      'const outs = await Promise.all([1, 2, 3, 4].map(() => p.runTick({ a: { x } })));',
      "process.stdout.write('answered ' + outs.length + '\\n');",
    ].join('\n');
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.error, r.stderr).toBeUndefined();
    expect(r.stdout).toContain('answered 4');
    expect(r.status, r.stderr).toBe(0);
  });
});
