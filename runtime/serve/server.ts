// `loom serve`: the tick scheduler and its metrics, and the transports in front of them: the OIP v2 HTTP
// routes (http-app.ts) on this thread or on intake worker threads (intake/), and the gRPC service (grpc/).
// Thin on purpose: decoding and validation are in oip.ts and runtime/serve/, queueing, batching and
// admission in the scheduler.
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { type SchedulerOptions, ServeMetrics, TickScheduler, type TickRunner } from './index.js';
import type { AuthConfig } from './auth.js';
import type { MetricsOptions } from './metrics.js';
import { type ServeScheduler, type ServeShard, ShardRouter } from './shards.js';
import { ShardMetrics } from './shard-metrics.js';
import { DEFAULT_BODY_LIMIT, DEFAULT_LIMITS, type IntakeBackend, checkLimits, createHttpApp } from './http-app.js';
import { type GrpcService, createGrpcService } from './grpc/service.js';
import { IntakePool, reusePortUnsupported } from './intake/pool.js';

export { DEFAULT_BODY_LIMIT, DEFAULT_LIMITS } from './http-app.js';

// A LoadedPlan fits; tests may wrap one.
export interface ServeRunner extends TickRunner {
  readonly backend: string;
  close?(): void;
}

export interface ServeOptions {
  readonly runner?: ServeRunner;
  // Several plans, one tick loop each (shards.ts), behind this one front end; instead of runner.
  readonly shards?: readonly ServeShard[];
  readonly scheduler?: Omit<SchedulerOptions, 'observer'>;
  // /metrics cardinality (metrics.ts): fleet-level series by default, perTenant adds a tenant label; top-K gauges.
  readonly metrics?: MetricsOptions;
  readonly bodyLimit?: number; // bytes (default 32 MiB)
  readonly logger?: false | { readonly level: string; readonly stream?: { write(line: string): void } } | FastifyBaseLogger; // default: no logs
  // Bearer tokens per tenant (auth.ts): model metadata, model ready and infer need a token allowed that
  // model, /metrics one with "metrics": true; health and /v2 stay open. Absent: no authentication.
  readonly auth?: AuthConfig | null;
  // HTTPS with this certificate chain and private key (PEM). Absent: plain HTTP.
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer } | null;
  readonly version?: string;
  // Slow and idle clients (the CLI's flags of the same names; defaults in DEFAULT_LIMITS):
  readonly requestTimeoutMs?: number; // the whole request (headers and body) must arrive within this; else 408 and close
  readonly headersTimeoutMs?: number; // the headers must arrive within this (at most requestTimeoutMs)
  readonly keepAliveTimeoutMs?: number; // an idle keep-alive connection is closed after this
  readonly maxConnections?: number; // connections beyond this are closed at accept (0: no cap)
  readonly maxRequestsPerSocket?: number; // 0: no limit
  // At shutdown, idle keep-alive connections stay open this long (or until they have all closed), so a
  // request already on its way on one gets a 503 with `Connection: close` rather than a reset.
  readonly drainGraceMs?: number;
  // Also serve the OIP v2 gRPC service (grpc/inference.proto) through listenGrpc, with the same auth, TLS,
  // validation, scheduler and metrics. Default false.
  readonly grpc?: boolean;
  // HTTP intake on this many worker threads (intake/): each serves the HTTP routes on the same port
  // (SO_REUSEPORT) and hands decoded, validated requests to this thread's scheduler. 0 (default): the HTTP
  // routes run on this thread. Where Node or the OS cannot share a port between threads: 0, with a warning.
  // maxConnections is split between them. gRPC (listenGrpc after listen) then runs on the first worker.
  readonly intakeThreads?: number;
}

