// `loom serve`: the tick scheduler and its metrics, and the transports in front of them: the OIP v2 HTTP
// routes (http-app.ts) on this thread or on intake worker threads (intake/), and the gRPC service (grpc/).
// Thin on purpose: decoding and validation are in oip.ts and runtime/serve/, queueing, batching and
// admission in the scheduler. The plan behind them can change while serving (hot swap: swap.ts, reload()).
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { type SchedulerOptions, ServeMetrics, TickScheduler, type TickRunner } from './index.js';
import type { AuthConfig } from './auth.js';
import type { MetricsOptions } from './metrics.js';
import { type ServeScheduler, type ServeShard, ShardRouter } from './shards.js';
import { ShardMetrics } from './shard-metrics.js';
import { DEFAULT_BODY_LIMIT, DEFAULT_LIMITS, type IntakeBackend, checkLimits, createHttpApp } from './http-app.js';
import { type GrpcService, createGrpcService } from './grpc/service.js';
import { IntakePool, reusePortUnsupported } from './intake/pool.js';
import type { IntakePlan } from './intake/protocol.js';
import { type LoadedServe, type PlanGeneration, PlanSwitch, type ReloadReport, gateRunner } from './swap.js';
import { SwapMetrics } from './swap-metrics.js';

export { DEFAULT_BODY_LIMIT, DEFAULT_LIMITS } from './http-app.js';

// A LoadedPlan fits; tests may wrap one.
export interface ServeRunner extends TickRunner {
  readonly backend: string;
  close?(): void;
}

// What serves: one plan, or a shard set (one tick loop per shard); a reload may bring a new auth config
// (checked against the new plan's tenants), else the current one stays.
export interface ServedPlan {
  readonly runner?: ServeRunner;
  readonly shards?: readonly ServeShard[];
  readonly auth?: AuthConfig | null;
}

export interface ServeOptions {
  readonly runner?: ServeRunner;
  // Several plans, one tick loop each (shards.ts), behind this one front end; instead of runner.
  readonly shards?: readonly ServeShard[];
  // The starting plan's origin, for the reload report and loom_plan_source_info (planSha in swap.ts).
  readonly planSource?: { readonly source: string; readonly sha: string };
  // Hot plan swap (swap.ts): loads the plan a reload switches to (SIGHUP in `loom serve`, or
  // POST /v2/repository/reload). Absent: a reload fails, saying there is nothing to reload from. With intake
  // workers the tick thread sends them the new plan's tenants and auth at the switch (intake/pool.ts).
  readonly reload?: () => Promise<LoadedServe<ServedPlan>>;
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
  // maxConnections counts their connections together. gRPC (listenGrpc after listen) then runs on every worker.
  readonly intakeThreads?: number;
}

