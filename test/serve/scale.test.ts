// Serving at tenant scale, sized for CI: 1,000 tiny tenants compiled once (about 3 s), the scheduler's work
// per tick counted (not timed) against the tenants with queued work, admission and queues per tenant among
// 1,000 tenants, `loom serve`'s start-up and a fleet-level /metrics page, and the /metrics size at 10,000
// tenants (the metrics alone, over a plan-shaped fleet of ids: no compile needed).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LaunchPlan } from '../../codegen/index.js';
import { type LoadedPlan, loadPlan } from '../../runtime/index.js';
import { ServeMetrics, type TickRunner, TickScheduler, createServer, topEntries } from '../../runtime/serve/index.js';
import { compileFleet } from '../../src/fleet/compile.js';
import { exampleInputs } from '../../src/fleet/inputs.js';
import { writeTenantFleet } from '../../bench/tenant-fleet.js';
import { oipBody } from './fleet.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TENANTS = 1000;
let dir: string;
let loaded: LoadedPlan;
let compileS = 0;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'loom-scale-'));
  const fleet = writeTenantFleet(dir, { count: TENANTS, sizes: [8, 16, 4], sloMs: 1000 });
  const t0 = performance.now();
  await compileFleet(fleet.manifest, path.join(dir, 'plan'), { nvcc: 'off' });
  compileS = (performance.now() - t0) / 1000;
  loaded = await loadPlan(path.join(dir, 'plan'), { backend: 'cpu' });
}, 120_000);
afterAll(() => {
  loaded?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const request = (plan: LaunchPlan, id: string, seed: number) => exampleInputs(plan.tenants.find((t) => t.id === id)!, 1, seed);

// The real plan, seen through a runner whose plan lists only the first `tenants` of them: the same ticks run,
// the scheduler just knows fewer (idle) tenants.
function runnerOver(tenants: number): TickRunner {
  return { plan: { ...loaded.plan, tenants: loaded.plan.tenants.slice(0, tenants) }, runTick: (inputs) => loaded.runTick(inputs) };
}

// Rounds of `active` tenants with one request each (all submitted at once, so one tick a round).
async function rounds(s: TickScheduler, active: readonly string[], n: number): Promise<void> {
  for (let r = 0; r < n; r++) await Promise.all(active.map((id, i) => s.submit(id, request(loaded.plan, id, r * 100 + i))));
}

describe(`tenant scale (${TENANTS} tiny tenants)`, () => {
  it('compiles into a few launches per tick', () => {
    console.log(`compiled ${TENANTS} tenants in ${compileS.toFixed(1)} s: ${loaded.plan.launches.length} launches per tick`);
    expect(loaded.plan.tenants).toHaveLength(TENANTS);
    expect(loaded.plan.launches.length).toBeLessThanOrEqual(6); // 2 GEMM layers and an activation, all tenants in each
  });

  it("the scheduler's work per tick follows the tenants with work, not the idle ones", async () => {
    const active = loaded.plan.tenants.slice(0, 8).map((t) => t.id);
    const few = new TickScheduler(runnerOver(10));
    const many = new TickScheduler(runnerOver(TENANTS));
    await rounds(few, active, 5);
    await rounds(many, active, 5);
    expect(many.work.ticks).toBe(5);
    expect(many.work).toEqual(few.work); // 990 more idle tenants: not one more visit
    expect(many.work.tenantVisits).toBe(5 * active.length);
    expect([...many.queued()]).toEqual([]); // drained queues leave the active set
  });

  it('admission and queues stay per tenant among 1,000: a full quota refuses only its own tenant', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const held: TickRunner = {
      plan: loaded.plan,
      runTick: async (inputs) => {
        await gate;
        return loaded.runTick(inputs);
      },
    };
    const s = new TickScheduler(held, { queueTicks: 2 });
    const [a, b] = [loaded.plan.tenants[3]!.id, loaded.plan.tenants[997]!.id];
    const first = s.submit(a, request(loaded.plan, a, 1)); // taken by the first tick, which waits at the gate
    await new Promise((r) => setImmediate(r));
    const queued = [s.submit(a, request(loaded.plan, a, 2)), s.submit(a, request(loaded.plan, a, 3))]; // the quota: 2 rows
    await expect(s.submit(a, request(loaded.plan, a, 4))).rejects.toMatchObject({ status: 429 });
    const other = s.submit(b, request(loaded.plan, b, 5));
    expect(new Map(s.queued())).toEqual(
      new Map([
        [a, { requests: 2, rows: 2 }],
        [b, { requests: 1, rows: 1 }],
      ]),
    );
    release();
    const outs = await Promise.all([first, ...queued, other]);
    expect(outs).toHaveLength(4);
    // each answer is its own tenant's: the same input through a direct tick
    const direct = await loaded.runTick({ [b]: request(loaded.plan, b, 5) });
    expect(Array.from(outs[3]!.output!.data as Float32Array)).toEqual(Array.from(direct[b]!.output!.data as Float32Array));
    expect(s.work.tenantVisits).toBeLessThanOrEqual(s.work.ticks * 2);
    await s.close();
  });

  it('a cancelled request leaves its tenant idle again', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const s = new TickScheduler({ plan: loaded.plan, runTick: async (x) => (await gate, loaded.runTick(x)) });
    const id = loaded.plan.tenants[500]!.id;
    const first = s.submit(id, request(loaded.plan, id, 1));
    await new Promise((r) => setImmediate(r));
    const ac = new AbortController();
    const dropped = s.submit(id, request(loaded.plan, id, 2), { signal: ac.signal });
    expect([...s.queued()].map(([t]) => t)).toEqual([id]);
    ac.abort();
    await expect(dropped).rejects.toMatchObject({ status: 499 });
    expect([...s.queued()]).toEqual([]);
    release();
    await first;
    await s.close();
  });

  it('loom serve starts over 1,000 tenants, answers, and its default /metrics is fleet-level', async () => {
    const t0 = performance.now();
    const server = createServer({ runner: await loadPlan(path.join(dir, 'plan'), { backend: 'cpu' }), logger: false });
    const url = await server.listen(0, '127.0.0.1');
    try {
      const id = loaded.plan.tenants[321]!.id;
      const r = await fetch(`${url}/v2/models/${id}/infer`, { method: 'POST', body: oipBody(request(loaded.plan, id, 9)) });
      expect(r.status).toBe(200);
      const startMs = performance.now() - t0;
      const missing = await fetch(`${url}/v2/models/nope/infer`, { method: 'POST', body: '{}' });
      const err = ((await missing.json()) as { error: string }).error;
      expect(err).toContain(`this server has ${TENANTS}:`);
      expect(err.length).toBeLessThan(600); // a few names, not 1,000
      const text = await (await fetch(`${url}/metrics`)).text();
      console.log(`serve over ${TENANTS} tenants: first answer ${startMs.toFixed(0)} ms after start; /metrics ${text.length} bytes`);
      expect(text).toMatch(/^loom_requests_total\{code="200"\} 1$/m);
      expect(text).toMatch(/^loom_requests_total\{code="404"\} 1$/m);
      expect(text).toMatch(/^loom_queue_depth 0$/m);
      expect(text).toMatch(/^loom_tenants_queued 0$/m);
      // the only tenant labels are the bounded top-K gauges'
      const tenantLines = text.split('\n').filter((l) => l.includes('tenant="'));
      expect(tenantLines.every((l) => l.startsWith('loom_top_tenant_'))).toBe(true);
      expect(text.length).toBeLessThan(20_000);
    } finally {
      await server.shutdown();
    }
  });
});

