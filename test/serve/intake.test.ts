// Worker intake (`createServer({ intakeThreads })`, `loom serve --intake-threads`): the HTTP routes on worker
// threads sharing one port, the scheduler on this thread. Every tenant's answer equals a direct runTick bit for
// bit, requests spread over the workers, a bad request fails alone among good ones, admission's 429 with
// Retry-After crosses back, auth is enforced in the workers, a shutdown with requests in flight answers all of
// them, /metrics (from any worker) counts what the workers served, and gRPC on this thread works alongside.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tensor } from '../../ir/tensor.js';
import { type LoadedPlan, type TickInputs, loadPlan } from '../../runtime/index.js';
import { loadInferenceProto } from '../../runtime/serve/grpc/service.js';
import { defaultIntakeThreads, reusePortUnsupported } from '../../runtime/serve/intake/pool.js';
import { packTensors, unpackTensors } from '../../runtime/serve/intake/protocol.js';
import { type LoomServer, type ServeOptions, createServer, parseAuthConfig } from '../../runtime/serve/index.js';
import { FLEET, type OipOutput, compileTestFleet, expectedOutputs, oipBody, requestInputs, sameValues } from './fleet.js';
import { hasOpenssl, httpsGet, selfSigned } from './tls.js';

const why = reusePortUnsupported();
if (why !== null) console.log(`test/serve/intake.test.ts: worker intake skipped: ${why}`);

let planDir: string;
let reference: LoadedPlan;
const servers: LoomServer[] = [];
const plans: LoadedPlan[] = [];

beforeAll(async () => {
  planDir = await compileTestFleet({ 'mlp-a': 5000 });
  reference = await loadPlan(planDir, { backend: 'cpu' });
});
afterAll(async () => {
  for (const s of servers) await s.shutdown();
  for (const p of plans) p.close();
  reference?.close();
});

// slowMs: every tick takes this much longer; failFirst: the first tick fails in the backend
async function start(o: Partial<ServeOptions> & { slowMs?: number; failFirst?: boolean } = {}): Promise<{ server: LoomServer; url: string }> {
  const loaded = await loadPlan(planDir, { backend: 'cpu' });
  const { slowMs = 0, failFirst = false, ...opts } = o;
  let ticks = 0;
  const runner =
    slowMs > 0 || failFirst
      ? {
          plan: loaded.plan,
          backend: loaded.backend,
          runTick: async (i: TickInputs) => {
            if (slowMs > 0) await new Promise((r) => setTimeout(r, slowMs));
            if (failFirst && ticks++ === 0) throw new Error('injected backend failure');
            return loaded.runTick(i);
          },
          close: () => loaded.close(),
        }
      : loaded;
  // per-tenant series: the tests read a tenant's request counts back from /metrics
  const server = createServer({ runner, logger: false, intakeThreads: 2, metrics: { perTenant: true }, ...opts });
  servers.push(server);
  return { server, url: await server.listen(0, '127.0.0.1') };
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: { error?: string; id?: string; outputs?: OipOutput[] };
  raw: Buffer;
}

