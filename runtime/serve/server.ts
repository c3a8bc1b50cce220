// `loom serve`'s HTTP layer: Open Inference Protocol v2 routes over the tick scheduler (fastify, pino logs
// with request ids, prom-client metrics). Thin on purpose: decoding and validation are in oip.ts and
// runtime/serve/, queueing, batching and admission in the scheduler.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import { isLoomError } from '../../ir/errors.js';
import { type SchedulerOptions, ServeError, ServeMetrics, TickScheduler, type TickRunner, isServeError } from './index.js';
import { type AuthConfig, type AuthScope, authorize } from './auth.js';
import type { MetricsOptions } from './metrics.js';
import { MODEL_VERSION, decodeInferRequest, encodeInferResponse, modelMetadata } from './oip.js';
import { type GrpcService, createGrpcService } from './grpc/service.js';
import { type ServeScheduler, type ServeShard, ShardRouter } from './shards.js';
import { ShardMetrics } from './shard-metrics.js';
import { type LoadedServe, type PlanGeneration, PlanSwitch, type ReloadReport, gateRunner } from './swap.js';
import { SwapMetrics } from './swap-metrics.js';
import { INDEX_ROUTE, RELOAD_ROUTE, registerRepositoryRoutes } from './repository.js';

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
  // POST /v2/repository/reload). Absent: a reload fails, saying there is nothing to reload from.
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
}

export const DEFAULT_LIMITS = {
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 1_000,
  maxRequestsPerSocket: 0,
  drainGraceMs: 1_000,
} as const;

export interface LoomServer {
  readonly app: FastifyInstance;
  readonly scheduler: ServeScheduler;
  readonly plans: PlanSwitch<ServedPlan>; // the same object as scheduler: the plan serving now, reloads
  // Loads the new plan (the reload option) and switches to it; resolves once the old plan is freed, or
  // with ok false while the old plan keeps serving (logged and counted in /metrics either way).
  reload(): Promise<ReloadReport>;
  readonly metrics: ServeMetrics;
  listen(port: number, host: string): Promise<string>; // resolves with the base URL
  // the gRPC service (needs the `grpc` option): resolves with host:port
  listenGrpc(port: number, host: string): Promise<string>;
  // Stop accepting, answer every accepted request, close the listener and the plan. Idempotent.
  shutdown(): Promise<void>;
}

function isLoggerInstance(l: { readonly level: string } | FastifyBaseLogger): l is FastifyBaseLogger {
  return typeof (l as { child?: unknown }).child === 'function';
}

export const DEFAULT_BODY_LIMIT = 32 * 1024 * 1024;

interface ModelParams {
  model: string;
  version?: string;
}

type InferRoute = { Params: ModelParams; Body: Buffer | undefined };

