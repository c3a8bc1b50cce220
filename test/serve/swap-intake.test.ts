// Hot plan swap (swap.ts) with worker intake (`intakeThreads: 2`): the HTTP routes run on two worker threads
// whose tenant tables, SLOs and auth the tick thread replaces at a switch (intake/pool.ts setPlan). Under
// client loops on fresh connections (the kernel spreads them over both workers): kept tenants never fail and
// answer from the plan that accepted them, an added tenant answers through every worker, a removed one 404s
// saying which reload removed it; the repository index and the admin route work through a worker (its
// loopback check on the worker's own socket); a reload with a new auth file takes effect in the workers; gRPC
// on the first worker serves the new plan's tenants.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadInferenceProto } from '../../runtime/serve/grpc/service.js';
import { reusePortUnsupported } from '../../runtime/serve/intake/pool.js';
import { type LoomServer, createServer, parseAuthConfig } from '../../runtime/serve/index.js';
import { type ServeSource, loadServeSource } from '../../src/cli/serve-reload.js';
import { type OipOutput, oipBody } from './fleet.js';
import { PlanOracle, type SwapTenant, compileSwapPlan, requestFor, switchLink, tempRoot } from './swap-fleet.js';

const why = reusePortUnsupported();
if (why !== null) console.log(`test/serve/swap-intake.test.ts: worker intake skipped: ${why}`);

const A: SwapTenant[] = [
  { id: 'keep-1', seed: 61 },
  { id: 'keep-2', seed: 62 },
  { id: 'gone', seed: 63 },
];
const B: SwapTenant[] = [
  { id: 'keep-1', seed: 71 },
  { id: 'keep-2', seed: 72 },
  { id: 'added', seed: 74 },
];

let root = '';
let dirs: string[] = [];
let oracle: PlanOracle;
const servers: LoomServer[] = [];

