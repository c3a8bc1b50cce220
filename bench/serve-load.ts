// Benchmark (not a test): `loom serve` under load (issue 12 item 7). Compiles N zoo MLPs (maxBatch 8, sloMs),
// starts `loom serve` as a child process (needs a built dist/: `npm run build`) and, in the same run, an
// HTTP floor: a bare fastify server (another child process of this program) that parses the same request
// and answers a canned response (the request's id, fixed outputs). Each target is driven with 1-row
// requests round robin over the tenants, JSON and binary-tensor bodies, in two modes:
//   closed loop: autocannon (programmatic API), C connections, one request in flight on each;
//   open loop:   a fixed arrival rate from this program's own scheduler (autocannon's overallRate only caps a
//                closed loop at N requests a second per connection, so arrivals wait for answers: not open
//                loop); request i is due at start + i / rate whether or not earlier ones were answered,
//                latency counts from when it was due (no coordinated omission), the connections it may use
//                are capped (--open-sockets) and a request waiting for one is late, not dropped.
// Per phase: answered/s, p50/p99/p999 latency (ms, of 2xx), 2xx / 429 / other counts, loom's admission
// refusals by reason (/metrics), and the accounting: every request carries a unique id; an answer whose id
// is not its request's is `mismatched`, a request answered twice `duplicated`, one never answered `lost`
// (closed loop: sent - answers - the one request in flight on each connection when the phase stops; open
// loop: exact, every request is awaited, bounded by --drain-s). lost, duplicated, mismatched must be 0.
// Prints a table; writes JSON to bench/results/<date>-<cpu or card>-serve-load.json (and $OUT if set).
// gRPC (--bodies …,grpc or --grpc): loom serve also listens with --grpc-port and serve-load-grpc.ts drives
// ModelInfer with raw_input_contents, closed loop (N calls in flight over --grpc-channels connections) and
// open loop, with the same ledger; the floor is HTTP only. --intake-threads sweeps loom serve's intake threads
// (a list: 0 = HTTP on the tick thread, auto = its default); --client-procs K runs every phase from K
// processes (one JavaScript client cannot load a server with many threads) and merges their ledgers.
// A rate of "80%" is 80% of the best closed-loop rate of that body in the same run (the SLO check at 80%).
//   npx tsx bench/serve-load.ts [--seconds 10] [--tenants 16] [--backend cpu|cuda|auto] [--connections 64,256]
//     [--rates 2000,5000,80%] [--bodies json,binary,grpc] [--targets floor,loom] [--slo-ms 50] [--queue-ticks N]
//     [--sizes 256,512,256,10] [--threads N] [--intake-threads 0,auto] [--client-procs 1] [--grpc-channels 8]
//     [--shards N --devices 0,0]
// --shards N compiles the fleet with `loom compile --shards N` and serves every shard from the one process
// (`loom serve DIR --devices LIST`: e.g. 0,0 for two shards on one GPU, cpu,cpu on the CPU backend).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { compileFleet } from '../src/fleet/compile.js';
import { readManifest } from '../src/fleet/manifest.js';
import { compileShards } from '../src/fleet/shard-compile.js';
import { alignTable, listFlag as list, runHeader, runIfMain, writeMlpFleet, writeResultJson } from './common.js';
import { grpcClosedLoop, grpcOpenLoop, grpcRequestMaker } from './serve-load-grpc.js';
import { type BodyKind, type ClientPhase, Ledger, type PhaseResult, type TenantShape, mergePhases, summarize } from './serve-load-ledger.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const SELF = fileURLToPath(import.meta.url);

// ---------------------------------------------------------------------------------------------------------
// Request bodies: one template per tenant, the id spliced in per request.

export type { BodyKind, TenantShape, PhaseResult } from './serve-load-ledger.js';
export { Ledger, answerId } from './serve-load-ledger.js';

