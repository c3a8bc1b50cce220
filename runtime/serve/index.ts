// runtime/serve: what `loom serve` runs on, without HTTP: per-tenant queues and the tick scheduler
// (admission, SLOs, quotas), request validation, batching, and the Prometheus metrics.
export { TickScheduler } from './scheduler.js';
export type { AnsweredReport, CancelStage, QueueDepth, RejectReason, SchedulerObserver, SchedulerOptions, SubmitOptions, TickReport, TickRunner } from './scheduler.js';
export { ServeError, isServeError, refuse } from './errors.js';
export type { ServeStatus } from './errors.js';
export { concatRows, splitRows } from './batch.js';
export { describeTenantIO, firstNonFinite, isBatchable, validateRequest } from './validate.js';
export { ServeMetrics } from './metrics.js';
export type { MetricsSource } from './metrics.js';