beforeAll(async () => {
  root = tempRoot();
  dirs = [await compileSwapPlan(root, 'ia', A), await compileSwapPlan(root, 'ib', B)];
  oracle = await PlanOracle.load(dirs);
}, 120_000);
afterAll(async () => {
  for (const s of servers) await s.shutdown();
  oracle?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

interface Answer {
  readonly status: number;
  readonly worker: string; // the x-request-id's prefix: which intake worker answered (w0, w1)
  readonly body: { error?: string; outputs?: OipOutput[] } & Record<string, unknown>;
}

// One request on its own connection (no keep-alive): the kernel picks a worker for each.
function call(url: string, method: 'GET' | 'POST', p: string, body?: string, headers: Record<string, string> = {}): Promise<Answer> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: p, method, agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const id = String(res.headers['x-request-id'] ?? '');
        resolve({ status: res.statusCode!, worker: /^(w\d+)r/.exec(id)?.[1] ?? `(tick thread: ${id})`, body: JSON.parse(Buffer.concat(chunks).toString()) });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

function inputsFor(tenant: string, rows: number, seed: number) {
  const plan = oracle.plans.find((p) => p.loaded.plan.tenants.some((t) => t.id === tenant))!.loaded.plan;
  return requestFor(plan, tenant, rows, seed);
}

async function start(src: ServeSource, extra: { auth?: boolean; grpc?: boolean } = {}): Promise<{ server: LoomServer; url: string }> {
  const first = await loadServeSource(src);
  const server = createServer({
    runner: first.value.runner!,
    planSource: { source: first.source, sha: first.sha },
    reload: () => loadServeSource(src),
    logger: false,
    intakeThreads: 2,
    ...(extra.auth ? { auth: first.value.auth ?? null } : {}),
    ...(extra.grpc ? { grpc: true } : {}),
  });
  servers.push(server);
  return { server, url: await server.listen(0, '127.0.0.1') };
}

describe.skipIf(why !== null)('hot plan swap with intake workers', () => {
  it('under client loops: kept tenants never fail, added answers and removed 404s through both workers; index and admin route on a worker', async () => {
    const link = path.join(root, 'link-1');
    switchLink(link, dirs[0]!);
    const { server, url } = await start({ dir: link, backend: 'cpu', threads: 1 }, { grpc: true });
    expect(server.intakeThreads).toBe(2);
    const grpcAt = await server.listenGrpc(0, '127.0.0.1');

    const outcomes: Array<Answer & { tenant: string; sentAt: number; doneAt: number; plans: number[] }> = [];
    let stop = false;
    const tenants = ['keep-1', 'keep-2', 'gone', 'added'];
    const loop = async (k: number) => {
      for (let i = 0; !stop; i++) {
        const tenant = tenants[(i + k) % tenants.length]!;
        const inputs = inputsFor(tenant, 1 + ((i + k) % 4), 500 * k + i);
        const sentAt = performance.now();
        const r = await call(url, 'POST', `/v2/models/${tenant}/infer`, oipBody(inputs), { 'content-type': 'application/json' });
        const doneAt = performance.now();
        const plans = r.status === 200 ? await oracle.whichPlans(tenant, inputs, r.body.outputs ?? []) : [];
        outcomes.push({ ...r, tenant, sentAt, doneAt, plans });
      }
    };
    const loops = [0, 1, 2, 3].map(loop);
    await sleep(400);

    // the admin route through a worker: refused through a proxy (the worker's socket is loopback, the header says
    // it was forwarded), allowed from this machine; the report is the tick thread's
    const proxied = await call(url, 'POST', '/v2/repository/reload', undefined, { 'x-forwarded-for': '10.0.0.9' });
    expect(proxied.worker).toMatch(/^w\d$/);
    expect(proxied.status).toBe(403);
    expect(proxied.body.error).toMatch(/answers only clients on this machine .*header x-forwarded-for/);
    switchLink(link, dirs[1]!);
    const start1 = performance.now();
    const r = await call(url, 'POST', '/v2/repository/reload');
    const end1 = performance.now();
    expect(r.worker).toMatch(/^w\d$/);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ ok: true, generation: 2, added: ['added'], removed: ['gone'], kept: 2 });
    await sleep(400);
    stop = true;
    await Promise.all(loops);

    const kept = outcomes.filter((o) => o.tenant.startsWith('keep-'));
    expect(kept.filter((o) => o.status !== 200)).toEqual([]);
    for (const o of kept) {
      expect(o.plans, `${o.tenant}: the answer matches exactly one plan`).toHaveLength(1);
      if (o.sentAt > end1) expect(o.plans).toEqual([2]);
      if (o.doneAt < start1) expect(o.plans).toEqual([1]);
    }
    for (const g of [1, 2]) expect(kept.filter((o) => o.plans[0] === g).length, `answers from plan ${g}`).toBeGreaterThan(3);
    for (const o of outcomes.filter((x) => x.tenant === 'gone' || x.tenant === 'added')) {
      expect([200, 404]).toContain(o.status);
      if (o.status === 200) expect(o.plans).toEqual([o.tenant === 'gone' ? 1 : 2]);
    }
    const after = outcomes.filter((o) => o.sentAt > end1);
    // an added tenant answers through every worker; a removed one 404s from every worker, saying which reload removed it
    const added = after.filter((o) => o.tenant === 'added');
    expect(added.filter((o) => o.status !== 200)).toEqual([]);
    expect(new Set(added.map((o) => o.worker))).toEqual(new Set(['w0', 'w1']));
    const gone = after.filter((o) => o.tenant === 'gone');
    expect(gone.length).toBeGreaterThan(0);
    for (const o of gone) {
      expect(o.status).toBe(404);
      expect(o.body.error).toMatch(/unknown model 'gone'.*removed by the plan reload of .* \(generation 2\)/);
    }
    expect(new Set(gone.map((o) => o.worker))).toEqual(new Set(['w0', 'w1']));
    // before the switch: 'added' was unknown everywhere, 'gone' answered
    expect(outcomes.filter((o) => o.doneAt < start1 && o.tenant === 'added').every((o) => o.status === 404)).toBe(true);
    expect(outcomes.filter((o) => o.doneAt < start1 && o.tenant === 'gone').every((o) => o.status === 200)).toBe(true);

    // metadata and readiness of the new plan's tenants from every worker
    // (24 fresh connections: the kernel puts them all on one worker with odds of 2^-23)
    const meta = await Promise.all(Array.from({ length: 24 }, () => call(url, 'GET', '/v2/models/added')));
    expect(meta.map((m) => m.status)).toEqual(Array(24).fill(200));
    expect(new Set(meta.map((m) => m.worker)).size).toBe(2);

    // the repository index, answered through a worker from the tick thread's PlanSwitch
    const index = await call(url, 'POST', '/v2/repository/index');
    expect(index.worker).toMatch(/^w\d$/);
    const entries = index.body as unknown as Array<{ name: string; state: string; reason: string }>;
    expect(entries.map((e) => `${e.name}:${e.state}`)).toEqual(['keep-1:READY', 'keep-2:READY', 'added:READY', 'gone:UNAVAILABLE']);
    expect(entries[3]!.reason).toMatch(/removed by the plan reload of .* \(generation 2\)/);
    const ready = (await call(url, 'POST', '/v2/repository/index', '{"ready":true}')).body as unknown as Array<{ name: string }>;
    expect(ready.map((e) => e.name)).toEqual(['keep-1', 'keep-2', 'added']);
    expect((await call(url, 'POST', '/v2/repository/index', '[1]')).status).toBe(400);

    // /metrics from a worker: the tick thread's swap series
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('loom_plan_generation 2');
    expect(metrics).toContain('loom_plan_reloads_total{result="ok"} 1');

    // gRPC on the first worker: the added tenant answers, the removed one is NOT_FOUND with the reload's note
    const Ctor = (loadInferenceProto().packageObject.inference as grpc.GrpcObject).GRPCInferenceService as grpc.ServiceClientConstructor;
    const client = new Ctor(grpcAt, grpc.credentials.createInsecure()) as unknown as Record<
      string,
      (r: unknown, cb: (e: grpc.ServiceError | null, r: { raw_output_contents: Buffer[] }) => void) => void
    > &
      grpc.Client;
    const x = inputsFor('added', 1, 3);
    const input = Object.entries(x)[0]!;
    const bytes = Buffer.from(input[1].data.buffer, input[1].data.byteOffset, input[1].data.byteLength);
    const infer = (model: string) =>
      new Promise<{ raw_output_contents: Buffer[] } | grpc.ServiceError>((resolve) =>
        client.ModelInfer!(
          { model_name: model, inputs: [{ name: input[0], datatype: 'FP32', shape: input[1].shape }], raw_input_contents: [bytes] },
          (e, res) => resolve(e ?? res),
        ),
      );
    const g = await infer('added');
    expect('raw_output_contents' in g, String((g as grpc.ServiceError).details)).toBe(true);
    const want = (await oracle.plans[1]!.loaded.runTick({ added: x })).added!;
    const out = Object.values(want)[0]!;
    expect((g as { raw_output_contents: Buffer[] }).raw_output_contents[0]).toEqual(Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength));
    const miss = (await infer('gone')) as grpc.ServiceError;
    expect(miss.code).toBe(grpc.status.NOT_FOUND);
    expect(miss.details).toMatch(/removed by the plan reload of .* \(generation 2\)/);
    client.close();
    expect(server.scheduler.stats.failed).toBe(0);
  }, 120_000);

  it('a reload with a new auth file takes effect in the workers; admin and index scopes are checked there', async () => {
    const link = path.join(root, 'link-2');
    switchLink(link, dirs[0]!);
    const file = path.join(root, 'intake-auth.json');
    const write = (tenants: string[]) =>
      writeFileSync(
        file,
        JSON.stringify({
          tokens: [
            { name: 'ops', sha256: sha('ops-token'), tenants: [], admin: true },
            { name: 'team', sha256: sha('team-token'), tenants },
          ],
        }),
      );
    write(['keep-1']);
    const { server, url } = await start({ dir: link, backend: 'cpu', threads: 1, auth: file }, { auth: true });
    const as = (token: string) => ({ authorization: `Bearer ${token}` });
    // 24 fresh connections: both workers answer some (all on one: odds of 2^-23)
    const many = async (p: string, token: string) => Promise.all(Array.from({ length: 24 }, () => call(url, 'GET', p, undefined, as(token))));

    expect((await many('/v2/models/keep-1', 'team-token')).map((a) => a.status)).toEqual(Array(24).fill(200));
    expect((await many('/v2/models/keep-2', 'team-token')).map((a) => a.status)).toEqual(Array(24).fill(403));
    // the admin route: no token 401, a tenant token 403, both from a worker
    const none = await call(url, 'POST', '/v2/repository/reload');
    expect([none.status, none.worker]).toEqual([401, expect.stringMatching(/^w\d$/)]);
    const team = await call(url, 'POST', '/v2/repository/reload', undefined, as('team-token'));
    expect(team.status).toBe(403);
    expect(team.body.error).toMatch(/token 'team' may not use the admin routes/);
    // the index lists the token's tenants only
    const idx = (await call(url, 'POST', '/v2/repository/index', undefined, as('team-token'))).body as unknown as Array<{ name: string }>;
    expect(idx.map((e) => e.name)).toEqual(['keep-1']);

    // the new plan and a new auth file: team may now use keep-2 and the added tenant, no longer keep-1
    switchLink(link, dirs[1]!);
    write(['keep-2', 'added']);
    const ok = await call(url, 'POST', '/v2/repository/reload', undefined, as('ops-token'));
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body).toMatchObject({ ok: true, generation: 2 });
    for (const a of await many('/v2/models/added', 'team-token')) expect([a.worker, a.status]).toEqual([a.worker, 200]);
    for (const a of await many('/v2/models/keep-2', 'team-token')) expect([a.worker, a.status]).toEqual([a.worker, 200]);
    const denied = await many('/v2/models/keep-1', 'team-token');
    for (const a of denied) expect([a.worker, a.status]).toEqual([a.worker, 403]);
    expect(new Set(denied.map((a) => a.worker))).toEqual(new Set(['w0', 'w1']));
    const inputs = inputsFor('added', 2, 9);
    const inf = await call(url, 'POST', '/v2/models/added/infer', oipBody(inputs), { ...as('team-token'), 'content-type': 'application/json' });
    expect(inf.status).toBe(200);
    expect(await oracle.whichPlans('added', inputs, inf.body.outputs!)).toEqual([2]);
    const idx2 = (await call(url, 'POST', '/v2/repository/index', undefined, as('team-token'))).body as unknown as Array<{ name: string }>;
    expect(idx2.map((e) => e.name)).toEqual(['keep-2', 'added']);

    // a file naming a tenant the plan lacks: refused (422 with the report), the old auth stays in the workers
    write(['keep-2', 'nope']);
    const bad = await call(url, 'POST', '/v2/repository/reload', undefined, as('ops-token'));
    expect(bad.status).toBe(422);
    expect(bad.body.error).toMatch(/no tenant 'nope' in this plan/);
    expect((await many('/v2/models/added', 'team-token')).map((a) => a.status)).toEqual(Array(24).fill(200));
    expect(server.plans.current.generation).toBe(2);
  }, 120_000);
});