export interface BuiltRequest {
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

// Makes request bodies for 1-row requests, round robin over `tenants`.
export function requestMaker(tenants: readonly TenantShape[], kind: 'json' | 'binary'): (id: string, seq: number) => BuiltRequest {
  const per = tenants.map((t, ti) => {
    const values = Array.from({ length: t.width }, (_, i) => Math.round(Math.sin(ti * 31 + i) * 1000) / 1000);
    const path = `/v2/models/${t.id}/infer`;
    if (kind === 'json') {
      const tail = `,"inputs":[{"name":${JSON.stringify(t.input)},"shape":[1,${t.width}],"datatype":"FP32","data":${JSON.stringify(values)}}]}`;
      return (id: string): BuiltRequest => ({ path, headers: { 'content-type': 'application/json' }, body: Buffer.from(`{"id":${JSON.stringify(id)}${tail}`) });
    }
    const bytes = Buffer.from(new Float32Array(values).buffer);
    const tail = `,"inputs":[{"name":${JSON.stringify(t.input)},"shape":[1,${t.width}],"datatype":"FP32","parameters":{"binary_data_size":${bytes.length}}}],"parameters":{"binary_data_output":true}}`;
    return (id: string): BuiltRequest => {
      const head = Buffer.from(`{"id":${JSON.stringify(id)}${tail}`);
      return {
        path,
        headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.length) },
        body: Buffer.concat([head, bytes]),
      };
    };
  });
  return (id, seq) => per[seq % per.length]!(id);
}

// ---------------------------------------------------------------------------------------------------------
// Closed loop: autocannon.

interface AutocannonResult {
  readonly requests: { readonly sent: number };
  readonly errors: number;
  readonly timeouts: number;
  readonly duration: number; // seconds
}
type Autocannon = (opts: Record<string, unknown>) => Promise<AutocannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

export async function closedLoop(
  url: string,
  make: (id: string, seq: number) => BuiltRequest,
  opts: { connections: number; seconds: number; target: string; body: BodyKind; idPrefix: string },
  sink?: { latenciesMs: number[] }, // receives the 2xx latencies (several client processes pool them)
): Promise<ClientPhase> {
  const ledger = new Ledger();
  let seq = 0;
  interface Ctx {
    id?: string;
    t0?: number;
  }
  const started = performance.now();
  const result = await autocannon({
    url,
    connections: opts.connections,
    pipelining: 1,
    duration: opts.seconds,
    timeout: 10,
    // autocannon builds each connection's next request right before writing it (and the first one when the
    // connection is made); the context is that request's until its answer is recorded
    requests: [
      {
        method: 'POST',
        setupRequest(req: Record<string, unknown>, ctx: Ctx) {
          const n = seq++;
          const id = `${opts.idPrefix}${n}`;
          const r = make(id, n);
          ctx.id = id;
          ctx.t0 = performance.now();
          ledger.send(id);
          return { ...req, path: r.path, headers: r.headers, body: r.body };
        },
        onResponse(status: number, body: string, ctx: Ctx) {
          ledger.answer(ctx.id ?? '?', status, body, performance.now() - (ctx.t0 ?? started));
        },
      },
    ],
  });
  const seconds = result.duration || (performance.now() - started) / 1000;
  // autocannon counts connection errors itself (no response reaches onResponse then)
  ledger.errors += result.errors;
  if (result.errors > 0) ledger.errorCodes.autocannon = (ledger.errorCodes.autocannon ?? 0) + result.errors;
  if (sink) sink.latenciesMs = ledger.latenciesMs;
  // one request is in flight on each connection when autocannon stops (it sends the next on every answer)
  return summarize(
    { target: opts.target, body: opts.body, mode: 'closed', connections: opts.connections, rate: null },
    ledger,
    seconds,
    opts.connections,
    result.timeouts,
  );
}

// ---------------------------------------------------------------------------------------------------------
// Open loop: fixed arrival rate, our own scheduler over node:http with a capped keep-alive agent.

