// Device-fault drills on the CPU backend (the CUDA twin is test/gpu/faults.test.ts): the test-only fault hook
// (LoadedPlan.testInjectFault, loadPlan's testFaults, LOOM_TEST_FAULT_TICKS) makes chosen ticks fail inside
// the backend as a failing kernel would. Only that tick's requests fail (500 naming the tick), later ticks
// give the one-at-a-time reference answers, and /v2/health/ready answers 503 until the backend recovered.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLoomError } from '../../ir/errors.js';
import type { Tensor } from '../../ir/tensor.js';
import { type LoadedPlan, loadPlan } from '../../runtime/index.js';
import { faultsFromEnv } from '../../runtime/load-plan.js';
import { type LoomServer, ServeError, type TickReport, TickScheduler, createServer } from '../../runtime/serve/index.js';
import { type OipOutput, compileTestFleet, expectedOutputs, oipBody, requestInputs, sameValues } from './fleet.js';

let planDir: string;
let reference: LoadedPlan;

beforeAll(async () => {
  planDir = await compileTestFleet();
  reference = await loadPlan(planDir, { backend: 'cpu', threads: 1 });
});
afterAll(() => reference?.close());

function sameTensors(a: Record<string, Tensor>, b: Record<string, Tensor>): boolean {
  return Object.keys(b).every(
    (k) =>
      Buffer.compare(
        Buffer.from(a[k]!.data.buffer, a[k]!.data.byteOffset, a[k]!.data.byteLength),
        Buffer.from(b[k]!.data.buffer, b[k]!.data.byteOffset, b[k]!.data.byteLength),
      ) === 0,
  );
}

