// Prometheus metrics of a serving process (prom-client, one Registry per server so tests can run several):
// requests by status, latency, queue depth, admission refusals and SLO misses; per-tick duration, occupancy
// and launches; process memory (prom-client's defaults) and the plan's arena bytes (the backend's resident
// memory: device memory on CUDA).
// Cardinality: by default the request, latency, queue, refusal, SLO and cancel series are fleet-level (no
// tenant label), so a scrape stays about 17 KB at 10,000 tenants; `perTenant` (loom serve --metrics-per-tenant)
// adds the tenant label to each of them (about 40 series per tenant that saw traffic: 26 MB a scrape when
// 10,000 tenants all did; test/serve/scale.test.ts). Always, the
// top-K gauges name the K tenants with the most rows queued now, the most refusals and the most SLO misses
// since start (K = topK, --metrics-top-k; 0 turns them off): where to look, at a bounded cost.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { LaunchPlan } from '../../codegen/index.js';
import type { AnsweredReport, CancelStage, QueueDepth, RejectReason, SchedulerObserver, TickReport } from './scheduler.js';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const OCCUPANCY_BUCKETS = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];

export interface MetricsSource {
  readonly plan: LaunchPlan;
  readonly backend: string;
  queueDepth(tenant: string): QueueDepth;
  // The tenants with queued work only (TickScheduler.queued()); without it every tenant is asked at a scrape.
  queued?(): Iterable<[string, QueueDepth]>;
}

export interface MetricsOptions {
  readonly perTenant?: boolean; // a tenant label on the per-request series (default false: fleet-level)
  readonly topK?: number; // tenants named by each loom_top_tenant_* gauge (default 10; 0: none)
}

export const DEFAULT_TOP_K = 10;
const TICK_TENANT_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 16384];
const TICK_ROW_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]; // the row buckets a tick runs at

// The k entries with the largest values (ties: the name first in order), largest first; values > 0 only.
export function topEntries(entries: Iterable<[string, number]>, k: number): Array<[string, number]> {
  if (k <= 0) return [];
  const top: Array<[string, number]> = [];
  for (const e of entries) {
    if (!(e[1] > 0)) continue;
    if (top.length === k && !beats(e, top[k - 1]!)) continue;
    let at = top.length === k ? k - 1 : top.length;
    while (at > 0 && beats(e, top[at - 1]!)) at--;
    top.splice(at, 0, e);
    if (top.length > k) top.pop();
  }
  return top;
}