export async function openLoop(
  url: string,
  make: (id: string, seq: number) => BuiltRequest,
  opts: { rate: number; seconds: number; target: string; body: BodyKind; idPrefix: string; sockets: number; drainS: number },
  sink?: { latenciesMs: number[] },
): Promise<ClientPhase> {
  const ledger = new Ledger();
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.sockets });
  const u = new URL(url);
  const total = Math.max(1, Math.floor(opts.rate * opts.seconds)); // bounded in count
  const inflight = new Set<Promise<void>>();
  const start = performance.now();
  const deadline = start + opts.seconds * 1000 + 1000; // and in time: no send after it
  let i = 0;
  const one = (n: number, due: number) => {
    const id = `${opts.idPrefix}${n}`;
    const r = make(id, n);
    ledger.send(id);
    const p = new Promise<void>((resolve) => {
      const req = http.request(
        { host: u.hostname, port: u.port, method: 'POST', path: r.path, headers: { ...r.headers, 'content-length': String(r.body.length) }, agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            ledger.answer(id, res.statusCode ?? 0, Buffer.concat(chunks).toString('latin1'), performance.now() - due);
            resolve();
          });
          res.on('error', (e: NodeJS.ErrnoException) => {
            ledger.answer(id, 0, '', 0, e.code ?? e.message);
            resolve();
          });
        },
      );
      req.on('error', (e: NodeJS.ErrnoException) => {
        ledger.answer(id, 0, '', 0, e.code ?? e.message);
        resolve();
      });
      req.end(r.body);
    });
    inflight.add(p);
    void p.then(() => inflight.delete(p));
  };
  while (i < total && performance.now() < deadline) {
    const now = performance.now();
    while (i < total && start + (i * 1000) / opts.rate <= now) {
      one(i, start + (i * 1000) / opts.rate);
      i++;
    }
    const next = start + (i * 1000) / opts.rate - performance.now();
    await new Promise((r) => setTimeout(r, Math.max(0, Math.min(next, 5))));
  }
  const sentFor = (performance.now() - start) / 1000;
  // drain: every request sent is awaited, at most drainS seconds
  const drained = Promise.all([...inflight]);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([drained, new Promise((r) => (timer = setTimeout(r, opts.drainS * 1000)))]);
  clearTimeout(timer);
  agent.destroy();
  if (sink) sink.latenciesMs = ledger.latenciesMs;
  return summarize(
    { target: opts.target, body: opts.body, mode: 'open', connections: opts.sockets, rate: opts.rate },
    ledger,
    Math.max(sentFor, opts.seconds),
    0,
    0,
  );
}

// ---------------------------------------------------------------------------------------------------------
// The HTTP floor: the same framework (fastify), the same routes and body parsing, a canned answer.

export type FloorFault = 'none' | 'wrong-id' | 'drop'; // faults for the harness's own test

export async function startFloor(tenants: readonly TenantShape[], fault: FloorFault = 'none'): Promise<{ url: string; close: () => Promise<void> }> {
  const { default: Fastify } = await import('fastify');
  const app = Fastify({ logger: false, bodyLimit: 32 * 1024 * 1024 });
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  const byId = new Map(tenants.map((t) => [t.id, t]));
  let n = 0;
  app.post('/v2/models/:model/infer', async (req, reply) => {
    const model = (req.params as { model: string }).model;
    const t = byId.get(model);
    if (!t) return reply.code(404).send({ error: `unknown model '${model}'` });
    let parsed: { id?: string };
    if (Buffer.isBuffer(req.body)) {
      const len = Number(req.headers['inference-header-content-length']);
      parsed = JSON.parse(req.body.subarray(0, len).toString()) as { id?: string };
    } else parsed = req.body as { id?: string };
    n++;
    if (fault === 'drop' && n % 10 === 0) {
      req.raw.socket.destroy(); // never answered
      return reply;
    }
    const id = fault === 'wrong-id' && n % 10 === 0 ? `${parsed.id}-x` : parsed.id;
    return { model_name: model, model_version: '1', id, outputs: [{ name: t.output, datatype: 'FP32', shape: [1, 10], data: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0] }] };
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { url, close: () => app.close() };
}

// ---------------------------------------------------------------------------------------------------------
// Child processes: loom serve, the floor.

function waitForUrl(proc: ChildProcess, re: RegExp, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const on = (d: Buffer) => {
      out += d.toString();
      const m = re.exec(out);
      if (m) resolve(m[1]!);
    };
    proc.stdout?.on('data', on);
    proc.stderr?.on('data', on);
    const timer = setTimeout(() => reject(new Error(`${what} did not start in 120 s: ${out.slice(-2000)}`)), 120_000);
    timer.unref();
    proc.on('exit', (code) => reject(new Error(`${what} exited (${code}): ${out.slice(-2000)}`)));
  });
}

