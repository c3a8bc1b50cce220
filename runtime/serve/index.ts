// runtime/serve: `loom serve` — the Open Inference Protocol v2 HTTP server (server.ts, oip.ts) over per-tenant
// queues and the tick scheduler (admission, SLOs, quotas), request validation, batching, Prometheus metrics.
export { TickScheduler } from './scheduler.js';
export type {
  AnsweredReport,
  CancelStage,
  QueueDepth,
  RejectReason,
  SchedulerObserver,
  SchedulerHealth,
  SchedulerOptions,
  SchedulerWork,
  SubmitOptions,
  TickReport,
  TickRunner,
} from './scheduler.js';
export { ServeError, isServeError, notServedMessage, refuse, unknownModelMessage } from './errors.js';
export type { RemovedModel, ServeStatus } from './errors.js';
export { concatRows, splitRows } from './batch.js';
export { describeTenantIO, firstNonFinite, isBatchable, validateRequest } from './validate.js';
export { DEFAULT_TOP_K, ServeMetrics, topEntries } from './metrics.js';
export type { MetricsOptions, MetricsSource } from './metrics.js';
export { createServer, DEFAULT_BODY_LIMIT, DEFAULT_LIMITS } from './server.js';
export { createHttpApp } from './http-app.js';
export type { HttpApp, HttpAppOptions, HttpLimits, IntakeBackend } from './http-app.js';
export { IntakePool, defaultIntakeThreads, reusePortUnsupported } from './intake/pool.js';
export { INDEX_ROUTE, RELOAD_ROUTE, adminWithoutAuth, registerRepositoryRoutes } from './repository.js';
export type { RepositoryBackend, RepositoryRoutes } from './repository.js';
export type { LoomServer, ServeOptions, ServeRunner, ServedPlan } from './server.js';
export { PlanSwitch, gateRunner, planSha } from './swap.js';
export type { LoadedServe, PlanGeneration, ReloadReport, RepositoryEntry, SwapObserver } from './swap.js';
export { SwapMetrics } from './swap-metrics.js';
export { decodeInferRequest, encodeInferResponse, modelMetadata, oipDatatype, describeOip, tensorToJson, MODEL_VERSION } from './oip.js';
export type { OipDatatype, OipModelMetadata, OipTensorMetadata, DecodedInfer, RequestedOutput } from './oip.js';
export { authorize, loadAuthFile, parseAuthConfig } from './auth.js';
export type { AuthConfig, AuthDecision, AuthScope, AuthToken } from './auth.js';
export { ShardRouter } from './shards.js';
export type { ServeScheduler, ServeShard, ShardObserver } from './shards.js';
export { ShardMetrics } from './shard-metrics.js';