describe('fault hook (cpu backend)', () => {
  it('the armed ticks fail inside the backend with a typed error naming the launch; the others are exact', async () => {
    const p = await loadPlan(planDir, { backend: 'cpu', threads: 1 });
    try {
      const x = requestInputs(p.plan, 'mlp-a', 2, 5);
      const want = await expectedOutputs(reference, 'mlp-a', x);
      p.testInjectFault(2, 1); // tick 1 good, ticks 2 and 3 fail, tick 4 good
      const results: Array<'ok' | string> = [];
      for (let i = 0; i < 4; i++) {
        try {
          const out = await p.runTick({ 'mlp-a': x });
          expect(sameTensors(out['mlp-a']!, want)).toBe(true);
          results.push('ok');
        } catch (e) {
          expect(isLoomError(e)).toBe(true);
          results.push((e as Error).message);
        }
      }
      expect(results[0]).toBe('ok');
      expect(results[3]).toBe('ok');
      for (const m of [results[1]!, results[2]!]) expect(m).toMatch(/^launch \d+ .*injected fault \(test only/);
      expect(p.backendInfo()).toMatchObject({ failedTicks: 2, faultsInjected: 2 });
      p.testInjectFault(1);
      p.testInjectFault(0); // disarms
      expect(sameTensors((await p.runTick({ 'mlp-a': x }))['mlp-a']!, want)).toBe(true);
      expect(() => p.testInjectFault(-1)).toThrow(/ticks must be an integer/);
    } finally {
      p.close();
    }
  });

  it('loadPlan testFaults and LOOM_TEST_FAULT_TICKS arm it at load', async () => {
    expect(faultsFromEnv(undefined)).toBeNull();
    expect(faultsFromEnv('3')).toEqual({ ticks: 3, after: 0 });
    expect(faultsFromEnv('1@4')).toEqual({ ticks: 1, after: 4 });
    expect(() => faultsFromEnv('x')).toThrow(/LOOM_TEST_FAULT_TICKS must be N or N@K/);
    const x = requestInputs(reference.plan, 'mlp-c', 1, 9);
    const a = await loadPlan(planDir, { backend: 'cpu', threads: 1, testFaults: { ticks: 1 } });
    try {
      await expect(a.runTick({ 'mlp-c': x })).rejects.toThrow(/injected fault/);
      await expect(a.runTick({ 'mlp-c': x })).resolves.toBeDefined();
    } finally {
      a.close();
    }
    const old = process.env.LOOM_TEST_FAULT_TICKS;
    process.env.LOOM_TEST_FAULT_TICKS = '1@1';
    try {
      const b = await loadPlan(planDir, { backend: 'cpu', threads: 1 });
      try {
        await expect(b.runTick({ 'mlp-c': x })).resolves.toBeDefined();
        await expect(b.runTick({ 'mlp-c': x })).rejects.toThrow(/injected fault/);
        await expect(b.runTick({ 'mlp-c': x })).resolves.toBeDefined();
      } finally {
        b.close();
      }
    } finally {
      if (old === undefined) delete process.env.LOOM_TEST_FAULT_TICKS;
      else process.env.LOOM_TEST_FAULT_TICKS = old;
    }
  });

  it('scheduler: exactly the failed tick’s requests get 500 naming it; health is unready until a tick succeeds', async () => {
    const p = await loadPlan(planDir, { backend: 'cpu', threads: 1 });
    const ticks: TickReport[] = [];
    const s = new TickScheduler(p, { failureHoldMs: 60_000, observer: { onTick: (r) => ticks.push(r) } });
    try {
      expect(s.health().ready).toBe(true);
      p.testInjectFault(1, 1); // the second tick fails
      const tenants = ['mlp-a', 'mlp-b', 'lstm-a', 'enc-a'] as const;
      const jobs = [];
      for (let round = 0; round < 3; round++) {
        const batch = tenants.map((t, i) => {
          const x = requestInputs(p.plan, t, 1, round * 10 + i);
          return {
            t,
            x,
            answer: s.submit(t, x).then(
              (out) => ({ out }),
              (e: unknown) => ({ e }),
            ),
          };
        });
        jobs.push(...batch);
        await Promise.all(batch.map((j) => j.answer)); // one tick per round
        if (round === 1) {
          const h = s.health();
          expect(h).toMatchObject({ ready: false, failedTick: 2 });
          expect(h.error).toMatch(/injected fault/);
        }
      }
      expect(ticks.map((r) => r.ok)).toEqual([true, false, true]);
      expect(ticks[1]!.requests).toBe(tenants.length);
      let failed = 0;
      for (const j of jobs) {
        const r = await j.answer;
        if ('e' in r) {
          failed++;
          expect(r.e).toBeInstanceOf(ServeError);
          expect((r.e as ServeError).status).toBe(500);
          expect((r.e as Error).message).toMatch(/^the backend failed in tick 2, which carried this request: launch \d+ .*injected fault/);
        } else {
          expect(sameTensors(r.out, await expectedOutputs(reference, j.t, j.x))).toBe(true);
        }
      }
      expect(failed).toBe(tenants.length);
      expect(s.health().ready).toBe(true); // tick 3 succeeded
      expect(s.stats).toMatchObject({ accepted: 12, answered: 8, failed: 4 });
    } finally {
      await s.close();
      p.close();
    }
  });

  it('server: 500 naming the tick, /v2/health/ready 503 during the outage and 200 after recovery (or after the hold)', async () => {
    const p = await loadPlan(planDir, { backend: 'cpu', threads: 1 });
    const server: LoomServer = createServer({ runner: p, scheduler: { failureHoldMs: 400 } });
    try {
      const url = await server.listen(0, '127.0.0.1');
      const get = async (route: string) => (await fetch(`${url}${route}`, { signal: AbortSignal.timeout(5000) })).status;
      const infer = async (seed: number) => {
        const x = requestInputs(p.plan, 'mlp-b', 2, seed);
        const r = await fetch(`${url}/v2/models/mlp-b/infer`, { method: 'POST', body: oipBody(x), signal: AbortSignal.timeout(5000) });
        const body = (await r.json()) as { outputs?: OipOutput[]; error?: string };
        if (r.status === 200) expect(sameValues(body.outputs![0]!, (await expectedOutputs(reference, 'mlp-b', x)).output!)).toBe(true);
        return { status: r.status, error: body.error };
      };
      expect(await get('/v2/health/ready')).toBe(200);
      expect((await infer(1)).status).toBe(200);
      p.testInjectFault(2);
      const first = await infer(2);
      expect(first.status).toBe(500);
      expect(first.error).toMatch(/^the backend failed in tick 2, which carried this request: .*injected fault/);
      expect(await get('/v2/health/ready')).toBe(503);
      expect(await get('/v2/models/mlp-b/ready')).toBe(503);
      expect(await get('/v2/health/live')).toBe(200);
      expect((await infer(3)).error).toMatch(/tick 3/); // the outage goes on: still unready
      expect(await get('/v2/health/ready')).toBe(503);
      expect((await infer(4)).status).toBe(200); // the backend recovered: ready at once
      expect(await get('/v2/health/ready')).toBe(200);
      // without traffic, readiness comes back after failureHoldMs
      p.testInjectFault(1);
      expect((await infer(5)).status).toBe(500);
      expect(await get('/v2/health/ready')).toBe(503);
      const t0 = performance.now();
      while ((await get('/v2/health/ready')) !== 200 && performance.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 50));
      expect(await get('/v2/health/ready')).toBe(200);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(300);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toMatch(/loom_ticks_total\{result="error"\} 3/);
    } finally {
      await server.shutdown();
    }
  });
});
