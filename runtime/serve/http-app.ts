// The OIP v2 HTTP transport of `loom serve` (fastify): routes, auth, timeouts and connection limits, TLS, the
// idle-connection grace at shutdown. It decodes and encodes; what answers a request is an IntakeBackend: the
// tick scheduler on this thread (server.ts), or the tick thread seen from an intake worker (intake/worker.ts),
// so the same routes, checks and messages serve both.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import type { PlannedTenant } from '../../ir/contract/plan.js';
import { isLoomError } from '../../ir/errors.js';
import type { Tensor } from '../../ir/tensor.js';
import { type AuthConfig, type AuthScope, authorize } from './auth.js';
import { ServeError, isServeError } from './errors.js';
import type { ServeMetrics } from './metrics.js';
import type { CancelSignal } from './scheduler.js';
import { MODEL_VERSION, decodeInferRequest, encodeInferResponse, modelMetadata } from './oip.js';
import { INDEX_ROUTE, RELOAD_ROUTE, type RepositoryBackend, registerRepositoryRoutes } from './repository.js';

// What answers the routes. submit resolves with the request's outputs or rejects with a ServeError.
export interface IntakeBackend {
  tenant(id: string): PlannedTenant | undefined;
  // The 404's message for a model not served now (the tenants change with a plan reload: swap.ts).
  unknownModel(name: string): string;
  sloMs(id: string): number | null;
  // throws the 429/503 submit would for a one-row request, before the body is read
  precheck(model: string): void;
  // arrivedAt: this thread's performance.now() when the request arrived
  submit(
    tenant: string,
    inputs: Readonly<Record<string, Tensor>>,
    opts: { readonly arrivedAt: number; readonly signal: CancelSignal },
  ): Promise<Record<string, Tensor>>;
  isReady(): boolean | Promise<boolean>;
  // One model's readiness (its shard's health); absent: the server's.
  isModelReady?(tenant: string): boolean | Promise<boolean>;
  metrics(): Promise<{ readonly contentType: string; readonly text: string }>;
  // The repository routes (POST /v2/repository/index and /reload: repository.ts); absent: not served.
  readonly repository?: RepositoryBackend;
}

// The request-side metrics this transport records (on this thread's registry).
export type RequestMetrics = Pick<ServeMetrics, 'observeRequest' | 'onAuthFailure' | 'onClientError' | 'onConnectionRefused'>;

export type LoggerOption = false | { readonly level: string; readonly stream?: { write(line: string): void } } | FastifyBaseLogger;

export interface HttpLimits {
  readonly requestTimeoutMs: number; // the whole request (headers and body) must arrive within this; else 408 and close
  readonly headersTimeoutMs: number; // the headers must arrive within this (at most requestTimeoutMs)
  readonly keepAliveTimeoutMs: number; // an idle keep-alive connection is closed after this
  readonly maxConnections: number; // connections beyond this are closed at accept (0: no cap)
  readonly maxRequestsPerSocket: number; // 0: no limit
  // At shutdown, idle keep-alive connections stay open this long (or until they have all closed), so a
  // request already on its way on one gets a 503 with `Connection: close` rather than a reset.
  readonly drainGraceMs: number;
}

export const DEFAULT_LIMITS: HttpLimits = {
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 1_000,
  maxRequestsPerSocket: 0,
  drainGraceMs: 1_000,
} as const;

export const DEFAULT_BODY_LIMIT = 32 * 1024 * 1024;