// A fleet of `n` tenant ids shaped like a LaunchPlan for ServeMetrics (which reads ids, arenas, launches).
function idPlan(n: number): LaunchPlan {
  const tenants = Array.from({ length: n }, (_, i) => ({ id: `tenant-${String(i).padStart(5, '0')}` }));
  return { tenants, launches: [], arenas: { weights: 1, act: 1, io: 1 } } as unknown as LaunchPlan;
}

// Every tenant answered, refused and late once: all the per-tenant series a busy day creates.
async function busyScrape(plan: LaunchPlan, perTenant: boolean): Promise<string> {
  const queued = new Map(plan.tenants.slice(0, 50).map((t, i) => [t.id, { requests: i + 1, rows: i + 1 }]));
  const m = new ServeMetrics(
    { plan, backend: 'cpu', queueDepth: (t) => queued.get(t) ?? { requests: 0, rows: 0 }, queued: () => queued.entries() },
    { perTenant },
  );
  for (const t of plan.tenants) {
    m.observeRequest(t.id, 200, 0.003);
    m.observeRequest(t.id, 429, 0.0001);
    m.onReject(t.id, 'slo');
    m.onAnswered(t.id, { waitMs: 1, totalMs: 30, missedSlo: true });
  }
  m.onReject(plan.tenants[7]!.id, 'quota'); // the most refused
  return m.text();
}