// intakeThreads: `--intake-threads` ('auto' or absent: loom serve's default); grpcPort: also serve gRPC there;
// devices: `--devices` (a shards directory); maxConnections: `--max-connections` (absent: loom serve's default).
export async function startLoom(
  plan: string,
  opts: {
    backend: string;
    threads?: string;
    queueTicks?: number; // absent: loom serve's default admission
    intakeThreads?: string;
    grpcPort?: number;
    devices?: string;
    maxConnections?: number;
  },
): Promise<{ proc: ChildProcess; url: string; grpc: string | null; intakeThreads: number | null }> {
  if (!existsSync(path.join(ROOT, 'dist/src/cli/serve.js'))) throw new Error('dist/ has no serve command: run `npm run build` first');
  const argv = [path.join(ROOT, 'bin/loom.js'), 'serve', plan, '--port', '0', '--backend', opts.backend, '--log-level', 'warn'];
  if (opts.threads) argv.push('--threads', opts.threads);
  if (opts.devices) argv.push('--devices', opts.devices);
  if (opts.intakeThreads !== undefined && opts.intakeThreads !== 'auto') argv.push('--intake-threads', opts.intakeThreads);
  if (opts.grpcPort !== undefined) argv.push('--grpc-port', String(opts.grpcPort));
  if (opts.queueTicks !== undefined) argv.push('--queue-ticks', String(opts.queueTicks));
  if (opts.maxConnections !== undefined) argv.push('--max-connections', String(opts.maxConnections));
  const proc = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let line = '';
  proc.stderr?.on('data', (d: Buffer) => (line += d.toString()));
  const url = await waitForUrl(proc, /serving .* at (https?:\/\/[^\s]+) /, 'loom serve');
  const grpcAt = /gRPC \([^)]*\) at (\S+)/.exec(line)?.[1] ?? null;
  // the startup line says how many intake threads serve HTTP ("HTTP on the tick thread": 0); older builds say neither
  const k = /HTTP intake on (\d+) worker thread/.exec(line);
  return { proc, url, grpc: grpcAt, intakeThreads: k ? Number(k[1]) : /HTTP on the tick thread/.test(line) ? 0 : null };
}

async function startFloorChild(tenantsFile: string): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', SELF, '--floor-server', tenantsFile], { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
  return { proc, url: await waitForUrl(proc, /floor at (http:\/\/[^\s]+)/, 'the floor server') };
}

export function stop(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    proc.kill('SIGTERM');
  });
}

export interface Scrape {
  readonly rejected: Record<string, number>; // loom_admission_rejected_total by reason
  readonly sloMissed: number; // loom_slo_missed_total, summed over its series
}

export async function scrape(url: string): Promise<Scrape> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const rejected: Record<string, number> = {};
  for (const m of text.matchAll(/^loom_admission_rejected_total\{[^}]*reason="([^"]+)"[^}]*\} (\S+)$/gm))
    rejected[m[1]!] = (rejected[m[1]!] ?? 0) + Number(m[2]);
  // fleet-level by default (no labels), one series a tenant with --metrics-per-tenant
  const sloMissed = [...text.matchAll(/^loom_slo_missed_total(?:\{[^}]*\})? (\S+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
  return { rejected, sloMissed };
}

// What loom's /metrics counted between two scrapes: admission refusals by reason and SLO misses.
export function scrapeDelta(before: Scrape, after: Scrape): { rejectedByReason: Record<string, number>; sloMissed: number } {
  return {
    rejectedByReason: Object.fromEntries(Object.entries(after.rejected).map(([k, v]) => [k, v - (before.rejected[k] ?? 0)])),
    sloMissed: after.sloMissed - before.sloMissed,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Several client processes (--client-procs): one load generator is one JavaScript thread, which cannot
// drive a server that has many. Each child runs the same closed loop on its share of the connections with
// its own ids, from the same start time, and hands back its counts and latencies; the phase is their merge.

interface ClientSpec {
  readonly kind: 'http' | 'grpc';
  readonly mode: 'closed' | 'open';
  readonly rate: number; // open loop: this process's share of the arrivals per second
  readonly drainS: number;
  readonly sockets: number;
  readonly address: string; // the base URL, or host:port for gRPC
  readonly tenantsFile: string;
  readonly body: BodyKind;
  readonly target: string;
  readonly connections: number;
  readonly channels: number;
  readonly seconds: number;
  readonly idPrefix: string;
  readonly out: string; // the child writes <out>.json (its phase) and <out>.lat (Float64 latencies)
}

async function clientChild(specFile: string): Promise<void> {
  const spec = JSON.parse(readFileSync(specFile, 'utf8')) as ClientSpec;
  const tenants = JSON.parse(readFileSync(spec.tenantsFile, 'utf8')) as TenantShape[];
  // loaded: say so, then start at the epoch ms the parent writes once every child is loaded
  process.stdout.write('ready\n');
  const startAt = await new Promise<number>((resolve) => {
    let got = '';
    process.stdin.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.includes('\n')) resolve(Number(got.trim()));
    });
  });
  process.stdin.destroy();
  await new Promise((r) => setTimeout(r, Math.max(0, startAt - Date.now())));
  const sink = { latenciesMs: [] as number[] };
  const phase =
    spec.mode === 'open'
      ? spec.kind === 'grpc'
        ? await grpcOpenLoop(
            spec.address,
            grpcRequestMaker(tenants),
            { rate: spec.rate, channels: spec.channels, seconds: spec.seconds, target: spec.target, idPrefix: spec.idPrefix, drainS: spec.drainS },
            sink,
          )
        : await openLoop(
            spec.address,
            requestMaker(tenants, spec.body as 'json' | 'binary'),
            {
              rate: spec.rate,
              seconds: spec.seconds,
              target: spec.target,
              body: spec.body,
              idPrefix: spec.idPrefix,
              sockets: spec.sockets,
              drainS: spec.drainS,
            },
            sink,
          )
      : spec.kind === 'grpc'
        ? await grpcClosedLoop(
            spec.address,
            grpcRequestMaker(tenants),
            { concurrency: spec.connections, channels: spec.channels, seconds: spec.seconds, target: spec.target, idPrefix: spec.idPrefix },
            sink,
          )
        : await closedLoop(
            spec.address,
            requestMaker(tenants, spec.body as 'json' | 'binary'),
            { connections: spec.connections, seconds: spec.seconds, target: spec.target, body: spec.body, idPrefix: spec.idPrefix },
            sink,
          );
  writeFileSync(`${spec.out}.lat`, Buffer.from(new Float64Array(sink.latenciesMs).buffer));
  writeFileSync(`${spec.out}.json`, JSON.stringify(phase));
}