export function createServer(opts: ServeOptions): LoomServer {
  if ((opts.runner === undefined) === (opts.shards === undefined)) throw new RangeError('createServer: give either runner or shards');
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  let nextId = 0;
  const logger = opts.logger ?? false;
  const requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_LIMITS.requestTimeoutMs;
  const headersTimeoutMs = Math.min(opts.headersTimeoutMs ?? DEFAULT_LIMITS.headersTimeoutMs, requestTimeoutMs);
  const keepAliveTimeoutMs = opts.keepAliveTimeoutMs ?? DEFAULT_LIMITS.keepAliveTimeoutMs;
  const maxConnections = opts.maxConnections ?? DEFAULT_LIMITS.maxConnections;
  const drainGraceMs = opts.drainGraceMs ?? DEFAULT_LIMITS.drainGraceMs;
  for (const [k, v] of Object.entries({ requestTimeoutMs, headersTimeoutMs, keepAliveTimeoutMs })) {
    if (!Number.isInteger(v) || v <= 0) throw new RangeError(`createServer: ${k} must be a positive integer, got ${v}`);
  }
  // Node checks the request and headers timeouts every connectionsCheckingInterval: a quarter of the
  // shorter one (at most 1 s), so a cut-off comes at most 25% late
  const checkMs = Math.max(10, Math.min(1000, Math.floor(headersTimeoutMs / 4)));
  const nodeHttp = {
    requestTimeout: requestTimeoutMs,
    headersTimeout: headersTimeoutMs,
    keepAliveTimeout: keepAliveTimeoutMs,
    connectionsCheckingInterval: checkMs,
  };
  // the Authorization header is never logged (no log line carries request headers; redaction in case one does)
  const redact = ['req.headers.authorization', 'headers.authorization', 'authorization'];
  const logOpts =
    logger === false
      ? { logger: false }
      : isLoggerInstance(logger)
        ? { loggerInstance: logger }
        : { logger: { level: logger.level, redact, ...(logger.stream ? { stream: logger.stream } : {}) } };
  const tls = opts.tls ? { https: { cert: opts.tls.cert, key: opts.tls.key, handshakeTimeout: headersTimeoutMs, ...nodeHttp } } : {};
  const app = Fastify({
    ...logOpts,
    bodyLimit,
    requestIdHeader: 'x-request-id',
    genReqId: () => `r${(++nextId).toString(36)}`,
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    requestTimeout: requestTimeoutMs,
    keepAliveTimeout: keepAliveTimeoutMs,
    maxRequestsPerSocket: opts.maxRequestsPerSocket ?? DEFAULT_LIMITS.maxRequestsPerSocket,
    http: nodeHttp,
    ...tls,
    clientErrorHandler: (err: Error & { code?: string }, socket: Socket) => clientError(err, socket),
  } as never) as unknown as FastifyInstance;
  if (maxConnections > 0) app.server.maxConnections = maxConnections;
  app.server.on('drop', () => metrics?.onConnectionRefused());

  // A request that did not arrive in time, or could not be parsed: Node hands the socket here before any
  // route sees it. Answer in the protocol's words when nothing was written on the socket yet, then close.
  const clientError = (err: Error & { code?: string }, socket: Socket): void => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    let status = 400;
    let reason: 'timeout' | 'header_overflow' | 'malformed' = 'malformed';
    let message = `malformed HTTP request (${err.code ?? err.message})`;
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      status = 408;
      reason = 'timeout';
      message = `the request did not arrive in time: headers within ${headersTimeoutMs} ms, the whole request within ${requestTimeoutMs} ms (--request-timeout-ms); the connection is closed`;
    } else if (err.code === 'HPE_HEADER_OVERFLOW') {
      status = 431;
      reason = 'header_overflow';
      message = 'the request headers are larger than this server accepts';
    }
    metrics?.onClientError(reason);
    app.log.debug({ reason, code: err.code, remote: socket.remoteAddress }, 'client cut off before its request was read'); // counted in loom_client_errors_total
    const res = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (socket.writable && !res?.headersSent) {
      const body = JSON.stringify({ error: message });
      socket.write(
        `HTTP/1.1 ${status} ${status === 408 ? 'Request Timeout' : status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
          `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy();
  };

  // Open connections and how many requests each has in flight: the drain at shutdown tells idle ones apart.
  const inFlight = new Map<Socket, number>();
  const track = (sock: Socket): void => {
    inFlight.set(sock, 0);
    sock.once('close', () => inFlight.delete(sock));
  };
  // with TLS, requests come on the TLS socket, not the TCP one 'connection' gives
  app.server.on(opts.tls ? 'secureConnection' : 'connection', track);
  app.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const sock = req.socket;
    if (!inFlight.has(sock)) track(sock);
    inFlight.set(sock, inFlight.get(sock)! + 1);
    res.once('close', () => {
      if (inFlight.has(sock)) inFlight.set(sock, Math.max(0, inFlight.get(sock)! - 1));
    });
  });

  let metrics: ServeMetrics | null = null;
  const schedulerOpts = {
    ...opts.scheduler,
    observer: {
      onTick: (r) => {
        metrics?.onTick(r);
        if (!r.ok) app.log.error({ tick: r.seq, requests: r.requests, err: r.error }, 'tick failed; its requests got 500');
        else app.log.trace({ tick: r.seq, ms: r.durationMs, tenants: r.tenants, rows: r.rows }, 'tick');
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
  let auth = opts.auth ?? null;
  let shardMetrics: ShardMetrics | null = null;
  const observeShards = (g: PlanGeneration): void => {
    if (!(g.scheduler instanceof ShardRouter)) return;
    // a new shard set: its loom_shard_* series start over (a counter reset, as at a restart)
    if (shardMetrics) for (const x of m.registry.getMetricsAsArray()) if (x.name.startsWith('loom_shard_')) m.registry.removeSingleMetric(x.name);
    shardMetrics = new ShardMetrics(g.scheduler, m.registry);
    g.scheduler.observeShards(shardMetrics);
  };
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

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('x-request-id', req.id);
    reply.header('server-timing', `total;dur=${reply.elapsedTime.toFixed(3)}`); // arrival to response, in the server
    // once shutting down, no socket is kept alive for a next request that would race the listener's close
    if (closing) reply.header('connection', 'close');
    return payload;
  });
  app.addHook('onResponse', async (req, reply) => {
    const infer = (req.routeOptions.config as { infer?: boolean }).infer === true;
    const code = reply.statusCode;
    if (infer) m.observeRequest((req.params as ModelParams).model, code, reply.elapsedTime / 1000);
    const line = { reqId: req.id, method: req.method, url: req.url, status: code, ms: Number(reply.elapsedTime.toFixed(3)) };
    if (code >= 500) req.log.error(line, 'request failed');
    else if (code >= 400) req.log.info(line, 'request refused');
    else req.log.debug(line, 'request answered');
  });

  app.setErrorHandler((err: unknown, req, reply) => {
    let status = 500;
    let message = err instanceof Error ? err.message : String(err);
    if (isServeError(err)) {
      status = err.status;
      if (err.retryAfterS !== null) reply.header('retry-after', String(err.retryAfterS));
    } else if (isLoomError(err)) {
      status = err.code === 'EVAL' || err.code === 'USAGE' ? 400 : 500;
    } else {
      const code = (err as { code?: string; statusCode?: number }).code;
      const sc = (err as { statusCode?: number }).statusCode;
      if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') message = `the request body is larger than this server's limit of ${bodyLimit} bytes`;
      if (typeof sc === 'number' && sc >= 400 && sc < 500) status = sc;
    }
    if (status === 500) req.log.error({ reqId: req.id, err }, 'internal error');
    if (status === 499) req.log.info({ reqId: req.id, model: (req.params as Partial<ModelParams>).model, msg: message }, 'client went away');
    if (status === 503) reply.header('connection', 'close');
    void reply.code(status).send({ error: message });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({
      error: `no route ${req.method} ${req.url.split('?')[0]} (Open Inference Protocol v2: /v2, /v2/health/live, /v2/health/ready, /v2/models/{model}[/ready|/infer], /metrics)`,
    });
  });

  const tenantOf = (p: ModelParams) => {
    if (p.version !== undefined && p.version !== MODEL_VERSION) {
      return { error: `model '${p.model}' has no version '${p.version}' (it has: ${MODEL_VERSION})` };
    }
    const t = scheduler.tenant(p.model);
    return t ? { tenant: t } : { error: plans.unknownModel(p.model) };
  };

  if (opts.auth) {
    // before the route's own onRequest (admission): a client without a valid token learns nothing of queues
    app.addHook('onRequest', async (req, reply) => {
      const route = req.routeOptions.url;
      let scope: AuthScope | null = null;
      if (route === '/metrics') scope = { kind: 'metrics' };
      else if (route?.startsWith('/v2/models/')) scope = { kind: 'tenant', tenant: (req.params as ModelParams).model };
      else if (route === RELOAD_ROUTE) scope = { kind: 'admin' };
      else if (route === INDEX_ROUTE) scope = { kind: 'any' }; // lists the token's tenants only
      if (scope === null || auth === null) return; // health, /v2, unknown routes
      const d = authorize(auth, req.headers.authorization, scope);
      if (d.ok) return;
      m.onAuthFailure(d.status);
      req.log.info({ reqId: req.id, status: d.status, msg: d.message }, 'request not authorized');
      if (d.status === 401) reply.header('www-authenticate', `Bearer realm="loom"${req.headers.authorization ? ', error="invalid_token"' : ''}`);
      return reply.code(d.status).send({ error: d.message });
    });
  }

  app.get('/v2/health/live', async () => ({ live: true }));
  // ready: not shutting down, and no failed tick the backend has not yet recovered from (scheduler.health())
  const isReady = () => ready && scheduler.health().ready;
  const grpcService: GrpcService | null = opts.grpc
    ? createGrpcService({
        scheduler,
        metrics: m,
        unknownModel: (name) => plans.unknownModel(name),
        auth: () => auth,
        version: opts.version ?? '0.1.0',
        isReady,
        maxMessageBytes: bodyLimit,
        tls: opts.tls ?? null,
        log: app.log,
      })
    : null;
  let grpcListening = false;
  app.get('/v2/health/ready', async (_req, reply) => {
    const now = isReady();
    return reply.code(now ? 200 : 503).send({ ready: now });
  });
  app.get('/v2', async () => ({ name: 'loom', version: opts.version ?? '0.1.0', extensions: ['binary_tensor_data'] }));

  const metadata = async (req: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    const r = tenantOf(req.params);
    if ('error' in r) return reply.code(404).send({ error: r.error });
    return modelMetadata(r.tenant, scheduler.sloMs(r.tenant.id));
  };
  app.get('/v2/models/:model', metadata);
  app.get('/v2/models/:model/versions/:version', metadata);

  const modelReady = async (req: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    const r = tenantOf(req.params);
    if ('error' in r) return reply.code(404).send({ error: r.error });
    const now = ready && scheduler.health(r.tenant.id).ready;
    return reply.code(now ? 200 : 503).send({ name: r.tenant.id, ready: now });
  };
  app.get('/v2/models/:model/ready', modelReady);
  app.get('/v2/models/:model/versions/:version/ready', modelReady);

  const infer = async (req: FastifyRequest<InferRoute>, reply: FastifyReply) => {
    const r = tenantOf(req.params);
    if ('error' in r) return reply.code(404).send({ error: r.error });
    const headerLength = req.headers['inference-header-content-length'];
    const decoded = decodeInferRequest(r.tenant, req.body, Array.isArray(headerLength) ? headerLength[0] : headerLength);
    // the client going away (the response closing before it was written) drops the request from its queue
    const gone = new AbortController();
    reply.raw.once('close', () => {
      if (!reply.raw.writableEnded) gone.abort();
    });
    const outs = await scheduler.submit(r.tenant.id, decoded.inputs, { arrivedAt: performance.now() - reply.elapsedTime, signal: gone.signal });
    if (gone.signal.aborted)
      throw new ServeError(499, `the client of this request to model '${r.tenant.id}' went away while its tick ran; the answer was discarded`);
    const enc = encodeInferResponse(r.tenant.id, decoded.id ?? req.id, outs, decoded.outputs);
    if (enc.binary.length === 0) return enc.json;
    const head = Buffer.from(JSON.stringify(enc.json));
    return reply
      .header('inference-header-content-length', String(head.length))
      .type('application/octet-stream')
      .send(Buffer.concat([head, ...enc.binary]));
  };
  // admission before the body is read: a tenant whose queue is full costs the server no parsing
  const early = async (req: FastifyRequest<{ Params: ModelParams }>) => scheduler.precheck(req.params.model);
  app.post('/v2/models/:model/infer', { config: { infer: true }, onRequest: early }, infer);
  app.post('/v2/models/:model/versions/:version/infer', { config: { infer: true }, onRequest: early }, infer);

  app.get('/metrics', async (_req, reply) => reply.type(m.contentType()).send(await m.text()));

  registerRepositoryRoutes(app, { plans, auth: () => auth, serving: () => ready && closing === null, reload: () => reload() });

  const shutdown = (): Promise<void> => {
    closing ??= (async () => {
      ready = false;
      app.log.info('shutting down: no new requests; finishing accepted ones');
      // gRPC: no new calls from here; accepted ones are answered as the scheduler drains
      const grpcDone = grpcListening && grpcService ? grpcService.shutdown(requestTimeoutMs) : Promise.resolve();
      await scheduler.close();
      await grpcDone;
      // Idle keep-alive connections stay open a moment: a request already on its way on one is answered
      // (503, Connection: close) instead of meeting a closed socket. Active ones close after their answer.
      const graceEnd = performance.now() + drainGraceMs;
      while (performance.now() < graceEnd && [...inFlight.values()].some((n) => n === 0)) await new Promise((r) => setTimeout(r, 10));
      // Node stops enforcing the request timeout once the listener closes: a client still sending after
      // another full request timeout is cut off here, so the drain cannot hang on it.
      const force = setTimeout(() => app.server.closeAllConnections(), requestTimeoutMs);
      force.unref();
      await app.close();
      clearTimeout(force);
      plans.closeRunners();
      app.log.info({ ...scheduler.stats }, 'shut down: every accepted request was answered');
    })();
    return closing;
  };

  const reload = (): Promise<ReloadReport> =>
    plans.reload(
      opts.reload ??
        (() =>
          Promise.reject(
            new Error('this server was started without a plan source to reload from (createServer: the reload option; loom serve reloads its <plan-dir>)'),
          )),
    );

  return {
    app,
    scheduler,
    plans,
    reload,
    metrics: m,
    async listen(port, host) {
      await app.listen({ port, host });
      const addr = app.server.address();
      const where = typeof addr === 'object' && addr !== null ? addr : { address: host, port };
      const h = where.address.includes(':') ? `[${where.address}]` : where.address;
      return `${opts.tls ? 'https' : 'http'}://${h}:${where.port}`;
    },
    async listenGrpc(port, host) {
      if (!grpcService) throw new Error('createServer: listenGrpc needs the grpc option');
      const where = await grpcService.listen(port, host);
      grpcListening = true;
      return where;
    },
    shutdown,
  };
}