function beats(a: [string, number], b: [string, number]): boolean {
  return a[1] > b[1] || (a[1] === b[1] && a[0] < b[0]);
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
  private readonly tickTenantRows: Histogram;
  private readonly launches: Counter;
  private readonly connectionsRefused: Counter;
  private readonly clientErrors: Counter<'reason'>;
  private readonly authFailures: Counter<'code'>;
  private readonly grpcRequests: Counter<'method' | 'code'>;
  private tenantIds: ReadonlySet<string>; // the serving plan's (setPlan after a reload)
  private readonly arena: Gauge<'backend' | 'arena'>;
  private readonly info: Gauge<'backend' | 'tenants' | 'launches'>;
  readonly perTenant: boolean;
  readonly topK: number;
  private readonly rejectedBy = new Map<string, number>(); // for the top-K gauges: tenants with refusals only
  private readonly missedBy = new Map<string, number>();

  constructor(source: MetricsSource, opts: MetricsOptions = {}) {
    const registers = [this.registry];
    this.tenantIds = new Set(source.plan.tenants.map((t) => t.id));
    this.perTenant = opts.perTenant === true;
    this.topK = opts.topK ?? DEFAULT_TOP_K;
    if (!Number.isInteger(this.topK) || this.topK < 0) throw new RangeError(`ServeMetrics: topK must be an integer >= 0, got ${opts.topK}`);
    const perTenant = this.perTenant;
    const tenantLabel = (labels: string[]): string[] => (perTenant ? ['tenant', ...labels] : labels);
    const by = perTenant ? ', by model (tenant)' : ' (fleet; --metrics-per-tenant adds a tenant label)';
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({
      name: 'loom_requests_total',
      help: `Inference requests answered, by HTTP status code${by}`,
      labelNames: tenantLabel(['code']),
      registers,
    });
    this.latency = new Histogram({
      name: 'loom_request_duration_seconds',
      help: `Latency of answered (200) inference requests, arrival to response${by}`,
      labelNames: tenantLabel([]),
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.queueWait = new Histogram({
      name: 'loom_queue_wait_seconds',
      help: `Time an accepted request waited in its tenant queue for its tick to start${by}`,
      labelNames: tenantLabel([]),
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.rejected = new Counter({
      name: 'loom_admission_rejected_total',
      help: `Requests refused at admission: quota (queue full), slo (deadline cannot be met), closed (shutting down)${by}`,
      labelNames: tenantLabel(['reason']),
      registers,
    });
    this.sloMissed = new Counter({
      name: 'loom_slo_missed_total',
      help: `Accepted requests answered later than their tenant's sloMs${by}`,
      labelNames: tenantLabel([]),
      registers,
    });
    this.cancelled = new Counter({
      name: 'loom_requests_cancelled_total',
      help: `Requests whose client went away before the answer: queued (dropped from the queue, not computed) or in_tick (computed, answer discarded)${by}`,
      labelNames: tenantLabel(['stage']),
      registers,
    });
    this.queueGauges(source, registers);
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
    this.tickTenants = new Histogram({ name: 'loom_tick_tenants', help: 'Tenants carried by a tick', buckets: TICK_TENANT_BUCKETS, registers });
    this.tickTenantRows = new Histogram({
      name: 'loom_tick_max_tenant_rows',
      help: "The most rows one tenant carried in a tick: the tick's row-scaled GEMMs run at this rounded up to a power of two",
      buckets: TICK_ROW_BUCKETS,
      registers,
    });
    this.launches = new Counter({ name: 'loom_tick_launches_total', help: "Launches issued by ticks (the plan's launches per tick)", registers });
    this.arena = new Gauge({
      name: 'loom_plan_arena_bytes',
      help: 'Bytes the loaded plan holds on its backend, by arena (device memory on CUDA)',
      labelNames: ['backend', 'arena'],
      registers,
    });
    this.info = new Gauge({
      name: 'loom_plan_info',
      help: 'The loaded plan: tenants and launches per tick',
      labelNames: ['backend', 'tenants', 'launches'],
      registers,
    });
    this.setPlan(source.plan, source.backend);
  }

  // The plan serving now (at start, and after a reload switched plans): its tenants, arenas and launches.
  setPlan(plan: LaunchPlan, backend: string): void {
    this.tenantIds = new Set(plan.tenants.map((t) => t.id));
    this.arena.reset();
    for (const name of ['weights', 'act', 'io'] as const) this.arena.set({ backend, arena: name }, plan.arenas[name]);
    this.info.reset();
    this.info.set({ backend, tenants: String(plan.tenants.length), launches: String(plan.launches.length) }, 1);
  }

  // Queue depth and rows: per tenant (every tenant, 0 included) with perTenant, else the fleet's sums and the
  // count of tenants with queued work, from the active tenants only; and the top-K gauges.
  private queueGauges(source: MetricsSource, registers: Registry[]): void {
    const perTenant = this.perTenant;
    const queued = (): Iterable<[string, QueueDepth]> =>
      source.queued ? source.queued() : source.plan.tenants.map((t): [string, QueueDepth] => [t.id, source.queueDepth(t.id)]).filter(([, d]) => d.requests > 0);
    const total = (pick: (d: QueueDepth) => number) => {
      let n = 0;
      for (const [, d] of queued()) n += pick(d);
      return n;
    };
    const gauge = (name: string, what: string, pick: (d: QueueDepth) => number) =>
      new Gauge({
        name,
        help: perTenant ? `${what} waiting in each tenant queue` : `${what} waiting in all tenant queues (--metrics-per-tenant: one series a tenant)`,
        labelNames: perTenant ? ['tenant'] : [],
        registers,
        collect() {
          if (!perTenant) return this.set(total(pick));
          for (const t of source.plan.tenants) this.set({ tenant: t.id }, pick(source.queueDepth(t.id)));
        },
      });
    gauge('loom_queue_depth', 'Requests', (d) => d.requests);
    gauge('loom_queue_rows', 'Rows', (d) => d.rows);
    new Gauge({
      name: 'loom_tenants_queued',
      help: 'Tenants with requests waiting in their queue',
      registers,
      collect() {
        let n = 0;
        for (const _ of queued()) n++;
        this.set(n);
      },
    });
    if (this.topK === 0) return;
    const k = this.topK;
    const top = (name: string, help: string, entries: () => Iterable<[string, number]>) =>
      new Gauge({
        name,
        help: `${help}: the ${k} tenants with the most (--metrics-top-k), others absent`,
        labelNames: ['tenant'],
        registers,
        collect() {
          this.reset(); // a tenant that left the top K leaves the page
          for (const [t, v] of topEntries(entries(), k)) this.set({ tenant: t }, v);
        },
      });
    top('loom_top_tenant_queue_rows', 'Rows queued now', function* () {
      for (const [t, d] of queued()) yield [t, d.rows];
    });
    top('loom_top_tenant_rejected', 'Requests refused at admission since start', () => this.rejectedBy.entries());
    top('loom_top_tenant_slo_missed', 'Requests answered past sloMs since start', () => this.missedBy.entries());
  }

  // Unknown model names share one label value: a client cannot grow the label set.
  private label(tenant: string): string {
    return this.tenantIds.has(tenant) ? tenant : '_unknown';
  }

  // The label set of a per-request series: the tenant's only with perTenant.
  private labels<T extends Record<string, string>>(tenant: string, rest: T): T & { tenant?: string } {
    return this.perTenant ? { tenant: this.label(tenant), ...rest } : rest;
  }

  observeRequest(tenant: string, code: number, seconds: number): void {
    this.requests.inc(this.labels(tenant, { code: String(code) }));
    if (code === 200) this.latency.observe(this.labels(tenant, {}), seconds);
  }

  onTick(r: TickReport): void {
    this.ticks.inc({ result: r.ok ? 'ok' : 'error' });
    this.tickDuration.observe(r.durationMs / 1000);
    this.tickOccupancy.observe(r.capacityRows > 0 ? r.rows / r.capacityRows : 0);
    this.tickTenants.observe(r.tenants);
    this.tickTenantRows.observe(r.maxTenantRows);
    this.launches.inc(r.launches);
  }

  onReject(tenant: string, reason: RejectReason): void {
    this.rejected.inc(this.labels(tenant, { reason }));
    if (this.tenantIds.has(tenant)) this.rejectedBy.set(tenant, (this.rejectedBy.get(tenant) ?? 0) + 1);
  }

  onAnswered(tenant: string, r: AnsweredReport): void {
    this.queueWait.observe(this.labels(tenant, {}), r.waitMs / 1000);
    if (!r.missedSlo) return;
    this.sloMissed.inc(this.labels(tenant, {}));
    if (this.tenantIds.has(tenant)) this.missedBy.set(tenant, (this.missedBy.get(tenant) ?? 0) + 1);
  }

  onCancel(tenant: string, stage: CancelStage): void {
    this.cancelled.inc(this.labels(tenant, { stage }));
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