export interface HttpAppOptions {
  readonly bodyLimit: number;
  readonly logger: LoggerOption;
  readonly auth: AuthConfig | null; // at start; null: no authentication
  // The auth config now, read per request where given (a plan reload may re-read the auth file: swap.ts); it
  // may replace `auth` but not turn authentication on or off (server.ts refuses such a reload).
  readonly authNow?: () => AuthConfig | null;
  readonly tls: { readonly cert: string | Buffer; readonly key: string | Buffer } | null;
  readonly version: string;
  readonly limits: HttpLimits;
  readonly idPrefix?: string; // request ids are `${idPrefix}r<n>`: an intake worker's ids differ from the others'
  // The open connections of every listener sharing the port (a SharedArrayBuffer's Int32Array, element 0):
  // limits.maxConnections caps them all together (the intake workers), however the kernel spreads them.
  // Absent: this listener's own connections.
  readonly openConnections?: Int32Array;
}

export interface HttpApp {
  readonly app: FastifyInstance;
  // reusePort: share the port with other listeners of this process (the intake workers; SO_REUSEPORT)
  listen(port: number, host: string, reusePort?: boolean): Promise<string>;
  // Shutdown has begun: every response from now on carries `Connection: close`.
  startClosing(): void;
  // The idle keep-alive grace (drainGraceMs), then the listener closes once every accepted request was answered.
  close(): Promise<void>;
}

interface ModelParams {
  model: string;
  version?: string;
}

type InferRoute = { Params: ModelParams; Body: Buffer | undefined };

function isLoggerInstance(l: { readonly level: string } | FastifyBaseLogger): l is FastifyBaseLogger {
  return typeof (l as { child?: unknown }).child === 'function';
}

// Checks the limits a caller passed (createServer's options): positive integer timeouts.
export function checkLimits(l: HttpLimits): HttpLimits {
  for (const k of ['requestTimeoutMs', 'headersTimeoutMs', 'keepAliveTimeoutMs'] as const) {
    const v = l[k];
    if (!Number.isInteger(v) || v <= 0) throw new RangeError(`createServer: ${k} must be a positive integer, got ${v}`);
  }
  return { ...l, headersTimeoutMs: Math.min(l.headersTimeoutMs, l.requestTimeoutMs) };
}

