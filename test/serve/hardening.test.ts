// Slow and idle clients, connection caps and the drain at shutdown, over raw loopback sockets: a client that
// sends its headers or body too slowly is cut off with 408, idle keep-alive sockets are closed, readiness
// keeps answering while hundreds of slow clients are connected, and a shutdown answers every request that
// was on a socket when it began (none is reset). Small timeouts keep it fast; every wait is bounded.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoadedPlan, type TickInputs, loadPlan } from '../../runtime/index.js';
import { type LoomServer, type ServeOptions, createServer } from '../../runtime/serve/index.js';
import { compileTestFleet, oipBody, requestInputs } from './fleet.js';

let planDir = '';
let loaded: LoadedPlan;
const servers: LoomServer[] = [];
const sockets: net.Socket[] = []; // every raw client, destroyed at the end whatever happened

beforeAll(async () => {
  planDir = await compileTestFleet();
  loaded = await loadPlan(planDir, { backend: 'cpu' });
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  for (const s of servers) await within(s.shutdown(), 5000, 'shutdown').catch(() => {});
  loaded?.close();
});

async function start(opts: Omit<ServeOptions, 'runner'>): Promise<{ server: LoomServer; port: number; url: string }> {
  const server = createServer({ runner: await loadPlan(planDir, { backend: 'cpu' }), logger: false, ...opts });
  servers.push(server);
  const url = await server.listen(0, '127.0.0.1');
  return { server, port: Number(new URL(url).port), url };
}

// A raw client: what it received, and how the connection ended ('end' from the server, or an error code).
interface Raw {
  readonly sock: net.Socket;
  received: string;
  ended: Promise<string>;
}

function connect(port: number): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    sockets.push(sock);
    const raw: Raw = { sock, received: '', ended: Promise.resolve('') };
    raw.ended = new Promise((done) => {
      sock.on('data', (d) => (raw.received += d.toString('latin1')));
      sock.on('error', (e) => done((e as NodeJS.ErrnoException).code ?? String(e)));
      sock.on('close', () => done('closed'));
    });
    sock.once('connect', () => resolve(raw));
    sock.once('error', reject);
  });
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms))]);
}

