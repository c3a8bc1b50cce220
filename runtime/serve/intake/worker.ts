// An intake worker (worker_threads; pool.ts starts them): the OIP v2 HTTP routes (http-app.ts) on the shared
// port (SO_REUSEPORT: the kernel spreads connections over the workers), with auth, TLS, limits and body
// decoding and validation here; the requests decoded in one event-loop turn go to the tick thread as one
// message with their tensors in one transferred buffer, and its answers come back the same way. A request
// that fails decoding or validation is answered here and never reaches the tick thread.
import { parentPort, workerData } from 'node:worker_threads';
import type { Tensor } from '../../../ir/tensor.js';
import type { AuthConfig } from '../auth.js';
import { ServeError, refuse } from '../errors.js';
import { type IntakeBackend, createHttpApp } from '../http-app.js';
import { type GrpcService, createGrpcService } from '../grpc/service.js';
import { ServeMetrics } from '../metrics.js';
import { validateRequest } from '../validate.js';
import {
  INTAKE_METRICS,
  type IntakeWorkerData,
  type MainMessage,
  type MetricsJson,
  type SubmitItem,
  type WorkerMessage,
  packTensors,
  renderMetrics,
  unpackTensors,
} from './protocol.js';

const port = parentPort;
if (!port) throw new Error('runtime/serve/intake/worker.ts runs as a worker thread (started by the intake pool), not on its own');
const data = workerData as IntakeWorkerData;
const post = (m: WorkerMessage, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer);

const tenants = new Map(data.plan.tenants.map((t) => [t.id, t]));
const tenantIds = data.plan.tenants.map((t) => t.id);
const checkFinite = new Map(data.plan.tenants.map((t) => [t.id, data.checkFinite || t.checkFinite === true]));

interface Pending {
  readonly resolve: (outs: Record<string, Tensor>) => void;
  readonly reject: (e: unknown) => void;
  sent: boolean;
}
const pending = new Map<number, Pending>();
let outbox: Array<{ item: Omit<SubmitItem, 'inputs'>; inputs: Record<string, Tensor> }> = [];
let flushing = false;
let nextRid = 0;
let draining = false;

// the requests decoded in this event-loop turn: one message, one transferred buffer
const flush = (): void => {
  flushing = false;
  const batch = outbox;
  outbox = [];
  if (batch.length === 0) return;
  const { buffer, metas } = packTensors(batch.map((b) => b.inputs));
  for (const b of batch) pending.get(b.item.rid)!.sent = true;
  post({ type: 'submit', buffer, items: batch.map((b, i) => ({ ...b.item, inputs: metas[i]! })) }, [buffer]);
};

const asks = new Map<number, (v: unknown) => void>();
let nextAsk = 0;
const ask = <T>(what: 'ready' | 'metrics'): Promise<T> =>
  new Promise((resolve) => {
    const n = ++nextAsk;
    asks.set(n, resolve as (v: unknown) => void);
    post({ type: 'ask', ask: n, what });
  });

const backend: IntakeBackend = {
  tenantIds,
  tenant: (id) => tenants.get(id),
  sloMs: (id) => data.sloMs[id] ?? null,
  // admission (quota, SLO) is the tick thread's, at submit; here only the drain refuses before the body is read
  precheck: () => {
    if (draining) refuse(503, 'the server is shutting down and accepts no new requests');
  },
  submit(tenant, inputs, { arrivedAt, signal }) {
    const t = tenants.get(tenant);
    if (!t) return Promise.reject(new ServeError(404, `unknown model '${tenant}' (this server has: ${tenantIds.join(', ')})`));
    try {
      validateRequest(t, inputs, { checkFinite: checkFinite.get(tenant) === true });
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      const rid = ++nextRid;
      const p: Pending = { resolve, reject, sent: false };
      pending.set(rid, p);
      outbox.push({ item: { rid, tenant, arrivedAt: performance.timeOrigin + arrivedAt }, inputs });
      signal.addEventListener(
        'abort',
        () => {
          if (!pending.has(rid)) return;
          if (p.sent) return post({ type: 'cancel', rid });
          // not handed over yet: it never reaches the tick thread
          outbox = outbox.filter((b) => b.item.rid !== rid);
          pending.delete(rid);
          reject(new ServeError(499, `the client of this request to model '${tenant}' went away before it was queued`));
        },
        { once: true },
      );
      if (!flushing) {
        flushing = true;
        setImmediate(flush);
      }
    });
  },
  isReady: () => ask<boolean>('ready'),
  metrics: async () => {
    const parts = await ask<MetricsJson[] | string>('metrics');
    if (typeof parts === 'string') throw new Error(`the metrics could not be collected: ${parts}`);
    return renderMetrics(parts);
  },
};