// One request on its own connection (no keep-alive): the kernel picks a worker for each.
function post(url: string, p: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, path: p, method: 'POST', agent: false, headers: { 'content-type': 'application/json', ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const raw = Buffer.concat(chunks);
          const len = res.headers['inference-header-content-length'];
          const text = (len ? raw.subarray(0, Number(len)) : raw).toString();
          resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(text), raw });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe.skipIf(why !== null)('worker intake', () => {
  it('tensors cross in one buffer and read back as the same values', () => {
    const a = requestInputs(reference.plan, 'enc-a', 2, 3); // INT64 inputs: 8-byte alignment
    const b = requestInputs(reference.plan, 'mlp-c', 1, 4);
    const { buffer, metas } = packTensors([b, a]);
    const back = [unpackTensors(buffer, metas[0]!), unpackTensors(buffer, metas[1]!)];
    for (const [got, want] of [
      [back[0]!, b],
      [back[1]!, a],
    ] as const)
      for (const [k, t] of Object.entries(want)) {
        expect(got[k]!.shape).toEqual(t.shape);
        expect(Buffer.from(got[k]!.data.buffer, got[k]!.data.byteOffset, got[k]!.data.byteLength)).toEqual(
          Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength),
        );
      }
    expect(() => unpackTensors(new ArrayBuffer(8), metas[1]!)).toThrow(/runs past/);
  });

  it('defaults and the reusePort check', () => {
    expect(defaultIntakeThreads(1)).toBe(0);
    expect(defaultIntakeThreads(2)).toBe(1);
    expect(defaultIntakeThreads(16)).toBe(15);
    expect(defaultIntakeThreads(64)).toBe(16);
    expect(reusePortUnsupported('22.11.0', 'linux')).toMatch(/22\.12/);
    expect(reusePortUnsupported('24.1.0', 'darwin')).toMatch(/darwin/);
    expect(reusePortUnsupported('22.12.0', 'linux')).toBeNull();
    expect(() => createServer({ runner: reference, intakeThreads: -1 })).toThrow(/intakeThreads/);
  });

  it('answers every tenant as runTick does, over several workers, with a bad request failing alone', async () => {
    const { server, url } = await start({ scheduler: { queueTicks: 16 } }); // room for the whole flood: no 429 here
    expect(server.intakeThreads).toBe(2);
    const jobs: Array<{ tenant: string; body: string; want: Record<string, Tensor> | null }> = [];
    for (let i = 0; i < 40; i++) {
      const t = FLEET[i % FLEET.length]!;
      const x = requestInputs(reference.plan, t.id, 1 + (i % t.maxBatch), 100 + i);
      jobs.push({ tenant: t.id, body: oipBody(x, { id: `q${i}` }), want: await expectedOutputs(reference, t.id, x) });
    }
    // a shape the model does not take, in the middle of the flood
    const bad = requestInputs(reference.plan, 'mlp-a', 1, 1);
    jobs.splice(17, 0, { tenant: 'mlp-a', body: oipBody(bad).replace('[1,32]', '[1,31]'), want: null });
    const answers = await Promise.all(jobs.map((j) => post(url, `/v2/models/${j.tenant}/infer`, j.body)));
    const workers = new Set<string>();
    answers.forEach((a, i) => {
      const j = jobs[i]!;
      if (j.want === null) {
        expect(a.status).toBe(400);
        expect(a.body.error).toContain("model 'mlp-a' expects FP32[-1,32]");
        return;
      }
      expect(a.status, JSON.stringify(a.body)).toBe(200);
      expect(a.body.id).toBe(`q${i < 17 ? i : i - 1}`);
      for (const out of a.body.outputs!) expect(sameValues(out, j.want[out.name]!), j.tenant).toBe(true);
      workers.add(String(a.headers['x-request-id']).replace(/r.*$/, ''));
    });
    // request ids name their worker (w0…, w1…): both workers served
    expect([...workers].sort()).toEqual(['w0', 'w1']);
    expect(server.scheduler.stats).toMatchObject({ answered: 40, failed: 0 });
  });

  it('binary tensor extension: raw bytes in and out, equal to runTick', async () => {
    const { url } = await start();
    const x = requestInputs(reference.plan, 'mlp-b', 3, 9);
    const want = (await expectedOutputs(reference, 'mlp-b', x)).output!;
    const bytes = Buffer.from(x.input!.data.buffer, x.input!.data.byteOffset, x.input!.data.byteLength);
    const head = Buffer.from(
      JSON.stringify({
        inputs: [{ name: 'input', shape: [3, 32], datatype: 'FP32', parameters: { binary_data_size: bytes.length } }],
        parameters: { binary_data_output: true },
      }),
    );
    const a = await post(url, '/v2/models/mlp-b/infer', Buffer.concat([head, bytes]), {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(head.length),
    });
    expect(a.status).toBe(200);
    const out = a.raw.subarray(Number(a.headers['inference-header-content-length']));
    expect(out).toEqual(Buffer.from(want.data.buffer, want.data.byteOffset, want.data.byteLength));
  });

  it('admission on the tick thread: 429 with Retry-After crosses back to the worker', async () => {
    const { server, url } = await start({ slowMs: 150, scheduler: { queueTicks: 1 } });
    const x = requestInputs(reference.plan, 'mlp-a', 1, 5);
    const answers = await Promise.all(Array.from({ length: 14 }, () => post(url, '/v2/models/mlp-a/infer', oipBody(x))));
    const refused = answers.filter((a) => a.status === 429);
    expect(refused.length).toBeGreaterThan(0);
    expect(answers.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(4);
    expect(answers.every((a) => a.status === 200 || a.status === 429)).toBe(true);
    for (const r of refused) {
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(r.body.error).toMatch(/model 'mlp-a' has \d+ rows queued and a quota of 4/);
    }
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`loom_requests_total\\{tenant="mlp-a",code="429"\\} ${refused.length}\\b`));
    expect(metrics).toMatch(new RegExp(`loom_admission_rejected_total\\{tenant="mlp-a",reason="quota"\\} ${refused.length}\\b`));
    expect(server.scheduler.stats.accepted).toBe(14 - refused.length);
  });

  it('auth is enforced in the workers; /metrics needs its token and sums every worker', async () => {
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    const auth = parseAuthConfig(
      JSON.stringify({
        tokens: [
          { name: 'a', sha256: sha('tok-a'), tenants: ['mlp-a'] },
          { name: 'prom', sha256: sha('tok-m'), tenants: [], metrics: true },
        ],
      }),
      'auth.json',
      FLEET.map((t) => t.id),
    );
    const { url } = await start({ auth });
    const x = oipBody(requestInputs(reference.plan, 'mlp-a', 1, 2));
    const none = await post(url, '/v2/models/mlp-a/infer', x);
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toContain('Bearer');
    expect((await post(url, '/v2/models/mlp-b/infer', x.replace(/"input"/, '"input"'), { authorization: 'Bearer tok-a' })).status).toBe(403);
    // the kernel spreads connections over the workers by hash: a few rounds of 12 reach both
    const workers = new Set<string>();
    let sent = 0;
    for (let round = 0; round < 5 && workers.size < 2; round++, sent += 12) {
      const oks = await Promise.all(Array.from({ length: 12 }, () => post(url, '/v2/models/mlp-a/infer', x, { authorization: 'Bearer tok-a' })));
      expect(oks.map((a) => a.status)).toEqual(Array(12).fill(200));
      for (const a of oks) workers.add(String(a.headers['x-request-id']).slice(0, 2));
    }
    expect(workers.size).toBe(2);
    expect((await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer tok-a' } })).status).toBe(403);
    // every scrape, whichever worker answers it, has the same totals
    for (let i = 0; i < 4; i++) {
      const text = await (await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer tok-m', connection: 'close' } })).text();
      expect(text).toMatch(new RegExp(`loom_requests_total\\{tenant="mlp-a",code="200"\\} ${sent}\\b`));
      expect(text).toMatch(new RegExp(`loom_request_duration_seconds_count\\{tenant="mlp-a"\\} ${sent}\\b`));
      expect(text).toMatch(/loom_auth_failures_total\{code="401"\} 1\b/);
      expect(text).toMatch(/loom_auth_failures_total\{code="403"\} 2\b/);
      expect(text).toMatch(/loom_ticks_total\{result="ok"\} [1-9]/); // the tick thread's own series
    }
    expect((await fetch(`${url}/v2/health/ready`)).status).toBe(200);
  });

  it('shutdown with requests in flight answers every one, then refuses new ones', async () => {
    const { server, url } = await start({ slowMs: 100 });
    const jobs = await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const t = FLEET[i % 3]!; // the MLPs
        const x = requestInputs(reference.plan, t.id, 1, 700 + i);
        return { tenant: t.id, body: oipBody(x), want: await expectedOutputs(reference, t.id, x) };
      }),
    );
    const inflight = jobs.map((j) => post(url, `/v2/models/${j.tenant}/infer`, j.body));
    while (server.scheduler.stats.accepted < jobs.length) await new Promise((r) => setTimeout(r, 5));
    const closed = server.shutdown();
    const answers = await Promise.all(inflight);
    answers.forEach((a, i) => {
      expect(a.status).toBe(200);
      for (const out of a.body.outputs!) expect(sameValues(out, jobs[i]!.want[out.name]!)).toBe(true);
    });
    await closed;
    expect(server.scheduler.stats).toEqual({ accepted: 24, answered: 24, failed: 0, cancelled: 0 });
    await expect(post(url, '/v2/models/mlp-a/infer', jobs[0]!.body)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('readiness from any worker comes from the tick thread: 503 after a failed tick, 200 once a tick succeeds', async () => {
    const { url } = await start({ failFirst: true, scheduler: { failureHoldMs: 60_000 } });
    const x = oipBody(requestInputs(reference.plan, 'mlp-a', 1, 4));
    const failed = await post(url, '/v2/models/mlp-a/infer', x);
    expect(failed.status).toBe(500);
    expect(failed.body.error).toMatch(/the backend failed in tick 1.*injected backend failure/);
    const probe = async () => (await fetch(`${url}/v2/health/ready`, { headers: { connection: 'close' } })).status;
    expect([await probe(), await probe(), await probe()]).toEqual([503, 503, 503]);
    expect((await fetch(`${url}/v2/models/mlp-b/ready`)).status).toBe(503);
    expect((await post(url, '/v2/models/mlp-a/infer', x)).status).toBe(200);
    expect([await probe(), await probe(), await probe()]).toEqual([200, 200, 200]);
  });

  it('body limit and request timeouts hold in the workers', async () => {
    const { url } = await start({ bodyLimit: 1024, requestTimeoutMs: 300, headersTimeoutMs: 200 });
    const big = oipBody(requestInputs(reference.plan, 'mlp-a', 4, 1)); // 4 x 32 floats: over 1 KiB
    expect(big.length).toBeGreaterThan(1024);
    const r = await post(url, '/v2/models/mlp-a/infer', big);
    expect(r.status).toBe(413);
    expect(r.body.error).toContain("this server's limit of 1024 bytes");
    const u = new URL(url);
    const sock = net.connect(Number(u.port), u.hostname);
    let got = '';
    sock.on('data', (d) => (got += d.toString()));
    sock.on('error', () => {});
    sock.write('POST /v2/models/mlp-a/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"inputs":');
    await new Promise<void>((resolve) => sock.on('close', () => resolve()));
    expect(got).toMatch(/^HTTP\/1\.1 408 /);
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).toMatch(/loom_client_errors_total\{reason="timeout"\} 1\b/);
    expect(text).toMatch(/loom_requests_total\{tenant="mlp-a",code="413"\} 1\b/);
  });

  it('--max-connections caps the connections of all workers together, however the kernel spreads them', async () => {
    const { url } = await start({ intakeThreads: 3, maxConnections: 6, keepAliveTimeoutMs: 5000 });
    const u = new URL(url);
    // a keep-alive connection that asked for /v2/health/live: its status line, or 'closed' when cut off unanswered
    const ask = () => {
      const sock = net.connect(Number(u.port), u.hostname);
      let got = '';
      sock.on('data', (d) => (got += d.toString()));
      sock.on('error', () => {});
      const answered = new Promise<string>((resolve) => {
        sock.on('data', () => got.includes('\r\n\r\n') && resolve(got.split('\r\n')[0]!));
        sock.on('close', () => resolve(got ? got.split('\r\n')[0]! : 'closed'));
      });
      sock.write(`GET /v2/health/live HTTP/1.1\r\nHost: ${u.host}\r\n\r\n`);
      return { sock, answered };
    };
    // six connections: every one served (a per-worker share of 2 would refuse some whenever the kernel puts 3 on one)
    const open = Array.from({ length: 6 }, ask);
    expect(await Promise.all(open.map((c) => c.answered))).toEqual(Array(6).fill('HTTP/1.1 200 OK'));
    // the seventh is closed at accept
    const extra = ask();
    expect(await extra.answered).toBe('closed');
    // one closes: room for one more
    await new Promise<void>((resolve) => {
      open[0]!.sock.on('close', () => resolve());
      open[0]!.sock.destroy();
    });
    // (the worker sees the close a moment later: until then a new connection may still be over the cap)
    let again = ask();
    for (let i = 0; i < 40 && (await again.answered) === 'closed'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      again = ask();
    }
    expect(await again.answered).toBe('HTTP/1.1 200 OK');
    for (const c of [...open, again]) c.sock.destroy();
    // as above, the workers see those closes a moment later: until then /metrics' own connection may be refused
    let metrics: string | null = null;
    for (let i = 0; i < 40 && metrics === null; i++) {
      metrics = await fetch(`${url}/metrics`).then(
        (r) => r.text(),
        () => null,
      );
      if (metrics === null) await new Promise((r) => setTimeout(r, 50));
    }
    expect(metrics).toMatch(/loom_connections_refused_total [1-9]/);
  });

  it('a port another program holds fails listen() with the reason; the server still shuts down', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const loaded = await loadPlan(planDir, { backend: 'cpu' });
      const server = createServer({ runner: loaded, logger: false, intakeThreads: 2 });
      await expect(server.listen(port, '127.0.0.1')).rejects.toThrow(/EADDRINUSE/);
      await server.shutdown();
    } finally {
      blocker.close();
    }
  });

  it.skipIf(!hasOpenssl())('TLS in the workers; their log lines reach the server logger', async () => {
    const { cert, key } = selfSigned();
    let logs = '';
    const { url } = await start({
      tls: { cert: readFileSync(cert), key: readFileSync(key) },
      logger: { level: 'info', stream: { write: (line: string) => void (logs += line) } },
    });
    expect(url).toMatch(/^https:/);
    const ca = readFileSync(cert, 'utf8');
    expect((await httpsGet(`${url}/v2/health/ready`, ca)).status).toBe(200);
    const meta = await httpsGet(`${url}/v2/models/mlp-a`, ca);
    expect(JSON.parse(meta.text)).toMatchObject({ name: 'mlp-a', parameters: { max_batch_size: 4, slo_ms: 5000 } });
    expect((await httpsGet(`${url}/v2/models/nope`, ca)).status).toBe(404);
    await new Promise((r) => setTimeout(r, 100)); // log lines cross threads asynchronously
    expect(logs).toMatch(/"reqId":"w[01]r\w+".*"status":404.*request refused/);
  });

  it('a client that goes away while queued is dropped from the queue on the tick thread', async () => {
    const { server, url } = await start({ slowMs: 400 });
    const x = oipBody(requestInputs(reference.plan, 'mlp-a', 1, 3));
    const first = post(url, '/v2/models/mlp-a/infer', x); // its tick runs 400 ms
    while (server.scheduler.stats.accepted < 1) await new Promise((r) => setTimeout(r, 5));
    const u = new URL(url);
    const req = http.request({ host: u.hostname, port: u.port, path: '/v2/models/mlp-b/infer', method: 'POST', agent: false });
    req.on('error', () => {});
    req.end(x);
    while (server.scheduler.queueDepth('mlp-b').requests < 1) await new Promise((r) => setTimeout(r, 5));
    req.destroy();
    while (server.scheduler.stats.cancelled < 1) await new Promise((r) => setTimeout(r, 5));
    expect((await first).status).toBe(200);
    expect(server.scheduler.stats).toMatchObject({ accepted: 2, answered: 1, cancelled: 1 });
    expect(await (await fetch(`${url}/metrics`)).text()).toMatch(/loom_requests_cancelled_total\{tenant="mlp-b",stage="queued"\} 1\b/);
  });

  it('gRPC on every intake worker: connections spread over them, each answers', async () => {
    const { url, server } = await start({ grpc: true, intakeThreads: 3, scheduler: { queueTicks: 16 } });
    const where = await server.listenGrpc(0, '127.0.0.1');
    const Ctor = (loadInferenceProto().packageObject.inference as grpc.GrpcObject).GRPCInferenceService as grpc.ServiceClientConstructor;
    const x = requestInputs(reference.plan, 'mlp-c', 1, 78);
    const want = (await expectedOutputs(reference, 'mlp-c', x)).output!;
    const bytes = Buffer.from(x.input!.data.buffer, x.input!.data.byteOffset, x.input!.data.byteLength);
    // 24 clients, each on its own connection (no shared subchannel pool): the kernel spreads them over the workers
    const ids = await Promise.all(
      Array.from({ length: 24 }, (_, i) => {
        const c = new Ctor(where, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1, 'test.client': i }) as unknown as Record<
          string,
          (r: unknown, cb: (e: grpc.ServiceError | null, r: { id: string; raw_output_contents: Buffer[] }) => void) => void
        > &
          grpc.Client;
        return new Promise<string>((resolve, reject) =>
          c.ModelInfer!({ model_name: 'mlp-c', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 16] }], raw_input_contents: [bytes] }, (e, r) => {
            c.close();
            if (e) return reject(e);
            expect(r.raw_output_contents[0]).toEqual(Buffer.from(want.data.buffer, want.data.byteOffset, want.data.byteLength));
            resolve(r.id);
          }),
        );
      }),
    );
    const workers = new Set(ids.map((id) => /^w(\d+)g/.exec(id)?.[1]));
    expect(workers.has(undefined), ids.join(' ')).toBe(false);
    expect(workers.size, `answered by workers ${[...workers].join(', ')}`).toBeGreaterThan(1);
    expect(await (await fetch(`${url}/metrics`)).text()).toMatch(/loom_grpc_requests_total\{method="ModelInfer",code="200"\} 24\b/);
  });

  it('gRPC on the intake workers alongside HTTP: same answers, counted in the one /metrics, drained at shutdown', async () => {
    const { server, url } = await start({ grpc: true, slowMs: 200 });
    const where = await server.listenGrpc(0, '127.0.0.1');
    const Ctor = (loadInferenceProto().packageObject.inference as grpc.GrpcObject).GRPCInferenceService as grpc.ServiceClientConstructor;
    const client = new Ctor(where, grpc.credentials.createInsecure()) as unknown as Record<
      string,
      (r: unknown, cb: (e: grpc.ServiceError | null, r: { raw_output_contents: Buffer[] }) => void) => void
    > &
      grpc.Client;
    const client2 = () => new Ctor(where, grpc.credentials.createInsecure()) as unknown as typeof client;
    const x = requestInputs(reference.plan, 'mlp-c', 2, 77);
    const want = (await expectedOutputs(reference, 'mlp-c', x)).output!;
    const bytes = Buffer.from(x.input!.data.buffer, x.input!.data.byteOffset, x.input!.data.byteLength);
    const [g, h] = await Promise.all([
      new Promise<{ raw_output_contents: Buffer[] }>((resolve, reject) =>
        client.ModelInfer!({ model_name: 'mlp-c', inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 16] }], raw_input_contents: [bytes] }, (e, r) =>
          e ? reject(e) : resolve(r),
        ),
      ),
      post(url, '/v2/models/mlp-c/infer', oipBody(x)),
    ]);
    client.close();
    expect(g.raw_output_contents[0]).toEqual(Buffer.from(want.data.buffer, want.data.byteOffset, want.data.byteLength));
    expect(h.status).toBe(200);
    expect(sameValues(h.body.outputs![0]!, want)).toBe(true);
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).toMatch(/loom_requests_total\{tenant="mlp-c",code="200"\} 2\b/); // one gRPC, one HTTP
    expect(text).toMatch(/loom_grpc_requests_total\{method="ModelInfer",code="200"\} 1\b/);
    // a call in flight when shutdown begins is answered; the port closes after
    const slow = new Promise<{ raw_output_contents: Buffer[] }>((resolve, reject) =>
      client2().ModelInfer!({ model_name: 'mlp-c', inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 16] }], raw_input_contents: [bytes] }, (e, r) =>
        e ? reject(e) : resolve(r),
      ),
    );
    while (server.scheduler.stats.accepted < 3) await new Promise((r) => setTimeout(r, 5));
    await Promise.all([server.shutdown(), slow]);
    expect((await slow).raw_output_contents[0]).toEqual(Buffer.from(want.data.buffer, want.data.byteOffset, want.data.byteLength));
  });
});