// load: the closed loop's connections (or gRPC calls in flight), or the open loop's arrivals per second, split
// over the processes.
async function loopInProcs(
  base: Omit<ClientSpec, 'connections' | 'rate' | 'out' | 'idPrefix'>,
  load: number,
  procs: number,
  work: string,
  idPrefix: string,
): Promise<ClientPhase> {
  let ready = 0;
  let go = (): void => {};
  const allReady = new Promise<void>((r) => (go = r));
  const procsStarted: ChildProcess[] = [];
  const children = Array.from({ length: procs }, (_, i) => {
    const spec: ClientSpec = {
      ...base,
      connections: base.mode === 'closed' ? Math.floor(load / procs) + (i < load % procs ? 1 : 0) : 0,
      rate: base.mode === 'open' ? load / procs : 0,
      idPrefix: `${idPrefix}p${i}-`,
      out: path.join(work, `client-${idPrefix}${i}`),
    };
    writeFileSync(`${spec.out}.spec.json`, JSON.stringify(spec));
    const proc = spawn(process.execPath, ['--import', 'tsx', SELF, '--client-child', `${spec.out}.spec.json`], { stdio: ['pipe', 'pipe', 'pipe'], cwd: ROOT });
    procsStarted.push(proc);
    proc.stdout!.once('data', () => {
      if (++ready === procs) go();
    });
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    return new Promise<{ phase: ClientPhase; latenciesMs: Float64Array }>((resolve, reject) =>
      proc.on('exit', (code) => {
        if (code !== 0) return reject(new Error(`client process ${i} exited ${code}: ${err.slice(-2000)}`));
        const lat = readFileSync(`${spec.out}.lat`);
        resolve({
          phase: JSON.parse(readFileSync(`${spec.out}.json`, 'utf8')) as ClientPhase,
          latenciesMs: new Float64Array(lat.buffer, lat.byteOffset, lat.byteLength / 8),
        });
      }),
    );
  });
  const exits = Promise.all(children);
  await Promise.race([allReady, exits]);
  const startAt = Date.now() + 100;
  for (const p of procsStarted) p.stdin!.end(`${startAt}\n`);
  return mergePhases(await exits);
}

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

// ---------------------------------------------------------------------------------------------------------

