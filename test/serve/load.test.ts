// Bounded load on a real server over loopback: a fixed number of requests from concurrent clients across
// every tenant, each answer checked bit for bit against the tenant's own expected output (a direct runTick
// of that request alone), none lost or duplicated; then an overloaded configuration (a slow backend, a
// small quota and a tight SLO) answers the excess with 429 + Retry-After at once, never with timeouts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tensor } from '../../ir/tensor.js';
import { type LoadedPlan, loadPlan } from '../../runtime/index.js';
import { type LoomServer, type ServeRunner, createServer } from '../../runtime/serve/index.js';
import { FLEET, type OipOutput, compileTestFleet, expectedOutputs, oipBody, requestInputs, sameValues } from './fleet.js';

let planDir: string;
let reference: LoadedPlan;
const servers: LoomServer[] = [];

beforeAll(async () => {
  planDir = await compileTestFleet();
  reference = await loadPlan(planDir, { backend: 'cpu' });
});
afterAll(async () => {
  for (const s of servers) await s.shutdown();
  reference?.close();
});

interface Job {
  readonly id: string; // the OIP request id: unique per request
  readonly tenant: string;
  readonly body: string;
  readonly want: Record<string, Tensor>;
}

async function makeJobs(count: number, tenants: readonly string[], seed: number): Promise<Job[]> {
  const jobs: Job[] = [];
  for (let i = 0; i < count; i++) {
    const tenant = tenants[i % tenants.length]!;
    const maxBatch = FLEET.find((t) => t.id === tenant)!.maxBatch;
    const rows = 1 + ((i * 7 + seed) % maxBatch);
    const x = requestInputs(reference.plan, tenant, rows, seed * 100_000 + i);
    const id = `job-${seed}-${i}`;
    jobs.push({ id, tenant, body: oipBody(x, { id }), want: await expectedOutputs(reference, tenant, x) });
  }
  return jobs;
}

interface Outcome {
  readonly job: Job;
  readonly status: number;
  readonly ms: number;
  readonly serverMs: number; // Server-Timing: the server's own arrival-to-response time
  readonly retryAfter: string | null;
  readonly body: { id?: string; model_name?: string; outputs?: OipOutput[]; error?: string };
}

// `clients` workers pull jobs off one shared list until it is empty; every fetch has a hard timeout.
async function drive(url: string, jobs: readonly Job[], clients: number): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const job = jobs[next++]!;
      const t0 = performance.now();
      const r = await fetch(`${url}/v2/models/${job.tenant}/infer`, {
        method: 'POST',
        body: job.body,
        headers: { 'content-type': 'application/json' },
        signal: AbortSignal.timeout(10_000),
      });
      const serverMs = Number(/dur=([\d.]+)/.exec(r.headers.get('server-timing') ?? '')?.[1]);
      outcomes.push({
        job,
        status: r.status,
        ms: performance.now() - t0,
        serverMs,
        retryAfter: r.headers.get('retry-after'),
        body: (await r.json()) as Outcome['body'],
      });
    }
  };
  await Promise.all(Array.from({ length: clients }, worker));
  return outcomes;
}

function checkAnswer(o: Outcome): void {
  expect(o.body.id).toBe(o.job.id);
  expect(o.body.model_name).toBe(o.job.tenant);
  const outs = o.body.outputs!;
  expect(outs.map((x) => x.name)).toEqual(Object.keys(o.job.want));
  for (const out of outs) expect(sameValues(out, o.job.want[out.name]!), `${o.job.id} ${out.name}`).toBe(true);
}

function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))]!;
}

