// `loom serve`'s HTTP layer: Open Inference Protocol v2 routes over the tick scheduler (fastify, pino logs
// with request ids, prom-client metrics). Thin on purpose: decoding and validation are in oip.ts and
// runtime/serve/, queueing, batching and admission in the scheduler.
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import { isLoomError } from '../../ir/errors.js';
import { type SchedulerOptions, ServeError, ServeMetrics, TickScheduler, type TickRunner, isServeError } from './index.js';
import { MODEL_VERSION, decodeInferRequest, encodeInferResponse, modelMetadata } from './oip.js';

// A LoadedPlan fits; tests may wrap one.
export interface ServeRunner extends TickRunner {
  readonly backend: string;
  close?(): void;
}

export interface ServeOptions {
  readonly runner: ServeRunner;
  readonly scheduler?: Omit<SchedulerOptions, 'observer'>;
  readonly bodyLimit?: number; // bytes (default 32 MiB)
  readonly logger?: false | { readonly level: string } | FastifyBaseLogger; // default: no logs
  readonly version?: string;
}

export interface LoomServer {
  readonly app: FastifyInstance;
  readonly scheduler: TickScheduler;
  readonly metrics: ServeMetrics;
  listen(port: number, host: string): Promise<string>; // resolves with the base URL
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
  const { runner } = opts;
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  let nextId = 0;
  const logger = opts.logger ?? false;
  const logOpts = logger === false ? { logger: false } : isLoggerInstance(logger) ? { loggerInstance: logger } : { logger: { level: logger.level } };
  const app = Fastify({
    ...logOpts,
    bodyLimit,
    requestIdHeader: 'x-request-id',
    genReqId: () => `r${(++nextId).toString(36)}`,
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  }) as unknown as FastifyInstance;

  let metrics: ServeMetrics | null = null;
  const scheduler = new TickScheduler(runner, {
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
  });
  metrics = new ServeMetrics({ plan: runner.plan, backend: runner.backend, queueDepth: (t) => scheduler.queueDepth(t) });
  const m = metrics;
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
    return t ? { tenant: t } : { error: `unknown model '${p.model}' (this server has: ${runner.plan.tenants.map((x) => x.id).join(', ')})` };
  };

  app.get('/v2/health/live', async () => ({ live: true }));
  // ready: not shutting down, and no failed tick the backend has not yet recovered from (scheduler.health())
  const isReady = () => ready && scheduler.health().ready;
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
    const now = isReady();
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

  const shutdown = (): Promise<void> => {
    closing ??= (async () => {
      ready = false;
      app.log.info('shutting down: no new requests; finishing accepted ones');
      await scheduler.close();
      await app.close();
      runner.close?.();
      app.log.info({ ...scheduler.stats }, 'shut down: every accepted request was answered');
    })();
    return closing;
  };

  return {
    app,
    scheduler,
    metrics: m,
    async listen(port, host) {
      await app.listen({ port, host });
      const addr = app.server.address();
      const where = typeof addr === 'object' && addr !== null ? addr : { address: host, port };
      const h = where.address.includes(':') ? `[${where.address}]` : where.address;
      return `http://${h}:${where.port}`;
    },
    shutdown,
  };
}