export function createHttpApp(opts: HttpAppOptions, backend: IntakeBackend, metrics: RequestMetrics): HttpApp {
  const { bodyLimit } = opts;
  let nextId = 0;
  const idPrefix = opts.idPrefix ?? '';
  const logger = opts.logger;
  const { requestTimeoutMs, headersTimeoutMs, keepAliveTimeoutMs, maxConnections, drainGraceMs } = opts.limits;
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
    genReqId: () => `${idPrefix}r${(++nextId).toString(36)}`,
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    requestTimeout: requestTimeoutMs,
    keepAliveTimeout: keepAliveTimeoutMs,
    maxRequestsPerSocket: opts.limits.maxRequestsPerSocket,
    http: nodeHttp,
    ...tls,
    clientErrorHandler: (err: Error & { code?: string }, socket: Socket) => clientError(err, socket),
  } as never) as unknown as FastifyInstance;
  const shared = opts.openConnections;
  if (maxConnections > 0 && shared) {
    // counted across the listeners: a connection past the cap is closed at accept, as Node's own cap does
    app.server.prependListener('connection', (sock: Socket) => {
      if (Atomics.add(shared, 0, 1) >= maxConnections) {
        Atomics.sub(shared, 0, 1);
        metrics.onConnectionRefused();
        sock.destroy();
        return;
      }
      sock.once('close', () => Atomics.sub(shared, 0, 1));
    });
  } else if (maxConnections > 0) app.server.maxConnections = maxConnections;
  app.server.on('drop', () => metrics.onConnectionRefused());

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
    metrics.onClientError(reason);
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

  let closing = false;

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
    if (infer) metrics.observeRequest((req.params as ModelParams).model, code, reply.elapsedTime / 1000);
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
      error: `no route ${req.method} ${req.url.split('?')[0]} (Open Inference Protocol v2: /v2, /v2/health/live, /v2/health/ready, /v2/models/{model}[/ready|/infer], /metrics${backend.repository ? `, POST ${INDEX_ROUTE}, POST ${RELOAD_ROUTE}` : ''})`,
    });
  });

  const tenantOf = (p: ModelParams) => {
    if (p.version !== undefined && p.version !== MODEL_VERSION) {
      return { error: `model '${p.model}' has no version '${p.version}' (it has: ${MODEL_VERSION})` };
    }
    const t = backend.tenant(p.model);
    return t ? { tenant: t } : { error: backend.unknownModel(p.model) };
  };

  const start = opts.auth;
  const authNow = opts.authNow ?? (() => start);
  if (start) {
    // before the route's own onRequest (admission): a client without a valid token learns nothing of queues
    app.addHook('onRequest', async (req, reply) => {
      const route = req.routeOptions.url;
      let scope: AuthScope | null = null;
      if (route === '/metrics') scope = { kind: 'metrics' };
      else if (route?.startsWith('/v2/models/')) scope = { kind: 'tenant', tenant: (req.params as ModelParams).model };
      else if (route === RELOAD_ROUTE) scope = { kind: 'admin' };
      else if (route === INDEX_ROUTE) scope = { kind: 'any' }; // lists the token's tenants only
      const auth = authNow();
      if (scope === null || auth === null) return; // health, /v2, unknown routes
      const d = authorize(auth, req.headers.authorization, scope);
      if (d.ok) return;
      metrics.onAuthFailure(d.status);
      req.log.info({ reqId: req.id, status: d.status, msg: d.message }, 'request not authorized');
      if (d.status === 401) reply.header('www-authenticate', `Bearer realm="loom"${req.headers.authorization ? ', error="invalid_token"' : ''}`);
      return reply.code(d.status).send({ error: d.message });
    });
  }

  app.get('/v2/health/live', async () => ({ live: true }));
  // ready: not shutting down, and no failed tick the backend has not yet recovered from (scheduler.health())
  app.get('/v2/health/ready', async (_req, reply) => {
    const now = await backend.isReady();
    return reply.code(now ? 200 : 503).send({ ready: now });
  });
  app.get('/v2', async () => ({ name: 'loom', version: opts.version, extensions: ['binary_tensor_data'] }));

  const metadata = async (req: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    const r = tenantOf(req.params);
    if ('error' in r) return reply.code(404).send({ error: r.error });
    return modelMetadata(r.tenant, backend.sloMs(r.tenant.id));
  };
  app.get('/v2/models/:model', metadata);
  app.get('/v2/models/:model/versions/:version', metadata);

  const modelReady = async (req: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    const r = tenantOf(req.params);
    if ('error' in r) return reply.code(404).send({ error: r.error });
    const now = await (backend.isModelReady ? backend.isModelReady(r.tenant.id) : backend.isReady());
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
    const outs = await backend.submit(r.tenant.id, decoded.inputs, { arrivedAt: performance.now() - reply.elapsedTime, signal: gone.signal });
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
  const early = async (req: FastifyRequest<{ Params: ModelParams }>) => backend.precheck(req.params.model);
  app.post('/v2/models/:model/infer', { config: { infer: true }, onRequest: early }, infer);
  app.post('/v2/models/:model/versions/:version/infer', { config: { infer: true }, onRequest: early }, infer);

  app.get('/metrics', async (_req, reply) => {
    const m = await backend.metrics();
    return reply.type(m.contentType).send(m.text);
  });

  if (backend.repository) registerRepositoryRoutes(app, { ...backend.repository, auth: authNow });

  return {
    app,
    async listen(port, host, reusePort = false) {
      await app.listen({ port, host, ...(reusePort ? { reusePort: true } : {}) });
      const addr = app.server.address();
      const where = typeof addr === 'object' && addr !== null ? addr : { address: host, port };
      const h = where.address.includes(':') ? `[${where.address}]` : where.address;
      return `${opts.tls ? 'https' : 'http'}://${h}:${where.port}`;
    },
    startClosing() {
      closing = true;
    },
    async close() {
      closing = true;
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
    },
  };
}