function deviceName(backend: string): string {
  if (backend !== 'cpu') {
    try {
      const name = execFileSync('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .split('\n')[0]!
        .trim();
      if (name) return name;
    } catch {
      // no GPU tools: the CPU names the file
    }
  }
  return os.cpus()[0]?.model ?? 'cpu';
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      seconds: { type: 'string', default: '10' },
      tenants: { type: 'string', default: '16' },
      backend: { type: 'string', default: 'cpu' },
      threads: { type: 'string' },
      connections: { type: 'string', default: '64,256' },
      rates: { type: 'string', default: '2000,5000' }, // open loop, requests per second over all tenants
      bodies: { type: 'string', default: 'json,binary' },
      targets: { type: 'string', default: 'floor,loom' },
      'slo-ms': { type: 'string', default: '50' },
      'queue-ticks': { type: 'string' }, // absent: loom serve's default (admission by the SLO)
      'max-batch': { type: 'string', default: '8' },
      sizes: { type: 'string', default: '256,512,256,10' },
      'open-sockets': { type: 'string', default: '512' },
      'drain-s': { type: 'string', default: '10' },
      warmup: { type: 'string', default: '2' },
      grpc: { type: 'boolean', default: false }, // adds grpc to --bodies
      'grpc-channels': { type: 'string', default: '8' }, // HTTP/2 connections the gRPC client spreads its calls over
      'intake-threads': { type: 'string', default: 'auto' }, // loom serve --intake-threads, swept: e.g. 0,auto or 0,4,15
      'client-procs': { type: 'string', default: '1' }, // load-generating processes per phase (closed and open loops)
      shards: { type: 'string', default: '1' },
      devices: { type: 'string' }, // loom serve --devices, with --shards
      out: { type: 'string', default: path.join(ROOT, 'bench/results') },
      'floor-server': { type: 'string' }, // internal: run the floor server for this tenants file
      'client-child': { type: 'string' }, // internal: run one client process of a closed loop (--client-procs)
    },
  });
  if (args['client-child']) return clientChild(args['client-child']);
  if (args['floor-server']) {
    const tenants = JSON.parse(readFileSync(args['floor-server'], 'utf8')) as TenantShape[];
    const floor = await startFloor(tenants);
    process.stdout.write(`floor at ${floor.url}\n`);
    process.once('SIGTERM', () => void floor.close().then(() => process.exit(0)));
    return;
  }
  const seconds = Number(args.seconds);
  const nTenants = Number(args.tenants);
  const sloMs = Number(args['slo-ms']);
  const queueTicks = args['queue-ticks'] === undefined ? undefined : Number(args['queue-ticks']);
  const maxBatch = Number(args['max-batch']);
  const sizes = list(args.sizes!).map(Number);
  const bodies = list(args.bodies!) as BodyKind[];
  if (args.grpc && !bodies.includes('grpc')) bodies.push('grpc');
  for (const b of bodies) if (!['json', 'binary', 'grpc'].includes(b)) throw new Error(`--bodies: unknown '${b}' (json, binary, grpc)`);
  const targets = list(args.targets!);
  const backend = args.backend!;
  const intakeSweep = list(args['intake-threads']!);
  for (const v of intakeSweep)
    if (v !== 'auto' && !/^\d+$/.test(v)) throw new Error(`--intake-threads: '${v}' is not a thread count or 'auto' (loom serve's default)`);
  const clientProcs = Number(args['client-procs']);
  const channels = Number(args['grpc-channels']);
  if (!Number.isInteger(clientProcs) || clientProcs < 1) throw new Error(`--client-procs must be a positive integer, got '${args['client-procs']}'`);
  if (!Number.isInteger(channels) || channels < 1) throw new Error(`--grpc-channels must be a positive integer, got '${args['grpc-channels']}'`);

  const work = mkdtempSync(path.join(os.tmpdir(), 'loom-serve-load-'));
  const children: ChildProcess[] = [];
  try {
    // the fleet: N zoo MLPs at maxBatch, one SLO
    const manifest = writeMlpFleet(work, sizes, nTenants);
    const m = JSON.parse(readFileSync(manifest, 'utf8')) as { tenants: Array<Record<string, unknown>> };
    for (const t of m.tenants) Object.assign(t, { maxBatch, sloMs });
    writeFileSync(manifest, JSON.stringify(m));
    const plan = path.join(work, 'plan');
    process.stderr.write(`compiling ${nTenants} x MLP ${sizes.join('-')} (maxBatch ${maxBatch}, sloMs ${sloMs})...\n`);
    const shards = Number(args.shards);
    const nvcc = backend === 'cpu' ? 'off' : 'auto';
    if (shards > 1) await compileShards(readManifest(manifest), plan, { shards, nvcc });
    else await compileFleet(manifest, plan, { nvcc });
    const shapes: TenantShape[] = m.tenants.map((t) => ({ id: t.id as string, input: 'input', width: sizes[0]!, output: 'output' }));
    const planDirs = shards > 1 ? Array.from({ length: shards }, (_, k) => path.join(plan, `shard-${k}`)) : [plan];
    const planTenants = planDirs.flatMap(
      (d) =>
        (
          JSON.parse(readFileSync(path.join(d, 'plan.json'), 'utf8')) as {
            tenants?: Array<{ id: string; inputs: Array<{ name: string }>; outputs: Array<{ name: string }> }>;
          }
        ).tenants ?? [],
    );
    for (const s of shapes) {
      const pt = planTenants.find((t) => t.id === s.id);
      if (pt) Object.assign(s, { input: pt.inputs[0]!.name, output: pt.outputs[0]!.name });
    }
    const tenantsFile = path.join(work, 'tenants.json');
    writeFileSync(tenantsFile, JSON.stringify(shapes));

    const phases: PhaseResult[] = [];
    let prefix = 0;
    // loom once per --intake-threads value; the floor once (it has no intake threads)
    const runs = targets.flatMap((target) => {
      if (target === 'floor') return [{ target, intake: null as string | null }];
      if (target === 'loom') return intakeSweep.map((intake) => ({ target, intake: intake as string | null }));
      throw new Error(`unknown target '${target}' (floor, loom)`);
    });
    for (const { target, intake } of runs) {
      let url: string;
      let proc: ChildProcess;
      let grpcAt: string | null = null;
      let intakeThreads: number | null = null;
      if (target === 'loom') {
        const grpcPort = bodies.includes('grpc') ? await freePort() : undefined;
        ({
          proc,
          url,
          grpc: grpcAt,
          intakeThreads,
        } = await startLoom(plan, {
          backend,
          threads: args.threads,
          ...(queueTicks !== undefined ? { queueTicks } : {}),
          intakeThreads: intake!,
          grpcPort,
          ...(args.devices ? { devices: args.devices } : {}),
          // every socket the clients may open, with room to spare: the benchmark measures serving, not the cap
          maxConnections: Math.max(1000, clientProcs * Math.max(Number(args['open-sockets']), ...list(args.connections!).map(Number)) + 64),
        }));
      } else if (target === 'floor') ({ proc, url } = await startFloorChild(tenantsFile));
      else throw new Error(`unknown target '${target}' (floor, loom)`);
      children.push(proc);
      process.stderr.write(`${target} at ${url}${grpcAt ? ` (gRPC ${grpcAt})` : ''}${target === 'loom' ? `, intake threads ${intakeThreads ?? '?'}` : ''}\n`);
      for (const body of bodies) {
        if (body === 'grpc' && grpcAt === null) continue; // the floor is HTTP only
        const grpcMake = grpcRequestMaker(shapes);
        const make = requestMaker(shapes, body === 'grpc' ? 'binary' : body);
        const warmup = Number(args.warmup);
        if (warmup > 0) {
          if (body === 'grpc') await grpcClosedLoop(grpcAt!, grpcMake, { concurrency: 8, channels, seconds: warmup, target, idPrefix: `w${prefix++}-` });
          else await closedLoop(url, make, { connections: 8, seconds: warmup, target, body, idPrefix: `w${prefix++}-` });
        }
        const run = async (phase: () => Promise<ClientPhase>, procs: number) => {
          const before = target === 'loom' ? await scrape(url) : null;
          const r = await phase();
          const after = target === 'loom' ? await scrape(url) : null;
          const delta = before && after ? scrapeDelta(before, after) : null;
          const full: PhaseResult = {
            ...r,
            rejectedByReason: delta?.rejectedByReason ?? null,
            sloMissed: delta?.sloMissed ?? null,
            intakeThreads,
            clientProcs: procs,
          };
          phases.push(full);
          process.stderr.write(
            `  ${target}${intakeThreads !== null ? ` intake ${intakeThreads}` : ''} ${body} ${r.mode} ${r.mode === 'closed' ? `c=${r.connections}` : `rate=${r.rate}`}: ${r.okPerS} ok/s, p99 ${r.p99Ms} ms, 429 ${r.refused429}, lost ${r.lost}, dup ${r.duplicated}, mismatched ${r.mismatched}${r.errors > 0 ? `, transport errors ${JSON.stringify(r.errorCodes)}` : ''}\n`,
          );
        };
        const drainS = Number(args['drain-s']);
        const sockets = Number(args['open-sockets']);
        const kind = body === 'grpc' ? ('grpc' as const) : ('http' as const);
        const address = body === 'grpc' ? grpcAt! : url;
        const first = phases.length;
        for (const c of list(args.connections!).map(Number)) {
          const idPrefix = `c${prefix++}-`;
          if (clientProcs > 1)
            await run(
              () =>
                loopInProcs({ kind, mode: 'closed', address, tenantsFile, body, target, channels, seconds, drainS, sockets }, c, clientProcs, work, idPrefix),
              clientProcs,
            );
          else if (body === 'grpc') await run(() => grpcClosedLoop(grpcAt!, grpcMake, { concurrency: c, channels, seconds, target, idPrefix }), 1);
          else await run(() => closedLoop(url, make, { connections: c, seconds, target, body, idPrefix }), 1);
        }
        // "80%": that share of the best closed-loop rate this body just reached (the issue's p99 check at 80% of saturation)
        const saturated = Math.max(0, ...phases.slice(first).map((p) => p.okPerS));
        for (const spec of list(args.rates!)) {
          const rate = spec.endsWith('%') ? Math.round((saturated * Number(spec.slice(0, -1))) / 100) : Number(spec);
          if (!(rate > 0)) {
            process.stderr.write(`  rate '${spec}': no closed-loop rate to take a share of; skipped\n`);
            continue;
          }
          const idPrefix = `o${prefix++}-`;
          if (clientProcs > 1)
            await run(
              () =>
                loopInProcs({ kind, mode: 'open', address, tenantsFile, body, target, channels, seconds, drainS, sockets }, rate, clientProcs, work, idPrefix),
              clientProcs,
            );
          else if (body === 'grpc') await run(() => grpcOpenLoop(grpcAt!, grpcMake, { rate, seconds, target, idPrefix, channels, drainS }), 1);
          else await run(() => openLoop(url, make, { rate, seconds, target, body, idPrefix, sockets, drainS }), 1);
        }
      }
      await stop(proc);
    }

    const head = [
      'target',
      'intake',
      'body',
      'mode',
      'load',
      'ok/s',
      'p50 ms',
      'p99 ms',
      'p999 ms',
      '2xx',
      '429',
      'other',
      'err',
      'lost',
      'dup',
      'mism',
      'slo missed', // loom_slo_missed_total: answered later than sloMs as the server measures it
      '429 by reason',
    ];
    const rows = phases.map((p) => [
      p.target,
      p.intakeThreads === null ? '-' : String(p.intakeThreads),
      p.body,
      p.mode,
      p.mode === 'closed' ? `${p.connections} ${p.body === 'grpc' ? 'calls' : 'conn'}${p.clientProcs > 1 ? ` / ${p.clientProcs} procs` : ''}` : `${p.rate}/s`,
      String(p.okPerS),
      p.p50Ms.toFixed(2),
      p.p99Ms.toFixed(2),
      p.p999Ms.toFixed(2),
      String(p.ok),
      String(p.refused429),
      String(p.other),
      String(p.errors + p.timeouts),
      String(p.lost),
      String(p.duplicated),
      String(p.mismatched),
      p.sloMissed === null ? '-' : String(p.sloMissed),
      p.rejectedByReason
        ? Object.entries(p.rejectedByReason)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ') || '-'
        : '-',
    ]);
    const device = deviceName(backend);
    process.stdout.write(
      `\nloom serve load: ${nTenants} x MLP ${sizes.join('-')}, maxBatch ${maxBatch}, sloMs ${sloMs}, --queue-ticks ${queueTicks ?? 'default'}, backend ${backend}, ${device}, ${os.cpus().length} cores, ${seconds} s a phase\n`,
    );
    process.stdout.write(`${alignTable(head, rows, 5).join('\n')}\n`);
    const bad = phases.filter((p) => p.lost > 0 || p.duplicated > 0 || p.mismatched > 0);
    process.stdout.write(
      bad.length === 0 ? 'accounting: lost = duplicated = mismatched = 0 in every phase\n' : `ACCOUNTING FAILED in ${bad.length} phase(s)\n`,
    );

    const json = {
      ...runHeader('serve-load', device),
      backend,
      fleet: { tenants: nTenants, sizes, maxBatch, sloMs, queueTicks: queueTicks ?? null },
      closedLoopClient: `autocannon (pipelining 1); gRPC: @grpc/grpc-js ModelInfer, raw_input_contents, N calls in flight over ${channels} channels; ${clientProcs} client process(es)`,
      openLoopClient: `own fixed-rate scheduler, node:http keep-alive agent, maxSockets ${args['open-sockets']}, latency from the due time`,
      phases,
    };
    writeResultJson(args.out!, device, 'serve-load', json);
    if (bad.length > 0) process.exitCode = 1;
  } finally {
    for (const c of children) await stop(c);
    rmSync(work, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, main);
