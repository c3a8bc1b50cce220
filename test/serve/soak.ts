// The open-loop soak driver (test/serve/soak.test.ts): arrivals at a fixed rate, whatever the server's pace,
// over real loopback sockets, mixing good requests (from a pool whose one-at-a-time answers are known), bad
// requests, clients that go away mid-body or before the answer, and slow clients that send half a body and
// stall; test-only device faults are injected at intervals. Everything is bounded: the number of arrivals, every
// client's lifetime, the soak's wall time.
import http from 'node:http';
import net from 'node:net';
import type { Tensor } from '../../ir/tensor.js';
import type { LoadedPlan } from '../../runtime/index.js';
import type { LoomServer } from '../../runtime/serve/index.js';
import { FLEET, type OipOutput, expectedOutputs, oipBody, requestInputs, sameValues } from './fleet.js';
import { rng } from '../support/tensors.js';
import v8 from 'node:v8';
import vm from 'node:vm';

export type ArrivalKind = 'good' | 'bad' | 'abort' | 'cut' | 'slow';

export interface SoakOptions {
  readonly seconds: number;
  readonly rate: number; // arrivals per second
  readonly seed: number;
  readonly mix: Readonly<Record<ArrivalKind, number>>; // weights
  readonly faultEveryS: number; // arm one failing tick this often (0: never)
  readonly slowStallMs: number; // how long a slow client holds its half-sent request before giving up
  readonly maxSlow: number; // slow clients open at once (more arrivals of that kind become good ones)
  readonly clientTimeoutMs: number; // a good request with no answer by then counts as lost
}

interface PoolItem {
  readonly tenant: string;
  readonly inputs: Record<string, Tensor>;
  readonly want: Record<string, Tensor>;
}

export interface Sample {
  readonly t: number; // seconds since the start
  readonly rss: number;
  readonly handles: number;
  readonly collected?: boolean; // taken right after a full garbage collection (every GC_SAMPLE_EVERY-th sample)
}

// A full collection before every 10th sample (every 5 s): RSS then counts what is still held, not what the
// collector has not reached yet (on a loaded 2-core machine RSS grew 60 MB over the CI soak without a leak,
// the heap running ahead of a collector starved of CPU). Collecting before every sample would stall the open loop.
const GC_SAMPLE_EVERY = 10;
let fullGc: (() => void) | null = null;
function collector(): () => void {
  if (!fullGc) {
    v8.setFlagsFromString('--expose-gc');
    fullGc = vm.runInNewContext('gc') as () => void;
  }
  return fullGc;
}

export interface SoakReport {
  readonly seconds: number;
  readonly arrivals: Record<ArrivalKind, number>;
  readonly good: { ok: number; wrong: number; refused429: number; failed500: number; lost: number; duplicated: number; other: Record<string, number> };
  readonly bad: { refused4xx: number; other: Record<string, number> };
  readonly abort: { answeredBeforeAbort: number; aborted: number; wrong: number };
  readonly cut: number;
  readonly slow: { answered: Record<string, number>; closedByServer: number; gaveUp: number };
  readonly faultsArmed: number;
  readonly failedTicks: readonly number[]; // tick numbers named by the 500s
  readonly server: { accepted: number; answered: number; failed: number; cancelled: number };
  readonly samples: readonly Sample[];
  readonly maxLatenessMs: number; // how far behind schedule the arrival loop ever was
}

// Distinct requests per tenant, each with the answer of running it alone on a separate plan.
export async function buildPool(reference: LoadedPlan, perTenant: number, seed: number): Promise<PoolItem[]> {
  const pool: PoolItem[] = [];
  for (const t of FLEET) {
    for (let i = 0; i < perTenant; i++) {
      const rows = 1 + (i % t.maxBatch);
      const inputs = requestInputs(reference.plan, t.id, rows, seed * 1000 + pool.length);
      pool.push({ tenant: t.id, inputs, want: await expectedOutputs(reference, t.id, inputs) });
    }
  }
  return pool;
}

// Bodies the server must refuse with 400 (or 404 for an unknown model), each with the tenant it is sent to.
function badRequest(pool: readonly PoolItem[], r: () => number): { model: string; body: string } {
  const item = pool[Math.floor(r() * pool.length)]!;
  const [name, t] = Object.entries(item.inputs)[0]!;
  const entry = (over: Record<string, unknown>) =>
    JSON.stringify({ inputs: [{ name, shape: t.shape, datatype: 'FP32', data: Array.from(t.data as ArrayLike<number>, Number), ...over }] });
  switch (Math.floor(r() * 6)) {
    case 0:
      return { model: item.tenant, body: entry({ shape: [...t.shape.slice(0, -1), (t.shape.at(-1) ?? 1) + 1] }) }; // wrong shape
    case 1:
      return { model: item.tenant, body: entry({ datatype: 'INT8' }) }; // wrong dtype for the data given
    case 2:
      return { model: item.tenant, body: entry({ name: 'no_such_input' }) };
    case 3:
      return { model: item.tenant, body: '{"inputs": [ {"name": ' }; // malformed JSON
    case 4:
      return { model: 'no-such-model', body: oipBody(item.inputs) };
    default:
      return { model: item.tenant, body: JSON.stringify({ inputs: 'not a list' }) };
  }
}