export interface LoomServer {
  readonly app: FastifyInstance; // this thread's HTTP app: it listens when intakeThreads is 0 (inject() works either way)
  readonly intakeThreads: number; // worker threads serving HTTP (0: this thread)
  readonly scheduler: ServeScheduler;
  readonly metrics: ServeMetrics;
  listen(port: number, host: string): Promise<string>; // resolves with the base URL
  // the gRPC service (needs the `grpc` option): resolves with host:port
  listenGrpc(port: number, host: string): Promise<string>;
  // Stop accepting, answer every accepted request, close the listener and the plan. Idempotent.
  shutdown(): Promise<void>;
}

export function createServer(opts: ServeOptions): LoomServer {
  if ((opts.runner === undefined) === (opts.shards === undefined)) throw new RangeError('createServer: give either runner or shards');
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const logger = opts.logger ?? false;
  const limits = checkLimits({
    requestTimeoutMs: opts.requestTimeoutMs ?? DEFAULT_LIMITS.requestTimeoutMs,
    headersTimeoutMs: opts.headersTimeoutMs ?? DEFAULT_LIMITS.headersTimeoutMs,
    keepAliveTimeoutMs: opts.keepAliveTimeoutMs ?? DEFAULT_LIMITS.keepAliveTimeoutMs,
    maxConnections: opts.maxConnections ?? DEFAULT_LIMITS.maxConnections,
    maxRequestsPerSocket: opts.maxRequestsPerSocket ?? DEFAULT_LIMITS.maxRequestsPerSocket,
    drainGraceMs: opts.drainGraceMs ?? DEFAULT_LIMITS.drainGraceMs,
  });
  const version = opts.version ?? '0.1.0';
  let intakeThreads = opts.intakeThreads ?? 0;
  if (!Number.isInteger(intakeThreads) || intakeThreads < 0)
    throw new RangeError(`createServer: intakeThreads must be a non-negative integer, got ${intakeThreads}`);

  let metrics: ServeMetrics | null = null;
  let log: FastifyBaseLogger | null = null;
  const schedulerOpts = {
    ...opts.scheduler,
    observer: {
      onTick: (r) => {
        metrics?.onTick(r);
        if (!r.ok) log?.error({ tick: r.seq, requests: r.requests, err: r.error }, 'tick failed; its requests got 500');
        else log?.trace({ tick: r.seq, ms: r.durationMs, tenants: r.tenants, rows: r.rows }, 'tick');
      },
      onReject: (t, reason) => metrics?.onReject(t, reason),
      onAnswered: (t, r) => metrics?.onAnswered(t, r),
      onCancel: (t, stage) => metrics?.onCancel(t, stage),
    },
  } satisfies SchedulerOptions;
  const router = opts.shards ? new ShardRouter(opts.shards, schedulerOpts) : null;
  const runner = router ?? opts.runner!; // what the front end reads: the plan's tenants, the backend
  const scheduler: ServeScheduler = router ?? new TickScheduler(opts.runner!, schedulerOpts);
  // a single scheduler lists its tenants with queued work; over shards /metrics asks per tenant at a scrape
  const queued = scheduler instanceof TickScheduler ? () => scheduler.queued() : undefined;
  metrics = new ServeMetrics(
    { plan: runner.plan, backend: runner.backend, queueDepth: (t) => scheduler.queueDepth(t), ...(queued ? { queued } : {}) },
    opts.metrics ?? {},
  );
  const m = metrics;
  if (router) router.observeShards(new ShardMetrics(router, m.registry));
  let ready = true;
  let closing: Promise<void> | null = null;
  // ready: not shutting down, and no failed tick the backend has not yet recovered from (scheduler.health())
  const isReady = () => ready && scheduler.health().ready;
  let pool: IntakePool | null = null;

  const local: IntakeBackend = {
    tenantIds: runner.plan.tenants.map((t) => t.id),
    tenant: (id) => scheduler.tenant(id),
    sloMs: (id) => scheduler.sloMs(id),
    precheck: (model) => scheduler.precheck(model),
    submit: (tenant, inputs, o) => scheduler.submit(tenant, inputs, o),
    isReady,
    // a model is ready when the server is and its shard has no failed tick outstanding
    isModelReady: (id) => ready && scheduler.health(id).ready,
    metrics: async () => (pool ? pool.metricsText() : { contentType: m.contentType(), text: await m.text() }),
  };
  const httpOpts = { bodyLimit, auth: opts.auth ?? null, tls: opts.tls ?? null, version, limits };
  const http = createHttpApp({ ...httpOpts, logger }, local, m);
  const app = http.app;
  log = app.log;

  if (intakeThreads > 0) {
    const why = reusePortUnsupported();
    if (why !== null) {
      app.log.warn({ intakeThreads, reason: why }, 'worker intake is not available here: serving HTTP on the tick thread (intake threads 0)');
      intakeThreads = 0;
    }
  }
  // log lines of the workers: where this thread's logger writes (a logger instance: its level, on stdout)
  const workerLog =
    logger === false
      ? { level: null, write: (_line: string) => {} }
      : 'child' in logger
        ? { level: logger.level, write: (line: string) => process.stdout.write(line) }
        : { level: logger.level, write: (line: string) => (logger.stream ?? process.stdout).write(line) };

  const grpcService: GrpcService | null = opts.grpc
    ? createGrpcService({
        scheduler,
        metrics: m,
        tenantIds: runner.plan.tenants.map((t) => t.id),
        auth: opts.auth ?? null,
        version,
        isReady,
        isModelReady: (id) => ready && scheduler.health(id).ready,
        maxMessageBytes: bodyLimit,
        tls: opts.tls ?? null,
        log: app.log,
      })
    : null;
  let grpcListening = false;

  const shutdown = (): Promise<void> => {
    closing ??= (async () => {
      ready = false;
      http.startClosing();
      pool?.drain();
      app.log.info('shutting down: no new requests; finishing accepted ones');
      // gRPC: no new calls from here; accepted ones are answered as the scheduler drains
      const grpcDone = grpcListening && grpcService ? grpcService.shutdown(limits.requestTimeoutMs) : Promise.resolve();
      await scheduler.close();
      await grpcDone;
      // the workers close their listeners once their last answers are written (the same grace as below)
      await pool?.close();
      await http.close();
      if (router) router.closeRunners();
      else opts.runner!.close?.();
      app.log.info({ ...scheduler.stats }, 'shut down: every accepted request was answered');
    })();
    return closing;
  };

  return {
    app,
    get intakeThreads() {
      return intakeThreads;
    },
    scheduler,
    metrics: m,
    async listen(port, host) {
      if (intakeThreads === 0) return http.listen(port, host);
      pool = new IntakePool({
        threads: intakeThreads,
        scheduler,
        metrics: m,
        isReady,
        worker: {
          plan: runner.plan,
          backend: runner.backend,
          checkFinite: opts.scheduler?.checkFinite === true,
          metrics: opts.metrics ?? {},
          sloMs: Object.fromEntries(runner.plan.tenants.map((t) => [t.id, scheduler.sloMs(t.id)])),
          // the connection cap is the process's: each worker takes its share
          http: {
            ...httpOpts,
            limits: { ...limits, maxConnections: Math.ceil(limits.maxConnections / intakeThreads) },
            logLevel: workerLog.level,
          },
        },
        writeLog: workerLog.write,
        logError: (o, msg) => app.log.error(o, msg),
        closeTimeoutMs: limits.drainGraceMs + 2 * limits.requestTimeoutMs,
      });
      try {
        return await pool.listen(port, host);
      } catch (e) {
        await pool.close();
        pool = null;
        throw e;
      }
    },
    async listenGrpc(port, host) {
      if (!grpcService) throw new Error('createServer: listenGrpc needs the grpc option');
      if (pool) return pool.listenGrpc(port, host); // on the first intake worker, off this thread
      const where = await grpcService.listen(port, host);
      grpcListening = true;
      return where;
    },
    shutdown,
  };
}
