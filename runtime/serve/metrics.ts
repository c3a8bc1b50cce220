// Prometheus metrics of a serving process (prom-client, one Registry per server so tests can run several):
// per-tenant requests by status, latency, queue depth, admission refusals and SLO misses; per-tick
// duration, occupancy and launches; process memory (prom-client's defaults) and the plan's arena bytes
// (the backend's resident memory: device memory on CUDA).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { LaunchPlan } from '../../codegen/index.js';
import type { AnsweredReport, CancelStage, QueueDepth, RejectReason, SchedulerObserver, TickReport } from './scheduler.js';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const OCCUPANCY_BUCKETS = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];

export interface MetricsSource {
  readonly plan: LaunchPlan;
  readonly backend: string;
  queueDepth(tenant: string): QueueDepth;
}

export class ServeMetrics implements SchedulerObserver {
  readonly registry = new Registry();
  private readonly requests: Counter<'tenant' | 'code'>;
  private readonly latency: Histogram<'tenant'>;
  private readonly queueWait: Histogram<'tenant'>;
  private readonly rejected: Counter<'tenant' | 'reason'>;
  private readonly sloMissed: Counter<'tenant'>;
  private readonly cancelled: Counter<'tenant' | 'stage'>;
  private readonly ticks: Counter<'result'>;
  private readonly tickDuration: Histogram;
  private readonly tickOccupancy: Histogram;
  private readonly tickTenants: Histogram;
  private readonly launches: Counter;
  private readonly connectionsRefused: Counter;
  private readonly clientErrors: Counter<'reason'>;
  private readonly authFailures: Counter<'code'>;
  private readonly grpcRequests: Counter<'method' | 'code'>;
  private readonly tenantIds: ReadonlySet<string>;

