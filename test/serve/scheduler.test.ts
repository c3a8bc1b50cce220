// The tick scheduler without HTTP, on the real CPU backend: batching whole requests up to maxBatch rows per
// tenant, dynamic occupancy (only tenants with work are in a tick), isolation of a bad request, recovery
// from a backend failure, admission (quota, SLO) and draining.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tensor } from '../../ir/tensor.js';
import { type LoadedPlan, type TickInputs, loadPlan } from '../../runtime/index.js';
import { ServeError, type TickReport, type TickRunner, TickScheduler, concatRows, splitRows } from '../../runtime/serve/index.js';
import { compileTestFleet, expectedOutputs, requestInputs } from './fleet.js';

let loaded: LoadedPlan;

beforeAll(async () => {
  loaded = await loadPlan(await compileTestFleet({ 'mlp-c': 1000 }), { backend: 'cpu' });
});
afterAll(() => loaded?.close());

function bits(t: Tensor): number[] {
  return Array.from(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
}

// setTimeout counts the event loop's whole milliseconds and may fire a fraction of one early on performance.now,
// the scheduler's clock (a 40 ms delay was once timed 39.8 ms): wait out the rest on that clock.
async function sleepAtLeast(ms: number): Promise<void> {
  const t0 = performance.now();
  for (let left = ms; left > 0; left = ms - (performance.now() - t0)) await new Promise((r) => setTimeout(r, Math.ceil(left)));
}

// A runner over the real plan that records each tick's inputs and can fail or slow chosen ticks. Like a
// LoadedPlan it runs ticks one at a time in call order (the scheduler may hand it the next one early).
function spy(opts: { failTick?: number; delayMs?: number } = {}) {
  const ticks: TickInputs[] = [];
  const seen = { handedOver: 0, maxHandedOver: 0, running: 0, maxRunning: 0 }; // ticks called but unsettled; ticks executing
  let queue: Promise<unknown> = Promise.resolve();
  const runner: TickRunner = {
    plan: loaded.plan,
    runTick(inputs) {
      ticks.push(inputs);
      const n = ticks.length;
      seen.maxHandedOver = Math.max(seen.maxHandedOver, ++seen.handedOver);
      const run = async () => {
        seen.maxRunning = Math.max(seen.maxRunning, ++seen.running);
        try {
          if (opts.delayMs) await sleepAtLeast(opts.delayMs);
          if (n === opts.failTick) throw new Error('simulated device fault');
          return await loaded.runTick(inputs);
        } finally {
          seen.running--;
          seen.handedOver--;
        }
      };
      const tick = queue.then(run, run);
      queue = tick.catch(() => undefined);
      return tick;
    },
  };
  return { runner, ticks, seen };
}

describe('batching helpers', () => {
  it('concatRows / splitRows round-trip along axis 0 and axis 1', () => {
    const a = requestInputs(loaded.plan, 'lstm-a', 1, 1).input!; // [3, 1, 6], rows on axis 1
    const b = requestInputs(loaded.plan, 'lstm-a', 2, 2).input!;
    const ab = concatRows([a, b], 1);
    expect(ab.shape).toEqual([3, 3, 6]);
    const [a2, b2] = splitRows(ab, 1, [1, 2]);
    expect(bits(a2!)).toEqual(bits(a));
    expect(bits(b2!)).toEqual(bits(b));
    const x = requestInputs(loaded.plan, 'enc-a', 1, 3).input_ids!;
    const y = requestInputs(loaded.plan, 'enc-a', 1, 4).input_ids!;
    const [x2, y2] = splitRows(concatRows([x, y], 0), 0, [1, 1]);
    expect(bits(x2!)).toEqual(bits(x));
    expect(bits(y2!)).toEqual(bits(y));
  });
});

describe('TickScheduler', () => {
  it('batches concurrent requests into one tick per maxBatch rows and splits the answers back', async () => {
    const { runner, ticks } = spy();
    const reports: TickReport[] = [];
    const s = new TickScheduler(runner, { observer: { onTick: (r) => reports.push(r) } });
    // mlp-a (maxBatch 4): 1 + 2 + 1 rows fit one tick, the next 3 rows go to the second; lstm-a rides along once
    const reqs = [
      { id: 'mlp-a', x: requestInputs(loaded.plan, 'mlp-a', 1, 1) },
      { id: 'mlp-a', x: requestInputs(loaded.plan, 'mlp-a', 2, 2) },
      { id: 'mlp-a', x: requestInputs(loaded.plan, 'mlp-a', 1, 3) },
      { id: 'mlp-a', x: requestInputs(loaded.plan, 'mlp-a', 3, 4) },
      { id: 'lstm-a', x: requestInputs(loaded.plan, 'lstm-a', 2, 5) },
    ];
    const got = await Promise.all(reqs.map((r) => s.submit(r.id, r.x)));
    expect(ticks).toHaveLength(2);
    expect(Object.keys(ticks[0]!).sort()).toEqual(['lstm-a', 'mlp-a']); // only tenants with work
    expect(ticks[0]!['mlp-a']!.input!.shape).toEqual([4, 32]);
    expect(Object.keys(ticks[1]!)).toEqual(['mlp-a']);
    expect(ticks[1]!['mlp-a']!.input!.shape).toEqual([3, 32]);
    expect(reports.map((r) => [r.tenants, r.requests, r.rows, r.ok])).toEqual([
      [2, 4, 6, true],
      [1, 1, 3, true],
    ]);
    expect(reports[0]!.capacityRows).toBe(4 + 4 + 2 + 3 + 2);
    expect(reports.map((r) => r.maxTenantRows)).toEqual([4, 3]); // mlp-a's 4 rows, then its 3
    for (const [i, r] of reqs.entries()) {
      const want = await expectedOutputs(loaded, r.id, r.x);
      expect(got[i]!.output!.shape).toEqual(want.output!.shape);
      expect(bits(got[i]!.output!), `request ${i}`).toEqual(bits(want.output!));
    }
  });

  it("a bad request fails alone at submit; the others' results are bit-identical to a tick without it", async () => {
    const s = new TickScheduler(spy().runner);
    const a = requestInputs(loaded.plan, 'mlp-a', 2, 10);
    const e = requestInputs(loaded.plan, 'enc-a', 1, 11);
    const clean = await Promise.all([s.submit('mlp-a', a), s.submit('enc-a', e)]);
    const bad = { input: requestInputs(loaded.plan, 'mlp-c', 1, 12).input! }; // mlp-c's tensor sent to mlp-b
    const results = await Promise.allSettled([
      s.submit('mlp-a', a),
      s.submit('mlp-b', bad),
      s.submit('enc-a', e),
      s.submit('enc-a', { input_ids: e.input_ids! }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected']);
    const err1 = (results[1] as PromiseRejectedResult).reason as ServeError;
    expect(err1.status).toBe(400);
    expect(err1.message).toContain("input 'input'");
    expect(err1.message).toContain('[1,16]');
    expect(((results[3] as PromiseRejectedResult).reason as ServeError).message).toContain("'attention_mask'");
    expect(bits((results[0] as PromiseFulfilledResult<Record<string, Tensor>>).value.output!)).toEqual(bits(clean[0]!.output!));
    const enc = (results[2] as PromiseFulfilledResult<Record<string, Tensor>>).value;
    expect(bits(enc.last_hidden_state!)).toEqual(bits(clean[1]!.last_hidden_state!));
    await expect(s.submit('nobody', a)).rejects.toMatchObject({ status: 404 });
  });

  it("a backend failure fails only that tick's requests with 500, and the next tick runs", async () => {
    const { runner } = spy({ failTick: 1 });
    const reports: TickReport[] = [];
    const s = new TickScheduler(runner, { observer: { onTick: (r) => reports.push(r) } });
    const x = requestInputs(loaded.plan, 'mlp-b', 1, 20);
    const first = await Promise.allSettled([s.submit('mlp-b', x), s.submit('mlp-c', requestInputs(loaded.plan, 'mlp-c', 1, 21))]);
    for (const r of first) {
      expect(r.status).toBe('rejected');
      const err = (r as PromiseRejectedResult).reason as ServeError;
      expect(err.status).toBe(500);
      expect(err.message).toContain('simulated device fault');
      expect(err.message).toContain('tick 1');
    }
    const again = await s.submit('mlp-b', x);
    expect(bits(again.output!)).toEqual(bits((await expectedOutputs(loaded, 'mlp-b', x)).output!));
    expect(reports.map((r) => r.ok)).toEqual([false, true]);
  });

  it('admission: a full quota and an unmeetable SLO are refused at once with 429 and Retry-After', async () => {
    // ticks take >= 40 ms here; mlp-c (maxBatch 2) may queue 1 tick of rows; its SLO is 1000 ms
    const s = new TickScheduler(spy({ delayMs: 40 }).runner, { queueTicks: 1 });
    const x = requestInputs(loaded.plan, 'mlp-c', 1, 30);
    const accepted = [s.submit('mlp-c', x)]; // idle: starts a tick at once
    await new Promise((r) => setImmediate(r));
    accepted.push(s.submit('mlp-c', x), s.submit('mlp-c', x)); // 2 rows queued: the quota
    await expect(s.submit('mlp-c', x)).rejects.toMatchObject({ status: 429, message: expect.stringContaining('quota of 2') });
    await Promise.all(accepted);
    expect(s.estimateTickMs()).toBeGreaterThanOrEqual(40);

    // sloMs 60 with ~40 ms ticks: one request can wait for the running tick, a second tick's worth cannot
    const tight = new TickScheduler(spy({ delayMs: 40 }).runner, { defaultSloMs: 60, queueTicks: 8 });
    const y = requestInputs(loaded.plan, 'mlp-a', 1, 31);
    await tight.submit('mlp-a', y); // learn the tick time
    const busy = [tight.submit('mlp-a', y), tight.submit('mlp-b', y)];
    await new Promise((r) => setTimeout(r, 30)); // the tick is running, ~10 ms left
    busy.push(tight.submit('mlp-a', y)); // next tick: done in ~50 ms < 60
    const refused = tight.submit('mlp-a', requestInputs(loaded.plan, 'mlp-a', 4, 32)); // 5 rows queued > maxBatch 4: a tick too late
    await expect(refused).rejects.toBeInstanceOf(ServeError);
    const err = (await refused.catch((e: unknown) => e)) as ServeError;
    expect(err.status).toBe(429);
    expect(err.message).toContain('SLO of 60 ms');
    expect(err.retryAfterS).toBeGreaterThanOrEqual(1);
    await Promise.all(busy);
  });

  it('admission without an explicit quota: a tenant with an SLO is refused only by its predicted completion once ticks are timed', async () => {
    // mlp-c: maxBatch 2; ticks take >= 40 ms; SLO 5 s: twelve rows (6 ticks, ~240 ms) fit it
    const x = requestInputs(loaded.plan, 'mlp-c', 1, 40);
    const burst = async (s: TickScheduler, n: number) => {
      const first = s.submit('mlp-c', x); // idle: starts a tick at once
      await new Promise((r) => setImmediate(r));
      const rest = Array.from({ length: n }, () =>
        s.submit('mlp-c', x).then(
          () => 'ok',
          (e: ServeError) => e.message,
        ),
      );
      await first;
      return Promise.all(rest);
    };
    // untimed (no tick has finished yet): the default quota of 4 batches = 8 rows holds
    const fresh = new TickScheduler(spy({ delayMs: 40 }).runner, { defaultSloMs: 5000 });
    const untimed = await burst(fresh, 10);
    expect(untimed.filter((r) => r === 'ok')).toHaveLength(8);
    expect(untimed.filter((r) => r.includes('quota of 8'))).toHaveLength(2);
    // timed: the same burst and more is admitted, since every request's predicted completion is within 5 s
    expect(fresh.estimateTickMs()).toBeGreaterThanOrEqual(40);
    expect(await burst(fresh, 12)).toEqual(Array(12).fill('ok'));
    // an explicit queueTicks is a quota for every tenant, timed or not
    const capped = new TickScheduler(spy({ delayMs: 40 }).runner, { defaultSloMs: 5000, queueTicks: 4 });
    await capped.submit('mlp-c', x);
    const r = await burst(capped, 12);
    expect(r.filter((m) => m.includes('quota of 8'))).toHaveLength(4);
  });

  // Admission predicts completion (issue 12 item 6) on a fake clock: the runner's ticks take exactly the ms the
  // test says, so predicted and actual completion times are exact.
  function timed(sloMs: number) {
    let now = 0;
    const gates: Array<() => void> = [];
    let chain: Promise<unknown> = Promise.resolve();
    const runner: TickRunner = {
      plan: loaded.plan,
      runTick(inputs) {
        const tick = chain.then(async () => {
          await new Promise<void>((r) => gates.push(r));
          return loaded.runTick(inputs);
        });
        chain = tick.catch(() => undefined);
        return tick;
      },
    };
    const answered: Array<{ tenant: string; totalMs: number; missedSlo: boolean }> = [];
    let settled = 0;
    const s = new TickScheduler(runner, {
      clock: () => now,
      defaultSloMs: sloMs,
      queueTicks: 64, // the quota stays out of the way: only the SLO refuses here
      observer: { onTick: () => settled++, onAnswered: (tenant, r) => answered.push({ tenant, ...r }) },
    });
    const until = async (cond: () => boolean) => {
      for (let i = 0; i < 10_000 && !cond(); i++) await new Promise((r) => setImmediate(r));
      expect(cond()).toBe(true);
    };
    // The running tick ends `ms` after it started (the clock moves by what is left of it).
    let tickStart = 0;
    const running = () => until(() => gates.length > 0);
    const finish = async (ms: number) => {
      await running();
      now = Math.max(now, tickStart + ms);
      const before = settled;
      gates.shift()!();
      await until(() => settled > before);
      tickStart = now;
    };
    const advance = (ms: number) => {
      now += ms;
    };
    return { s, answered, running, finish, advance, at: () => now };
  }

  async function refusal(p: Promise<unknown>): Promise<ServeError | null> {
    return p.then(
      () => null,
      (e: unknown) => e as ServeError,
    );
  }

  it('admission: a burst whose predicted completion fits the SLO gets no 429, though a slow tick is in the history', async () => {
    const t = timed(60);
    const x = requestInputs(loaded.plan, 'mlp-a', 1, 70);
    // history: seven 10 ms ticks and one 40 ms tick (the old p90-per-tick estimate said 40 ms for every tick)
    for (const ms of [10, 10, 10, 40, 10, 10, 10, 10]) {
      const p = t.s.submit('mlp-a', x);
      await t.finish(ms);
      await p;
    }
    expect(t.s.estimateTickMs()).toBe(10);
    const first = t.s.submit('mlp-a', x); // idle: its tick starts now
    await t.running();
    // 12 one-row requests for mlp-a (maxBatch 4): 3 ticks after the running one, done at 10 + 3 * 10 = 40 ms < 60
    expect(t.s.predictCompletionMs('mlp-a', 12)).toBe(40);
    const burst = Array.from({ length: 12 }, (_, i) => t.s.submit('mlp-a', requestInputs(loaded.plan, 'mlp-a', 1, 71 + i)));
    const results = Promise.all(burst.map(refusal));
    for (let i = 0; i < 4; i++) await t.finish(10);
    await first;
    expect(await results).toEqual(Array(12).fill(null));
    const last = t.answered.slice(-12);
    expect(last.map((a) => a.totalMs)).toEqual([...Array(4).fill(20), ...Array(4).fill(30), ...Array(4).fill(40)]);
    expect(last.every((a) => !a.missedSlo)).toBe(true);
  });

  it('admission: a burst that does not fit is refused only past its predicted SLO miss, with Retry-After', async () => {
    const t = timed(35);
    const x = requestInputs(loaded.plan, 'mlp-a', 1, 90);
    for (let i = 0; i < 3; i++) {
      const p = t.s.submit('mlp-a', x);
      await t.finish(10);
      await p;
    }
    const first = t.s.submit('mlp-a', x);
    await t.running();
    // the running tick ends at 10 ms; mlp-a's rows 1-4 at 20, 5-8 at 30 (<= 35), 9-16 at 40 and 50: refused
    const burst = Array.from({ length: 16 }, (_, i) => t.s.submit('mlp-a', requestInputs(loaded.plan, 'mlp-a', 1, 91 + i)));
    const other = t.s.submit('mlp-b', requestInputs(loaded.plan, 'mlp-b', 1, 120)); // its own queue: 20 ms
    const outcomes = burst.map(refusal);
    const refusedEarly = await Promise.all(outcomes.slice(8));
    for (const e of refusedEarly) {
      expect(e?.status).toBe(429);
      expect(e?.message).toContain('SLO of 35 ms');
      expect(e?.retryAfterS).toBeGreaterThanOrEqual(1);
    }
    // 5 ms into the running tick: 5 + 3 ticks = 35 ms for mlp-a's rows 9-12 (admitted), 45 ms for the 13th
    t.advance(5);
    const late = Array.from({ length: 5 }, (_, i) => t.s.submit('mlp-a', requestInputs(loaded.plan, 'mlp-a', 1, 130 + i)));
    const lateOutcomes = late.map(refusal);
    expect((await lateOutcomes[4])?.status).toBe(429);
    for (let i = 0; i < 4; i++) await t.finish(10);
    await Promise.all([first, other]);
    expect(await Promise.all(outcomes.slice(0, 8))).toEqual(Array(8).fill(null));
    expect(await Promise.all(lateOutcomes.slice(0, 4))).toEqual(Array(4).fill(null));
    const burstAnswers = t.answered.filter((a) => a.tenant === 'mlp-a').slice(-12);
    expect(burstAnswers.map((a) => a.totalMs)).toEqual([20, 20, 20, 20, 30, 30, 30, 30, 35, 35, 35, 35]);
    expect(t.answered.every((a) => !a.missedSlo)).toBe(true);
  });

  it('pipelining: the next tick is handed over while one runs, never two running at once; off, one at a time', async () => {
    for (const pipeline of [true, false]) {
      const { runner, ticks, seen } = spy({ delayMs: 5 });
      const s = new TickScheduler(runner, { pipeline });
      // 5 single-row requests per tenant for two tenants of maxBatch 4 and 2: several ticks' worth
      const reqs = Array.from({ length: 10 }, (_, i) => ({
        id: i % 2 ? 'mlp-a' : 'mlp-c',
        x: requestInputs(loaded.plan, i % 2 ? 'mlp-a' : 'mlp-c', 1, 60 + i),
      }));
      const got = await Promise.all(reqs.map((r) => s.submit(r.id, r.x)));
      expect(seen.maxRunning, `pipeline ${pipeline}`).toBe(1);
      expect(seen.maxHandedOver, `pipeline ${pipeline}`).toBe(pipeline ? 2 : 1);
      expect(ticks.length).toBeGreaterThanOrEqual(3); // mlp-c's 5 rows need 3 ticks of 2
      for (const [i, r] of reqs.entries()) expect(bits(got[i]!.output!), `request ${i}`).toEqual(bits((await expectedOutputs(loaded, r.id, r.x)).output!));
      expect(s.stats).toEqual({ accepted: 10, answered: 10, failed: 0, cancelled: 0 });
    }
  });

  it('close() answers every accepted request, then refuses new ones with 503', async () => {
    const s = new TickScheduler(spy({ delayMs: 10 }).runner);
    const pending = Array.from({ length: 12 }, (_, i) =>
      s.submit(i % 2 ? 'mlp-a' : 'lstm-a', requestInputs(loaded.plan, i % 2 ? 'mlp-a' : 'lstm-a', 1, 40 + i)),
    );
    const drained = s.close();
    await expect(s.submit('mlp-a', requestInputs(loaded.plan, 'mlp-a', 1, 1))).rejects.toMatchObject({ status: 503 });
    const results = await Promise.allSettled(pending);
    await drained;
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    expect(s.queueDepth('mlp-a')).toEqual({ requests: 0, rows: 0 });
  });
});