export interface LoomServer {
  readonly app: FastifyInstance; // this thread's HTTP app: it listens when intakeThreads is 0 (inject() works either way)
  readonly intakeThreads: number; // worker threads serving HTTP (0: this thread)
  readonly scheduler: ServeScheduler;
  readonly plans: PlanSwitch<ServedPlan>; // the same object as scheduler: the plan serving now, reloads
  // Loads the new plan (the reload option) and switches to it; resolves once the old plan is freed (and every
  // intake worker serves the new one), or with ok false while the old plan keeps serving (logged and counted
  // in /metrics either way).
  reload(): Promise<ReloadReport>;
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
  // A plan (or shard set) and its scheduler; after a reload its ticks wait for the old plan's last one (gate).
  type Served = PlanGeneration & { readonly auth: AuthConfig | null | undefined };
  const schedule = (p: ServedPlan, generation: number, source: string, sha: string, gate: Promise<void> | null): Served => {
    if ((p.runner === undefined) === (p.shards === undefined)) throw new RangeError('createServer: give either runner or shards');
    // the HTTP layers register the auth check at start (http-app.ts): a reload may replace the tokens, not
    // turn authentication on or off
    if (p.auth !== undefined && (p.auth === null) !== (auth === null))
      throw new RangeError(
        `a reload cannot turn authentication ${p.auth === null ? 'off' : 'on'} (restart loom serve to ${p.auth === null ? 'drop' : 'add'} --auth)`,
      );
    if (p.shards) {
      const router = new ShardRouter(gate ? p.shards.map((s) => ({ ...s, runner: gateRunner(s.runner, gate) })) : p.shards, schedulerOpts);
      return {
        generation,
        scheduler: router,
        plan: router.plan,
        backend: router.backend,
        source,
        sha,
        auth: p.auth,
        closeRunners: () => router.closeRunners(),
      };
    }
    const runner = p.runner!;
    const scheduler = new TickScheduler(gate ? gateRunner(runner, gate) : runner, schedulerOpts);
    return { generation, scheduler, plan: runner.plan, backend: runner.backend, source, sha, auth: p.auth, closeRunners: () => runner.close?.() };
  };
  const first = opts.planSource ?? { source: '(given to createServer)', sha: '' };
  let auth = opts.auth ?? null; // the current one: a reload may re-read the auth file
  let shardMetrics: ShardMetrics | null = null;
  const observeShards = (g: PlanGeneration): void => {
    if (!(g.scheduler instanceof ShardRouter)) return;
    // a new shard set: its loom_shard_* series start over (a counter reset, as at a restart)
    if (shardMetrics) for (const x of m.registry.getMetricsAsArray()) if (x.name.startsWith('loom_shard_')) m.registry.removeSingleMetric(x.name);
    shardMetrics = new ShardMetrics(g.scheduler, m.registry);
    g.scheduler.observeShards(shardMetrics);
  };
  // what an intake worker serves: the plan serving now (at listen, and after every switch)
  const intakePlan = (g: PlanGeneration): IntakePlan => ({
    plan: g.plan,
    backend: g.backend,
    checkFinite: opts.scheduler?.checkFinite === true,
    sloMs: Object.fromEntries(g.plan.tenants.map((t) => [t.id, g.scheduler.sloMs(t.id)])),
    auth,
    removed: [...plans.removed],
  });
  let pool: IntakePool | null = null;
  let workersSynced: Promise<void> = Promise.resolve(); // the last switch reached every intake worker
  const plans: PlanSwitch<ServedPlan> = new PlanSwitch(
    schedule(opts.runner ? { runner: opts.runner } : { shards: opts.shards! }, 1, first.source, first.sha, null),
    (loaded, generation, gate) => schedule(loaded.value, generation, loaded.source, loaded.sha, gate),
    {
      onSwitch: (next, prev, { added, removed }) => {
        const a = (next as Served).auth;
        if (a !== undefined) auth = a;
        m.setPlan(next.plan, next.backend);
        swapMetrics.serving(next);
        swapMetrics.onReload(true);
        observeShards(next);
        if (pool) workersSynced = pool.setPlan(intakePlan(next));
        const names = (l: readonly string[]) => (l.length > 20 ? [...l.slice(0, 20), `… ${l.length - 20} more`] : l);
        app.log.info(
          { generation: next.generation, source: next.source, sha: next.sha, previous: prev.generation, added: names(added), removed: names(removed) },
          `plan reloaded: generation ${next.generation} serves ${next.plan.tenants.length} tenants (${added.length} added, ${removed.length} removed); generation ${prev.generation} answers the requests it accepted, then is freed`,
        );
      },
      onFreeFailed: (prev, err) => app.log.error({ generation: prev.generation, err }, `plan generation ${prev.generation} drained but freeing it failed`),
      onFreed: (prev, drainMs) =>
        app.log.info({ generation: prev.generation, drainMs: Math.round(drainMs) }, `plan generation ${prev.generation} drained and freed`),
      onReloadFailed: (r) => {
        swapMetrics.onReload(false);
        app.log.error({ failure: r.failure, source: r.source, err: r.error }, `plan reload failed; generation ${r.generation} keeps serving: ${r.error}`);
      },
    },
  );
  const scheduler: ServeScheduler = plans;
  metrics = new ServeMetrics(
    {
      get plan() {
        return plans.plan;
      },
      get backend() {
        return plans.current.backend;
      },
      queueDepth: (t) => plans.queueDepth(t),
      queued: () => plans.queued(),
    },
    opts.metrics ?? {},
  );
  const m = metrics;
  const swapMetrics = new SwapMetrics(plans, m.registry);
  observeShards(plans.current);
  let ready = true;
  let closing: Promise<void> | null = null;
  // ready: not shutting down, and no failed tick the backend has not yet recovered from (scheduler.health())
  const isReady = () => ready && scheduler.health().ready;

  const reload = async (): Promise<ReloadReport> => {
    const r = await plans.reload(
      opts.reload ??
        (() =>
          Promise.reject(
            new Error('this server was started without a plan source to reload from (createServer: the reload option; loom serve reloads its <plan-dir>)'),
          )),
    );
    if (r.ok) await workersSynced; // the workers' tables too (they get it at the switch: this waits rarely)
    return r;
  };
  const repository = { index: (readyOnly: boolean) => plans.index(ready && closing === null, readyOnly), reload };

  const local: IntakeBackend = {
    tenant: (id) => scheduler.tenant(id),
    unknownModel: (name) => plans.unknownModel(name),
    sloMs: (id) => scheduler.sloMs(id),
    precheck: (model) => scheduler.precheck(model),
    submit: (tenant, inputs, o) => scheduler.submit(tenant, inputs, o),
    isReady,
    // a model is ready when the server is and its shard has no failed tick outstanding
    isModelReady: (id) => ready && scheduler.health(id).ready,
    metrics: async () => (pool ? pool.metricsText() : { contentType: m.contentType(), text: await m.text() }),
    repository,
  };
  const httpOpts = { bodyLimit, auth: opts.auth ?? null, tls: opts.tls ?? null, version, limits };
  const http = createHttpApp({ ...httpOpts, authNow: () => auth, logger }, local, m);
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
        unknownModel: (name) => plans.unknownModel(name),
        auth: () => auth,
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
      plans.closeRunners();
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
    plans,
    reload,
    metrics: m,
    async listen(port, host) {
      if (intakeThreads === 0) return http.listen(port, host);
      const now = intakePlan(plans.current);
      pool = new IntakePool({
        threads: intakeThreads,
        scheduler,
        metrics: m,
        isReady,
        repository,
        worker: {
          plan: now.plan,
          backend: now.backend,
          checkFinite: now.checkFinite,
          metrics: opts.metrics ?? {},
          sloMs: now.sloMs,
          removed: now.removed,
          // the connection cap is the process's: the workers count their connections together
          http: {
            ...httpOpts,
            auth,
            limits,
            openConnections: new Int32Array(new SharedArrayBuffer(4)),
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
      if (pool) return pool.listenGrpc(port, host); // on every intake worker (a shared port), off this thread
      const where = await grpcService.listen(port, host);
      grpcListening = true;
      return where;
    },
    shutdown,
  };
}