interface HttpResult {
  readonly status: number;
  readonly body: string;
}

// One POST on its own connection (no keep-alive: every arrival is a new client). `abortAfterMs`: the client
// goes away then. Resolves with the answer, 'aborted', or 'timeout' after timeoutMs.
function post(port: number, path: string, body: string, timeoutMs: number, abortAfterMs?: number): Promise<HttpResult | 'aborted' | 'timeout' | 'error'> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (v: HttpResult | 'aborted' | 'timeout' | 'error') => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (abortTimer) clearTimeout(abortTimer);
      resolve(v);
    };
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => finish({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', () => finish('error'));
      },
    );
    req.on('error', () => finish(abortAfterMs !== undefined ? 'aborted' : 'error'));
    const timer = setTimeout(() => {
      req.destroy();
      finish('timeout');
    }, timeoutMs);
    const abortTimer =
      abortAfterMs === undefined
        ? null
        : setTimeout(() => {
            req.destroy();
            finish('aborted');
          }, abortAfterMs);
    req.end(body);
  });
}

// A raw client that sends the headers and half the body, then either leaves at once ('cut') or stalls for
// `stallMs` and then leaves ('slow'). Resolves with what the server did meanwhile.
function halfBody(port: number, model: string, body: string, stallMs: number): Promise<{ status: number | null; closed: boolean }> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = '';
    let closed = false;
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      resolve({ status: m ? Number(m[1]) : null, closed });
    };
    sock.on('error', () => {});
    sock.on('data', (c: Buffer) => {
      data += c.toString('latin1');
    });
    sock.on('close', () => {
      closed = true;
      settle();
    });
    const len = Buffer.byteLength(body);
    sock.write(`POST /v2/models/${model}/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${len}\r\n\r\n`);
    sock.write(body.slice(0, Math.floor(body.length / 2)));
    const timer = setTimeout(settle, stallMs);
  });
}

function bump(o: Record<string, number>, k: string | number): void {
  o[k] = (o[k] ?? 0) + 1;
}

type Handles = { _getActiveHandles?: () => unknown[] };
export const activeHandles = (): number => (process as unknown as Handles)._getActiveHandles?.().length ?? 0;