describe.skipIf(why !== null)('shutdown during a swap with intake workers', () => {
  it('every accepted request is answered, from the plan that accepted it; the reload switched or was abandoned', async () => {
    const src: ServeSource = { dir: dirs[0]!, backend: 'cpu', threads: 1 };
    const first = await loadServeSource(src);
    const s = createServer({
      runner: first.value.runner!,
      reload: () => loadServeSource({ ...src, dir: dirs[1]! }),
      scheduler: { queueTicks: 50 },
      intakeThreads: 2,
      logger: false,
    });
    const u = await s.listen(0, '127.0.0.1');
    const sent = Array.from({ length: 24 }, async (_, i) => {
      const inputs = inputsFor('keep-1', 1 + (i % 4), 300 + i);
      const r = await call(u, 'POST', '/v2/models/keep-1/infer', oipBody(inputs), { 'content-type': 'application/json' });
      return { status: r.status, plans: r.status === 200 ? await oracle.whichPlans('keep-1', inputs, r.body.outputs!) : [] };
    });
    // some requests accepted (through the workers) before the reload and the shutdown begin
    for (let i = 0; i < 1000 && s.scheduler.stats.accepted < 4; i++) await sleep(5);
    expect(s.scheduler.stats.accepted).toBeGreaterThanOrEqual(4);
    const reloaded = s.reload();
    const down = s.shutdown();
    const results = await Promise.all(sent);
    await down;
    const r = await reloaded;
    for (const x of results) {
      expect([200, 503]).toContain(x.status);
      if (x.status === 200) expect(x.plans).toHaveLength(1);
    }
    expect(results.filter((x) => x.status === 200).length).toBeGreaterThanOrEqual(4); // those accepted before
    const st = s.scheduler.stats;
    expect(st.accepted).toBe(st.answered);
    expect(st.failed).toBe(0);
    if (!r.ok) expect(r.failure).toBe('closing');
  }, 60_000);
});

describe('a reload cannot turn authentication on or off', () => {
  it('the reload fails (the old plan and auth keep serving)', async () => {
    const src: ServeSource = { dir: dirs[0]!, backend: 'cpu', threads: 1 };
    const first = await loadServeSource(src);
    const auth = parseAuthConfig(JSON.stringify({ tokens: [{ name: 'x', sha256: sha('x'), tenants: '*' }] }), 'auth.json', ['keep-1']);
    const s = createServer({
      runner: first.value.runner!,
      reload: async () => {
        const l = await loadServeSource(src);
        return { ...l, value: { ...l.value, auth } };
      },
    });
    servers.push(s);
    const r = await s.reload();
    expect(r).toMatchObject({ ok: false, failure: 'schedule', generation: 1 });
    expect(r.error).toMatch(/a reload cannot turn authentication on \(restart loom serve to add --auth\)/);
    expect((await s.app.inject({ method: 'GET', url: '/v2/models/keep-1' })).statusCode).toBe(200);
  });
});
