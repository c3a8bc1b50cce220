// The open-loop soak (CPU backend): arrivals at a fixed rate over loopback, mixing good requests, bad requests,
// clients that go away mid-body or before their answer, slow clients that send half a body and stall, and a
// test-only failing tick every few seconds (test/serve/soak.ts drives it). Checks: no accepted request lost or
// answered twice, every 200 equal to its one-at-a-time reference, 500s only for the failed ticks (one tick
// per armed fault), bad requests refused with a typed 4xx, RSS and open handles flat between the first and
// the last third. CI: ~45 s; LOOM_SOAK_MINUTES=30 for the long run (LOOM_SOAK_RATE to change the rate).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoadedPlan, loadPlan } from '../../runtime/index.js';
import { createServer } from '../../runtime/serve/index.js';
import { compileTestFleet } from './fleet.js';
import { activeHandles, buildPool, runSoak, thirds } from './soak.js';

const minutes = Number(process.env.LOOM_SOAK_MINUTES ?? 0);
const LONG = minutes > 0;
const SECONDS = LONG ? minutes * 60 : 45;
const RATE = Number(process.env.LOOM_SOAK_RATE ?? 60);
// RSS may grow this much between the first and last third (allocator and JIT settling; a leak of even a few
// hundred bytes per request exceeds it in the long run), open handles this much (sockets in flight)
const RSS_TOLERANCE = LONG ? 64 * 2 ** 20 : 48 * 2 ** 20;
const HANDLE_TOLERANCE = 25;

let planDir = '';
let reference: LoadedPlan;

beforeAll(async () => {
  planDir = await compileTestFleet();
  reference = await loadPlan(planDir, { backend: 'cpu', threads: 1 });
});
afterAll(() => reference?.close());

describe('soak (open loop, cpu backend)', () => {
  it(
    `${SECONDS} s at ${RATE} arrivals/s: nothing lost or duplicated, exact answers, RSS and handles flat`,
    async () => {
      const pool = await buildPool(reference, 8, 3);
      const runner = await loadPlan(planDir, { backend: 'cpu', threads: 1 });
      const server = createServer({ runner, scheduler: { failureHoldMs: 500 } });
      const url = await server.listen(0, '127.0.0.1');
      const port = Number(new URL(url).port);
      const handlesBefore = activeHandles();
      let report;
      let nativeFailedTicks = -1;
      try {
        report = await runSoak(server, port, runner, pool, {
          seconds: SECONDS,
          rate: RATE,
          seed: 42,
          mix: { good: 70, bad: 12, abort: 8, cut: 5, slow: 5 },
          faultEveryS: 7,
          slowStallMs: 1500,
          maxSlow: 16,
          clientTimeoutMs: 20_000,
        });
        nativeFailedTicks = Number(runner.backendInfo().failedTicks);
      } finally {
        await server.shutdown();
      }
      const stats = server.scheduler.stats;
      const rss = thirds(report.samples, 'rss', 5);
      const handles = thirds(report.samples, 'handles', 5);
      const mib = (b: number) => (b / 2 ** 20).toFixed(1);
      const figures = {
        seconds: Number(report.seconds.toFixed(1)),
        rate: RATE,
        arrivals: report.arrivals,
        good: report.good,
        bad: report.bad,
        abort: report.abort,
        cut: report.cut,
        slow: report.slow,
        faultsArmed: report.faultsArmed,
        failedTicks: nativeFailedTicks,
        failedTicksSeenByClients: report.failedTicks.length,
        server: stats,
        lost: report.good.lost + (stats.accepted - stats.answered - stats.failed - stats.cancelled),
        duplicated: report.good.duplicated,
        rssMiB: { first: mib(rss.first), last: mib(rss.last) },
        handles: { before: handlesBefore, first: handles.first.toFixed(1), last: handles.last.toFixed(1), after: activeHandles() },
        maxLatenessMs: Number(report.maxLatenessMs.toFixed(1)),
      };
      process.stdout.write(`soak: ${JSON.stringify(figures)}\n`);

      expect(report.good.lost).toBe(0);
      expect(report.good.duplicated).toBe(0);
      expect(report.good.wrong).toBe(0);
      expect(report.abort.wrong).toBe(0);
      expect(report.good.other).toEqual({});
      expect(report.bad.other).toEqual({});
      expect(report.good.ok).toBeGreaterThan(report.arrivals.good * 0.8);
      // every accepted request ended exactly one way
      expect(stats.accepted).toBe(stats.answered + stats.failed + stats.cancelled);
      // the 500s came from the armed faults only: one failed tick per fault (a failed tick whose clients had all
      // gone away answers nobody, so clients may see fewer)
      expect(nativeFailedTicks).toBe(report.faultsArmed);
      expect(report.failedTicks.length).toBeLessThanOrEqual(report.faultsArmed);
      expect(report.faultsArmed).toBeGreaterThan(0);
      expect(stats.failed).toBeGreaterThanOrEqual(report.good.failed500);
      expect(rss.last - rss.first).toBeLessThan(RSS_TOLERANCE);
      expect(handles.last - handles.first).toBeLessThan(HANDLE_TOLERANCE);
      runner.close();
    },
    (SECONDS + 120) * 1000,
  );
});