export async function runSoak(server: LoomServer, port: number, runner: LoadedPlan, pool: readonly PoolItem[], o: SoakOptions): Promise<SoakReport> {
  const r = rng(o.seed);
  const kinds = Object.keys(o.mix) as ArrivalKind[];
  const totalWeight = kinds.reduce((a, k) => a + o.mix[k], 0);
  const pick = (): ArrivalKind => {
    let x = r() * totalWeight;
    for (const k of kinds) if ((x -= o.mix[k]) < 0) return k;
    return 'good';
  };
  const rep = {
    arrivals: { good: 0, bad: 0, abort: 0, cut: 0, slow: 0 } as Record<ArrivalKind, number>,
    good: { ok: 0, wrong: 0, refused429: 0, failed500: 0, lost: 0, duplicated: 0, other: {} as Record<string, number> },
    bad: { refused4xx: 0, other: {} as Record<string, number> },
    abort: { answeredBeforeAbort: 0, aborted: 0, wrong: 0 },
    cut: 0,
    slow: { answered: {} as Record<string, number>, closedByServer: 0, gaveUp: 0 },
  };
  const failedTicks = new Set<number>();
  const answeredIds = new Set<string>();
  const samples: Sample[] = [];
  const inflight = new Set<Promise<void>>();
  let slowOpen = 0;
  let faultsArmed = 0;
  let maxLateness = 0;
  const track = (p: Promise<void>) => {
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };

  const checkGood = (item: PoolItem, id: string, res: HttpResult, into: 'good' | 'abort') => {
    const body = JSON.parse(res.body) as { id?: string; outputs?: OipOutput[]; error?: string };
    if (res.status === 200) {
      if (answeredIds.has(id) || body.id !== id) rep.good.duplicated++;
      answeredIds.add(id);
      const right = Object.entries(item.want).every(([name, t]) => sameValues(body.outputs!.find((x) => x.name === name)!, t));
      if (into === 'good') right ? rep.good.ok++ : rep.good.wrong++;
      else right ? rep.abort.answeredBeforeAbort++ : rep.abort.wrong++;
      return;
    }
    const tick = /^the backend failed in tick (\d+), which carried this request: .*injected fault/.exec(body.error ?? '');
    if (res.status === 500 && tick) {
      failedTicks.add(Number(tick[1]));
      if (into === 'good') rep.good.failed500++;
      return;
    }
    if (res.status === 429 && into === 'good') rep.good.refused429++;
    else if (into === 'good') bump(rep.good.other, `${res.status} ${body.error ?? ''}`.slice(0, 160));
  };

  const arrive = async (n: number) => {
    let kind = pick();
    if (kind === 'slow' && slowOpen >= o.maxSlow) kind = 'good';
    rep.arrivals[kind]++;
    const item = pool[Math.floor(r() * pool.length)]!;
    const id = `soak-${o.seed}-${n}`;
    const path = `/v2/models/${item.tenant}/infer`;
    switch (kind) {
      case 'good': {
        const res = await post(port, path, oipBody(item.inputs, { id }), o.clientTimeoutMs);
        if (typeof res === 'string') {
          bump(rep.good.other, res);
          if (res === 'timeout') rep.good.lost++;
        } else checkGood(item, id, res, 'good');
        return;
      }
      case 'bad': {
        const b = badRequest(pool, r);
        const res = await post(port, `/v2/models/${b.model}/infer`, b.body, o.clientTimeoutMs);
        if (typeof res !== 'string' && (res.status === 400 || res.status === 404) && (JSON.parse(res.body) as { error?: string }).error) rep.bad.refused4xx++;
        else bump(rep.bad.other, typeof res === 'string' ? res : `${res.status} ${res.body.slice(0, 120)}`);
        return;
      }
      case 'abort': {
        const res = await post(port, path, oipBody(item.inputs, { id }), o.clientTimeoutMs, Math.floor(r() * 4));
        if (typeof res === 'string') rep.abort.aborted++;
        else checkGood(item, id, res, 'abort');
        return;
      }
      case 'cut':
        await halfBody(port, item.tenant, oipBody(item.inputs, { id }), 0);
        rep.cut++;
        return;
      case 'slow': {
        slowOpen++;
        try {
          const res = await halfBody(port, item.tenant, oipBody(item.inputs, { id }), o.slowStallMs);
          if (res.status !== null) bump(rep.slow.answered, res.status);
          else if (res.closed) rep.slow.closedByServer++;
          else rep.slow.gaveUp++;
        } finally {
          slowOpen--;
        }
      }
    }
  };

  const t0 = performance.now();
  const total = Math.round(o.seconds * o.rate);
  const sampleEvery = Math.max(1, Math.round(o.rate / 2)); // two samples a second
  let nextFaultAt = o.faultEveryS > 0 ? o.faultEveryS * 1000 : Number.POSITIVE_INFINITY;
  for (let n = 0; n < total; n++) {
    const due = (n * 1000) / o.rate;
    const wait = due - (performance.now() - t0);
    if (wait > 0) await new Promise((res) => setTimeout(res, wait));
    else maxLateness = Math.max(maxLateness, -wait);
    const now = performance.now() - t0;
    // arm a failing tick, unless the soak ends before traffic could reach it
    if (now >= nextFaultAt && now < o.seconds * 1000 - 2000) {
      runner.testInjectFault(1);
      faultsArmed++;
      nextFaultAt += o.faultEveryS * 1000;
    }
    if (n % sampleEvery === 0) {
      const collected = (n / sampleEvery) % GC_SAMPLE_EVERY === 0;
      if (collected) collector()();
      samples.push({ t: now / 1000, rss: process.memoryUsage().rss, handles: activeHandles(), collected });
    }
    track(arrive(n));
  }
  // every client settles within its own bound (clientTimeoutMs, slowStallMs); wait for them, bounded too
  const end = performance.now() + o.clientTimeoutMs + o.slowStallMs + 5000;
  while (inflight.size > 0 && performance.now() < end) await Promise.race([...inflight, new Promise((res) => setTimeout(res, 250))]);
  return {
    seconds: (performance.now() - t0) / 1000,
    ...rep,
    faultsArmed,
    failedTicks: [...failedTicks].sort((a, b) => a - b),
    server: { ...server.scheduler.stats },
    samples,
    maxLatenessMs: maxLateness,
  };
}

// Mean of a field over the first and the last third of the samples (the first few seconds are left out as warm-up);
// RSS from the samples taken after a full collection.
export function thirds(samples: readonly Sample[], field: 'rss' | 'handles', warmupS: number): { first: number; last: number } {
  const s = samples.filter((x) => x.t >= warmupS && (field !== 'rss' || x.collected === true));
  const k = Math.max(1, Math.floor(s.length / 3));
  const mean = (xs: readonly Sample[]) => xs.reduce((a, x) => a + x[field], 0) / Math.max(1, xs.length);
  return { first: mean(s.slice(0, k)), last: mean(s.slice(-k)) };
}
