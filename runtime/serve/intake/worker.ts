// An intake worker (worker_threads; pool.ts starts them): the OIP v2 HTTP routes (http-app.ts) on the shared
// port (SO_REUSEPORT: the kernel spreads connections over the workers), with auth, TLS, limits and body
// decoding and validation here; the requests decoded in one event-loop turn go to the tick thread as one
// message with their tensors in one transferred buffer, and its answers come back the same way. A request
// that fails decoding or validation is answered here and never reaches the tick thread. After a plan reload
// (swap.ts) the tick thread sends the new plan's tenants, SLOs and auth ('plan'); the repository routes
// (index, reload) are asked of the tick thread and answer what it says.
import { parentPort, workerData } from 'node:worker_threads';
import type { PlannedTenant } from '../../../ir/contract/plan.js';
import type { Tensor } from '../../../ir/tensor.js';
import type { AuthConfig } from '../auth.js';
import { type RemovedModel, ServeError, notServedMessage, refuse } from '../errors.js';
import { type IntakeBackend, createHttpApp } from '../http-app.js';
import { type GrpcService, createGrpcService } from '../grpc/service.js';
import { ServeMetrics } from '../metrics.js';
import type { ReloadReport, RepositoryEntry } from '../swap.js';
import { validateRequest } from '../validate.js';
import {
  type AskWhat,
  INTAKE_METRICS,
  type IntakePlan,
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

// The auth config crossed as a structured clone: its digests arrive as Uint8Arrays.
const authOf = (a: AuthConfig | null): AuthConfig | null =>
  a ? { ...a, tokens: a.tokens.map((t) => ({ ...t, digest: Buffer.from(t.digest.buffer, t.digest.byteOffset, t.digest.byteLength) })) } : null;

// The plan served now: replaced whole by a reload's 'plan' message (each request reads it once it is decoded).
interface Serving {
  readonly tenants: ReadonlyMap<string, PlannedTenant>;
  readonly tenantIds: readonly string[];
  readonly checkFinite: ReadonlyMap<string, boolean>;
  readonly sloMs: Readonly<Record<string, number | null>>;
  readonly auth: AuthConfig | null;
  readonly removed: ReadonlyMap<string, RemovedModel>;
}
const servingOf = (p: IntakePlan): Serving => ({
  tenants: new Map(p.plan.tenants.map((t) => [t.id, t])),
  tenantIds: p.plan.tenants.map((t) => t.id),
  checkFinite: new Map(p.plan.tenants.map((t) => [t.id, p.checkFinite || t.checkFinite === true])),
  sloMs: p.sloMs,
  auth: authOf(p.auth),
  removed: new Map(p.removed),
});
let serving = servingOf({ ...data, auth: data.http.auth, removed: data.removed ?? [] });

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

const asks = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
let nextAsk = 0;
const ask = <T>(what: AskWhat): Promise<T> =>
  new Promise((resolve, reject) => {
    const n = ++nextAsk;
    asks.set(n, { resolve: resolve as (v: unknown) => void, reject });
    post({ type: 'ask', ask: n, what });
  });

const unknownModel = (name: string): string => notServedMessage(name, serving.tenantIds, serving.removed.get(name));

const backend: IntakeBackend = {
  tenant: (id) => serving.tenants.get(id),
  unknownModel,
  sloMs: (id) => serving.sloMs[id] ?? null,
  // admission (quota, SLO) is the tick thread's, at submit; here only the drain refuses before the body is read
  precheck: () => {
    if (draining) refuse(503, 'the server is shutting down and accepts no new requests');
  },
  submit(tenant, inputs, { arrivedAt, signal }) {
    const t = serving.tenants.get(tenant);
    if (!t) return Promise.reject(new ServeError(404, unknownModel(tenant)));
    try {
      validateRequest(t, inputs, { checkFinite: serving.checkFinite.get(tenant) === true });
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
  // the tick thread answers (the PlanSwitch there); the caller's token filters the index here
  repository: {
    index: (readyOnly) => ask<RepositoryEntry[]>({ index: { readyOnly } }),
    reload: () => ask<ReloadReport>('reload'),
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

const metrics = new ServeMetrics({ plan: data.plan, backend: data.backend, queueDepth: () => ({ requests: 0, rows: 0 }) }, data.metrics);
const http = createHttpApp(
  {
    ...data.http,
    auth: serving.auth,
    authNow: () => serving.auth,
    idPrefix: `w${data.index}`, // request ids unique across the workers
    // log lines go to the tick thread, which writes them where the server's logger writes (one message a turn)
    logger: data.http.logLevel === null ? false : { level: data.http.logLevel, stream: { write: writeLog } },
  },
  backend,
  metrics,
);

// gRPC, when the tick thread asks: the same backend as the HTTP routes, on the port every worker shares
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
    unknownModel,
    auth: () => serving.auth,
    version: data.http.version,
    isReady: backend.isReady,
    maxMessageBytes: data.http.bodyLimit,
    tls: data.http.tls,
    log: http.app.log,
    idPrefix: `w${data.index}`,
  });
  grpcService.listenShared(grpcPort, host).then(
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
      if (m.error !== undefined) r?.reject(new Error(m.error));
      else r?.resolve(m.value);
      return;
    }
    case 'plan':
      // added tenants answer from here on, removed ones 404 (a request already handed over is the tick
      // thread's to answer); the metrics' plan labels follow
      serving = servingOf(m.plan);
      metrics.setPlan(m.plan.plan, m.plan.backend);
      post({ type: 'plan-applied', seq: m.seq });
      return;
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