describe('/metrics at 10,000 tenants', () => {
  const plan = idPlan(10_000);

  it('a default scrape is fleet-level and at most 200 KB; the top-K gauges name at most K tenants', async () => {
    const text = await busyScrape(plan, false);
    console.log(`/metrics at 10,000 tenants: ${text.length} bytes by default`);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(200 * 1024);
    expect(text).toMatch(/^loom_requests_total\{code="200"\} 10000$/m);
    expect(text).toMatch(/^loom_admission_rejected_total\{reason="slo"\} 10000$/m);
    expect(text).toMatch(/^loom_slo_missed_total 10000$/m);
    expect(text).toMatch(/^loom_queue_depth 1275$/m); // 1 + 2 + … + 50
    expect(text).toMatch(/^loom_tenants_queued 50$/m);
    expect(text).toMatch(/^loom_top_tenant_rejected\{tenant="tenant-00007"\} 2$/m);
    expect(text).toMatch(/^loom_top_tenant_queue_rows\{tenant="tenant-00049"\} 50$/m);
    expect(text.split('\n').filter((l) => l.startsWith('loom_top_tenant_queue_rows{'))).toHaveLength(10);
  });

  it('--metrics-per-tenant gives every tenant its series (what the default spares a scrape)', async () => {
    const text = await busyScrape(plan, true);
    console.log(`/metrics at 10,000 tenants: ${text.length} bytes with per-tenant series`);
    expect(text).toContain('loom_requests_total{tenant="tenant-09999",code="200"} 1');
    expect(text).toContain('loom_queue_depth{tenant="tenant-09999"} 0');
    expect(Buffer.byteLength(text)).toBeGreaterThan(200 * 1024);
  });

  it('topEntries keeps the k largest, ties by name, positive values only', () => {
    const e: Array<[string, number]> = [
      ['d', 3],
      ['a', 1],
      ['c', 3],
      ['b', 0],
      ['e', 7],
    ];
    expect(topEntries(e, 3)).toEqual([
      ['e', 7],
      ['c', 3],
      ['d', 3],
    ]);
    expect(topEntries(e, 10)).toEqual([
      ['e', 7],
      ['c', 3],
      ['d', 3],
      ['a', 1],
    ]);
    expect(topEntries(e, 0)).toEqual([]);
  });
});

describe('loom serve metrics flags', () => {
  const loom = (...args: string[]) => spawnSync(process.execPath, [path.join(ROOT, 'bin/loom.js'), 'serve', ...args], { encoding: 'utf8', timeout: 30_000 });

  it('--help documents them', () => {
    const r = loom('--help');
    expect(r.stdout).toContain('--metrics-per-tenant');
    expect(r.stdout).toContain('--metrics-top-k <n>');
  });

  it('a bad --metrics-top-k is refused with one line naming it, before the plan loads', () => {
    const r = loom(path.join(dir, 'plan'), '--metrics-top-k', '-1');
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain("--metrics-top-k must be a non-negative integer, got '-1'");
  });

  it('the ServeMetrics topK option is checked too', () => {
    expect(() => new ServeMetrics({ plan: idPlan(2), backend: 'cpu', queueDepth: () => ({ requests: 0, rows: 0 }) }, { topK: 1.5 })).toThrow(
      'topK must be an integer >= 0',
    );
  });
});