let logLines: string[] = [];
function flushLog(): void {
  if (logLines.length === 0) return;
  post({ type: 'log', line: logLines.join('') });
  logLines = [];
}
function writeLog(line: string): void {
  if (logLines.length === 0) setImmediate(flushLog);
  logLines.push(line);
}

// The auth config crossed as a structured clone: its digests arrive as Uint8Arrays.
const auth: AuthConfig | null = data.http.auth
  ? { ...data.http.auth, tokens: data.http.auth.tokens.map((t) => ({ ...t, digest: Buffer.from(t.digest.buffer, t.digest.byteOffset, t.digest.byteLength) })) }
  : null;
const metrics = new ServeMetrics({ plan: data.plan, backend: data.backend, queueDepth: () => ({ requests: 0, rows: 0 }) }, data.metrics);
const http = createHttpApp(
  {
    ...data.http,
    auth,
    idPrefix: `w${data.index}`, // request ids unique across the workers
    // log lines go to the tick thread, which writes them where the server's logger writes (one message a turn)
    logger: data.http.logLevel === null ? false : { level: data.http.logLevel, stream: { write: writeLog } },
  },
  backend,
  metrics,
);

// gRPC, when the tick thread asks this worker to serve it: the same backend as the HTTP routes
const never = new AbortController().signal;
let grpcService: GrpcService | null = null;
let grpcDone: Promise<void> = Promise.resolve();
const listenGrpc = (grpcPort: number, host: string): void => {
  grpcService = createGrpcService({
    scheduler: {
      tenant: backend.tenant,
      sloMs: backend.sloMs,
      precheck: backend.precheck,
      submit: (tenant, inputs, o = {}) => backend.submit(tenant, inputs, { arrivedAt: o.arrivedAt ?? performance.now(), signal: o.signal ?? never }),
    },
    metrics,
    tenantIds,
    auth,
    version: data.http.version,
    isReady: backend.isReady,
    maxMessageBytes: data.http.bodyLimit,
    tls: data.http.tls,
    log: http.app.log,
  });
  grpcService.listen(grpcPort, host).then(
    (where) => post({ type: 'grpc-listening', where }),
    (e: unknown) => post({ type: 'grpc-failed', message: e instanceof Error ? e.message : String(e) }),
  );
};

port.on('message', (m: MainMessage) => {
  switch (m.type) {
    case 'answers':
      for (const a of m.items) {
        const p = pending.get(a.rid);
        if (!p) continue; // its client went away and the tick thread had already answered
        pending.delete(a.rid);
        if (a.ok) p.resolve(unpackTensors(m.buffer, a.outputs));
        else p.reject(new ServeError(a.status, a.message, a.retryAfterS));
      }
      return;
    case 'reply': {
      const r = asks.get(m.ask);
      asks.delete(m.ask);
      r?.(m.value);
      return;
    }
    case 'collect-metrics':
      void metrics.registry
        .getMetricsAsJSON()
        .then((all) => post({ type: 'metrics-json', collect: m.collect, metrics: all.filter((x) => INTAKE_METRICS.has(x.name)) }));
      return;
    case 'grpc-listen':
      listenGrpc(m.port, m.host);
      return;
    case 'drain':
      draining = true;
      http.startClosing();
      // gRPC: no new calls; accepted ones are answered as the tick thread drains
      if (grpcService) grpcDone = (grpcService as GrpcService).shutdown(data.http.limits.requestTimeoutMs);
      return;
    case 'close':
      void Promise.all([http.close(), grpcDone]).then(() => {
        flushLog();
        post({ type: 'closed' });
        port.close();
      });
      return;
    default: {
      const never: never = m;
      throw new Error(`intake worker: unknown message ${JSON.stringify(never)}`);
    }
  }
});

http.listen(data.port, data.host, true).then(
  (url) => post({ type: 'listening', url }),
  (e: unknown) => {
    throw e; // the pool sees the worker's error event and fails listen() with it
  },
);