describe('load', () => {
  it('600 requests from 12 concurrent clients across all tenants: each answered once, correctly', async () => {
    const server = createServer({ runner: await loadPlan(planDir, { backend: 'cpu' }), scheduler: { queueTicks: 16 }, logger: false });
    servers.push(server);
    const url = await server.listen(0, '127.0.0.1');
    const jobs = await makeJobs(
      600,
      FLEET.map((t) => t.id),
      1,
    );
    const t0 = performance.now();
    const outcomes = await drive(url, jobs, 12);
    const seconds = (performance.now() - t0) / 1000;
    expect(outcomes).toHaveLength(jobs.length);
    expect(new Set(outcomes.map((o) => o.body.id)).size).toBe(jobs.length); // none duplicated, none lost
    for (const o of outcomes) {
      expect(o.status, JSON.stringify(o.body)).toBe(200);
      checkAnswer(o);
    }
    const lat = outcomes.map((o) => o.ms);
    console.log(
      `load: ${jobs.length} requests in ${seconds.toFixed(2)} s = ${(jobs.length / seconds).toFixed(0)} req/s, p50 ${percentile(lat, 0.5).toFixed(1)} ms, p99 ${percentile(lat, 0.99).toFixed(1)} ms`,
    );
    // the ticks batched requests: fewer ticks than requests
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const ticks = Number(/loom_ticks_total\{result="ok"\} (\d+)/.exec(metrics)?.[1]);
    expect(ticks).toBeGreaterThan(0);
    expect(ticks).toBeLessThan(jobs.length);
  });

  it('overload answers the excess with 429 + Retry-After at once, and the accepted requests correctly', async () => {
    const loaded = await loadPlan(planDir, { backend: 'cpu' });
    const slow: ServeRunner = {
      plan: loaded.plan,
      backend: loaded.backend,
      runTick: async (inputs) => {
        await new Promise((r) => setTimeout(r, 15)); // a device far slower than the offered load
        return loaded.runTick(inputs);
      },
      close: () => loaded.close(),
    };
    const sloMs = 80;
    const server = createServer({ runner: slow, scheduler: { queueTicks: 1, defaultSloMs: sloMs }, logger: false, metrics: { perTenant: true } });
    servers.push(server);
    const url = await server.listen(0, '127.0.0.1');
    const jobs = await makeJobs(400, ['mlp-a', 'mlp-a', 'mlp-a', 'enc-a', 'lstm-a'], 2);
    const outcomes = await drive(url, jobs, 48);
    expect(outcomes).toHaveLength(jobs.length); // every request got an answer (a timeout would have thrown)
    const byStatus = new Map<number, Outcome[]>();
    for (const o of outcomes) byStatus.set(o.status, [...(byStatus.get(o.status) ?? []), o]);
    expect([...byStatus.keys()].sort()).toEqual([200, 429]);
    for (const o of byStatus.get(200)!) checkAnswer(o);
    for (const o of byStatus.get(429)!) {
      expect(Number(o.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(o.body.error).toMatch(/quota|SLO/);
    }
    // client-side times include this process's own event loop (48 clients beside the server); the server's
    // Server-Timing shows where the time went
    const refusedMs = byStatus.get(429)!.map((o) => o.serverMs);
    const acceptedMs = byStatus.get(200)!.map((o) => o.serverMs);
    const clientMs = outcomes.map((o) => o.ms);
    console.log(
      `overload: ${acceptedMs.length} accepted (server p50 ${percentile(acceptedMs, 0.5).toFixed(1)} ms, p99 ${percentile(acceptedMs, 0.99).toFixed(1)} ms), ${refusedMs.length} refused (server p50 ${percentile(refusedMs, 0.5).toFixed(2)} ms, p99 ${percentile(refusedMs, 0.99).toFixed(1)} ms); client p99 ${percentile(clientMs, 0.99).toFixed(1)} ms`,
    );
    expect(acceptedMs.length).toBeGreaterThan(0);
    expect(percentile(refusedMs, 0.5)).toBeLessThan(percentile(acceptedMs, 0.5)); // refused at admission, not after waiting
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/loom_admission_rejected_total\{tenant="mlp-a",reason="(quota|slo)"\} [1-9]/);
  });
});