  constructor(source: MetricsSource) {
    const registers = [this.registry];
    this.tenantIds = new Set(source.plan.tenants.map((t) => t.id));
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({
      name: 'loom_requests_total',
      help: 'Inference requests answered, by model (tenant) and HTTP status code',
      labelNames: ['tenant', 'code'],
      registers,
    });
    this.latency = new Histogram({
      name: 'loom_request_duration_seconds',
      help: 'Latency of answered (200) inference requests, arrival to response',
      labelNames: ['tenant'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.queueWait = new Histogram({
      name: 'loom_queue_wait_seconds',
      help: 'Time an accepted request waited in its tenant queue for its tick to start',
      labelNames: ['tenant'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.rejected = new Counter({
      name: 'loom_admission_rejected_total',
      help: 'Requests refused at admission: quota (queue full), slo (deadline cannot be met), closed (shutting down)',
      labelNames: ['tenant', 'reason'],
      registers,
    });
    this.sloMissed = new Counter({
      name: 'loom_slo_missed_total',
      help: "Accepted requests answered later than their tenant's sloMs",
      labelNames: ['tenant'],
      registers,
    });
    this.cancelled = new Counter({
      name: 'loom_requests_cancelled_total',
      help: 'Requests whose client went away before the answer: queued (dropped from the queue, not computed) or in_tick (computed, answer discarded)',
      labelNames: ['tenant', 'stage'],
      registers,
    });
    new Gauge({
      name: 'loom_queue_depth',
      help: 'Requests waiting in each tenant queue',
      labelNames: ['tenant'],
      registers,
      collect() {
        for (const t of source.plan.tenants) this.set({ tenant: t.id }, source.queueDepth(t.id).requests);
      },
    });
    new Gauge({
      name: 'loom_queue_rows',
      help: 'Rows waiting in each tenant queue',
      labelNames: ['tenant'],
      registers,
      collect() {
        for (const t of source.plan.tenants) this.set({ tenant: t.id }, source.queueDepth(t.id).rows);
      },
    });
    this.connectionsRefused = new Counter({
      name: 'loom_connections_refused_total',
      help: 'Connections closed at accept because --max-connections were already open',
      registers,
    });
    this.clientErrors = new Counter({
      name: 'loom_client_errors_total',
      help: 'Connections cut off before a request was read in full, by reason (timeout: --request-timeout-ms or the headers timeout; header_overflow; malformed)',
      labelNames: ['reason'],
      registers,
    });
    this.authFailures = new Counter({
      name: 'loom_auth_failures_total',
      help: 'Requests refused by --auth, by status (401: no or unknown token, 403: token not allowed for the route)',
      labelNames: ['code'],
      registers,
    });
    this.grpcRequests = new Counter({
      name: 'loom_grpc_requests_total',
      help: 'ModelInfer calls over gRPC (--grpc-port), by method and HTTP-equivalent status; they are also in loom_requests_total',
      labelNames: ['method', 'code'],
      registers,
    });
    this.ticks = new Counter({ name: 'loom_ticks_total', help: 'Ticks run, by result (ok, error)', labelNames: ['result'], registers });
    this.tickDuration = new Histogram({
      name: 'loom_tick_duration_seconds',
      help: "Duration of one tick (all tenants' batched rows through the plan)",
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.tickOccupancy = new Histogram({
      name: 'loom_tick_occupancy_ratio',
      help: 'Live rows of a tick / the rows of a full tick (every tenant at maxBatch)',
      buckets: OCCUPANCY_BUCKETS,
      registers,
    });
    this.tickTenants = new Histogram({ name: 'loom_tick_tenants', help: 'Tenants carried by a tick', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers });
    this.launches = new Counter({ name: 'loom_tick_launches_total', help: "Launches issued by ticks (the plan's launches per tick)", registers });
    const arena = new Gauge({
      name: 'loom_plan_arena_bytes',
      help: 'Bytes the loaded plan holds on its backend, by arena (device memory on CUDA)',
      labelNames: ['backend', 'arena'],
      registers,
    });
    for (const name of ['weights', 'act', 'io'] as const) arena.set({ backend: source.backend, arena: name }, source.plan.arenas[name]);
    const info = new Gauge({
      name: 'loom_plan_info',
      help: 'The loaded plan: tenants and launches per tick',
      labelNames: ['backend', 'tenants', 'launches'],
      registers,
    });
    info.set({ backend: source.backend, tenants: String(source.plan.tenants.length), launches: String(source.plan.launches.length) }, 1);
  }

  // Unknown model names share one label value: a client cannot grow the label set.
  private label(tenant: string): string {
    return this.tenantIds.has(tenant) ? tenant : '_unknown';
  }

  observeRequest(tenant: string, code: number, seconds: number): void {
    const t = this.label(tenant);
    this.requests.inc({ tenant: t, code: String(code) });
    if (code === 200) this.latency.observe({ tenant: t }, seconds);
  }

  onTick(r: TickReport): void {
    this.ticks.inc({ result: r.ok ? 'ok' : 'error' });
    this.tickDuration.observe(r.durationMs / 1000);
    this.tickOccupancy.observe(r.capacityRows > 0 ? r.rows / r.capacityRows : 0);
    this.tickTenants.observe(r.tenants);
    this.launches.inc(r.launches);
  }

  onReject(tenant: string, reason: RejectReason): void {
    this.rejected.inc({ tenant: this.label(tenant), reason });
  }

  onAnswered(tenant: string, r: AnsweredReport): void {
    this.queueWait.observe({ tenant: this.label(tenant) }, r.waitMs / 1000);
    if (r.missedSlo) this.sloMissed.inc({ tenant: this.label(tenant) });
  }

  onCancel(tenant: string, stage: CancelStage): void {
    this.cancelled.inc({ tenant: this.label(tenant), stage });
  }

  onConnectionRefused(): void {
    this.connectionsRefused.inc();
  }

  onClientError(reason: 'timeout' | 'header_overflow' | 'malformed'): void {
    this.clientErrors.inc({ reason });
  }

  onAuthFailure(code: 401 | 403): void {
    this.authFailures.inc({ code: String(code) });
  }

  onGrpcRequest(method: string, code: number): void {
    this.grpcRequests.inc({ method, code: String(code) });
  }

  contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