async function until(cond: () => boolean, what: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function inferHead(model: string, length: number, extra = ''): string {
  return `POST /v2/models/${model}/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n${extra}\r\n`;
}

// The HTTP responses in what a raw client received (status codes, in order).
function statuses(received: string): number[] {
  return [...received.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
}

describe('timeouts', { timeout: 15_000 }, () => {
  const timeouts = { requestTimeoutMs: 600, headersTimeoutMs: 300, keepAliveTimeoutMs: 300 };

  it('a client that sends half its headers is cut off with 408', async () => {
    const { port } = await start(timeouts);
    const c = await connect(port);
    c.sock.write('POST /v2/models/mlp-a/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    expect(await within(c.ended, 3000, 'close')).toBe('closed');
    expect(statuses(c.received)).toEqual([408]);
  });

  it('a client that sends its headers and half its body is cut off with 408 and an OIP error body', async () => {
    const { port } = await start(timeouts);
    const c = await connect(port);
    const body = oipBody(requestInputs(loaded.plan, 'mlp-a', 1, 1));
    c.sock.write(inferHead('mlp-a', Buffer.byteLength(body)) + body.slice(0, 20));
    expect(await within(c.ended, 3000, 'close')).toBe('closed');
    expect(statuses(c.received)).toEqual([408]);
    expect(c.received).toMatch(/"error":"[^"]*600 ms/);
  });

  it('an idle keep-alive connection is closed after the keep-alive timeout', async () => {
    const { port } = await start(timeouts);
    const c = await connect(port);
    c.sock.write('GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const t0 = Date.now();
    expect(await within(c.ended, 3000, 'close')).toBe('closed');
    expect(statuses(c.received)).toEqual([200]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(200);
  });

  it('readiness keeps answering while 200 slow clients are connected; they are all cut off', async () => {
    const { url, port } = await start(timeouts);
    const body = oipBody(requestInputs(loaded.plan, 'mlp-b', 1, 2));
    const slow: Raw[] = [];
    for (let i = 0; i < 200; i++) {
      const c = await connect(port);
      c.sock.write(i % 2 === 0 ? inferHead('mlp-b', Buffer.byteLength(body)) + body.slice(0, 10) : 'GET /v2/health/ready HTTP/1.1\r\n');
      slow.push(c);
    }
    for (let i = 0; i < 5; i++) {
      const r = await fetch(`${url}/v2/health/ready`, { signal: AbortSignal.timeout(1000) });
      expect(r.status).toBe(200);
    }
    const ends = await within(Promise.all(slow.map((c) => c.ended)), 5000, 'the slow clients cut off');
    expect(new Set(ends)).toEqual(new Set(['closed']));
    for (const c of slow) expect(statuses(c.received)).toEqual([408]);
  });

  it('a request read in time is answered even when its tick takes longer than the request timeout', async () => {
    const runner = {
      plan: loaded.plan,
      backend: 'cpu',
      runTick: async (i: TickInputs) => {
        await new Promise((r) => setTimeout(r, 1200));
        return loaded.runTick(i);
      },
    };
    const server = createServer({ runner, logger: false, ...timeouts });
    servers.push(server);
    const url = await server.listen(0, '127.0.0.1');
    const r = await fetch(`${url}/v2/models/mlp-a/infer`, { method: 'POST', body: oipBody(requestInputs(loaded.plan, 'mlp-a', 1, 5)) });
    expect(r.status).toBe(200);
  });

  it('connections beyond --max-connections are refused; the ones open are served', async () => {
    const { port, url } = await start({ ...timeouts, keepAliveTimeoutMs: 5000, maxConnections: 4 });
    const open: Raw[] = [];
    for (let i = 0; i < 4; i++) open.push(await connect(port));
    await new Promise((r) => setTimeout(r, 50));
    const extra = await connect(port);
    extra.sock.write('GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    expect(await within(extra.ended, 2000, 'the extra connection closed')).toMatch(/closed|ECONNRESET/);
    expect(extra.received).toBe('');
    open[0]!.sock.write('GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await until(() => statuses(open[0]!.received).length === 1, 'an answer on an open connection', 2000);
    for (const c of open) c.sock.destroy();
    await new Promise((r) => setTimeout(r, 50));
    const r = await fetch(`${url}/v2/health/live`, { signal: AbortSignal.timeout(1000) });
    expect(r.status).toBe(200);
    const m = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(1000) })).text();
    expect(m).toMatch(/loom_connections_refused_total [1-9]/);
  });
});

describe('drain at shutdown', { timeout: 20_000 }, () => {
  it('keep-alive clients mid-request when shutdown begins all get an answer with Connection: close, none a reset', async () => {
    const { server, port } = await start({ requestTimeoutMs: 5000, keepAliveTimeoutMs: 5000 });
    const body = oipBody(requestInputs(loaded.plan, 'mlp-a', 2, 3));
    const n = Buffer.byteLength(body);
    // each client has had one answer on its keep-alive socket, then sends half of its next request
    const clients: Raw[] = [];
    for (let i = 0; i < 12; i++) {
      const c = await connect(port);
      c.sock.write(inferHead('mlp-a', n) + body);
      clients.push(c);
    }
    await until(() => clients.every((c) => statuses(c.received).length === 1), 'the first answers', 5000);
    const idle: Raw[] = [];
    for (let i = 0; i < 4; i++) {
      const c = await connect(port);
      c.sock.write('GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      idle.push(c);
    }
    await until(() => idle.every((c) => statuses(c.received).length === 1), 'the idle clients answered', 5000);
    for (const [i, c] of clients.entries()) c.sock.write(i % 2 === 0 ? inferHead('mlp-a', n) + body.slice(0, 30) : inferHead('mlp-a', n).slice(0, 40));
    await new Promise((r) => setTimeout(r, 50));
    const done = server.shutdown();
    await new Promise((r) => setTimeout(r, 20));
    for (const [i, c] of clients.entries()) c.sock.write(i % 2 === 0 ? body.slice(30) : inferHead('mlp-a', n).slice(40) + body);
    await within(done, 8000, 'shutdown');
    const ends = await within(Promise.all([...clients, ...idle].map((c) => c.ended)), 3000, 'every socket closed');
    expect(
      ends.every((e) => e === 'closed'),
      ends.join(' '),
    ).toBe(true);
    for (const c of clients) {
      const s = statuses(c.received);
      expect(s.length, c.received).toBe(2);
      expect([200, 503]).toContain(s[1]);
      expect(c.received.split('HTTP/1.1')[2]!.toLowerCase()).toContain('connection: close');
    }
  });

  it('keep-alive clients that keep sending through the shutdown get answers, none a reset', async () => {
    const { server, port } = await start({ requestTimeoutMs: 5000, keepAliveTimeoutMs: 5000 });
    const body = oipBody(requestInputs(loaded.plan, 'mlp-b', 1, 4));
    const req = inferHead('mlp-b', Buffer.byteLength(body)) + body;
    let stop = false;
    const results: { statuses: number[]; end: string }[] = [];
    const loop = async () => {
      const c = await connect(port);
      let answered = 0;
      c.sock.on('data', () => {
        const s = statuses(c.received);
        if (s.length > answered) {
          answered = s.length;
          if (s[s.length - 1] === 200 && !stop && answered < 2000) c.sock.write(req);
        }
      });
      c.sock.write(req);
      const end = await c.ended;
      results.push({ statuses: statuses(c.received), end });
    };
    const loops = Array.from({ length: 8 }, loop);
    await until(() => servers.length > 0 && server.scheduler.stats.answered >= 80, '80 answers', 10_000);
    await within(server.shutdown(), 8000, 'shutdown');
    stop = true;
    await within(Promise.all(loops), 3000, 'the clients done');
    expect(results.map((r) => r.end)).toEqual(Array(8).fill('closed'));
    const { accepted, answered } = server.scheduler.stats;
    expect(answered).toBe(accepted);
    const got200 = results.reduce((a, r) => a + r.statuses.filter((s) => s === 200).length, 0);
    expect(got200).toBe(answered);
  });
});
