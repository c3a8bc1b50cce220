// The tick scheduler: one FIFO queue per tenant; a tick takes up to maxBatch rows of whole requests from
// every tenant with work, runs the plan once (tenants without work are absent: the backend skips them),
// and cuts the outputs back per request. A tick starts as soon as work is waiting and the previous one
// is done; with `pipeline` the next tick is batched and handed to the runner while the current one runs,
// so it starts the moment the current one ends (the runner runs ticks one at a time, in call order).
// A queued request whose client went away (its AbortSignal) leaves the queue uncomputed.
// Admission happens at submit time, so nothing waits in a queue it was never meant to be in:
// a request is refused (429) when its tenant's quota is full or when its predicted completion is past the
// tenant's sloMs; one tenant's flood fills only its own queue, never the others' rows. Without an explicit
// queueTicks, a tenant with an SLO is admitted by its predicted completion alone once ticks are timed (its
// quota is then only a memory bound, SLO_QUEUE_TICKS batches): a burst that fits the SLO is never refused.
// Before the first timed tick, and for tenants without an SLO, the quota is DEFAULT_QUEUE_TICKS batches. The prediction
// (admit): the time it already spent, the running tick's remaining time, the ticks handed over behind it,
// then ceil((rows queued before it + its rows) / maxBatch) ticks of its tenant (a tick takes up to maxBatch
// rows per tenant), each tick costing the median of the recent tick durations (the tail's p90 per tick ahead
// refused bursts that fit: issue 12 item 6).
// Scale: per-tick work is proportional to the tenants with queued work, never to all of them. The tenants
// with a non-empty queue are an `active` set kept as requests are queued, taken and cancelled; a tick walks
// only that set (in plan order), and the counters in `work` count every tenant queue the tick path looks
// at, so a test can prove idle tenants cost nothing (test/serve/scale.test.ts).
import type { LaunchPlan } from '../../codegen/index.js';
import type { Tensor } from '../../ir/tensor.js';
import type { PlannedTenant } from '../../ir/contract/plan.js';
import type { TickInputs, TickOutputs } from '../tick-io.js';
import { concatRows, splitRows } from './batch.js';
import { ServeError, isServeError, refuse, unknownModelMessage } from './errors.js';
import { isBatchable, validateRequest } from './validate.js';

// What the scheduler needs from a loaded plan (LoadedPlan fits; tests wrap one to inject failures).
// runTick may be called again before the previous call settles (pipelining): it must run the ticks one at
// a time, in call order, as LoadedPlan does.
export interface TickRunner {
  readonly plan: LaunchPlan;
  runTick(inputs: TickInputs): Promise<TickOutputs>;
}

export type RejectReason = 'quota' | 'slo' | 'closed';
// queued: dropped before any tick took it (not computed); in_tick: computed, the answer discarded.
export type CancelStage = 'queued' | 'in_tick';

export interface TickReport {
  readonly seq: number;
  readonly durationMs: number;
  readonly ok: boolean;
  readonly error: string | null;
  readonly tenants: number; // tenants carried by the tick
  readonly requests: number;
  readonly rows: number; // live rows
  // the most rows one tenant carried: the tick's row-scaled GEMMs run at this rounded up to a power of two
  // (native/src/executor.h row_bucket)
  readonly maxTenantRows: number;
  readonly capacityRows: number; // every tenant's maxBatch: the rows of a full tick
  readonly launches: number;
}

export interface AnsweredReport {
  readonly waitMs: number; // arrival until its tick started
  readonly totalMs: number; // arrival until answered
  readonly missedSlo: boolean;
}

// Hooks for metrics and logs; the scheduler itself knows neither.
export interface SchedulerObserver {
  onTick?(report: TickReport): void;
  onReject?(tenant: string, reason: RejectReason): void;
  onAnswered?(tenant: string, report: AnsweredReport): void;
  onCancel?(tenant: string, stage: CancelStage): void;
}

export interface SchedulerOptions {
  // Per-tenant quota: this many full batches of rows may wait, for every tenant. Absent: DEFAULT_QUEUE_TICKS
  // for tenants without an SLO (and for all before the first timed tick); tenants with one are admitted by
  // predicted completion, up to SLO_QUEUE_TICKS batches.
  readonly queueTicks?: number;
  readonly defaultSloMs?: number | null; // for tenants whose plan has sloMs null (default: none)
  // Refuse NaN/Inf in float inputs for every tenant; without it, only tenants whose manifest sets checkFinite.
  readonly checkFinite?: boolean;
  // Batch the next tick and hand it to the runner while one runs (default false: on the CPU backend it gave no
  // throughput and halved the requests per tick, bench/serve-pipeline.ts; worth measuring on CUDA).
  readonly pipeline?: boolean;
  // Readiness after a failed tick (see health()): how long the scheduler stays unready after the last failed
  // tick when no tick has succeeded since (default 2000 ms).
  readonly failureHoldMs?: number;
  readonly observer?: SchedulerObserver;
  // The scheduler's clock in ms (default performance.now, which the HTTP layer's arrivedAt also uses): tests
  // pass a fake one to make tick times exact.
  readonly clock?: () => number;
}

export interface SchedulerHealth {
  readonly ready: boolean;
  readonly failedTick: number | null; // the failed tick that makes it unready
  readonly error: string | null;
}

// What submit needs of an AbortSignal (one fits): the intake pool passes a lighter one per request.
export interface CancelSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export interface SubmitOptions {
  // When the request reached the server (the scheduler's clock), if earlier than now: the HTTP layer passes
  // it so time spent reading and decoding the body counts against the SLO.
  readonly arrivedAt?: number;
  readonly signal?: CancelSignal; // aborted when the client goes away
}

interface Pending {
  readonly inputs: Readonly<Record<string, Tensor>>;
  readonly rows: number;
  readonly arrivedAt: number;
  readonly signal: CancelSignal | null;
  detach: () => void; // stops listening for the client going away (once a tick has taken the request)
  readonly resolve: (out: Record<string, Tensor>) => void;
  readonly reject: (e: unknown) => void;
}

export const DEFAULT_QUEUE_TICKS = 4;
export const SLO_QUEUE_TICKS = 256;

interface TenantQueue {
  readonly tenant: PlannedTenant;
  readonly index: number; // in the plan: ticks list their tenants in this order
  readonly sloMs: number | null;
  readonly checkFinite: boolean;
  readonly quotaRows: number;
  // the quota once ticks are timed: quotaRows, or for a tenant with an SLO and no explicit queueTicks the
  // memory bound SLO_QUEUE_TICKS batches (the SLO check refuses long before that)
  readonly timedQuotaRows: number;
  readonly batchable: boolean;
  queue: Pending[];
  rows: number; // rows waiting in `queue`
}

export interface QueueDepth {
  readonly requests: number;
  readonly rows: number;
}

// What the tick path has done, counted (not timed): tenantVisits is every tenant queue it looked at.
export interface SchedulerWork {
  readonly ticks: number; // ticks handed to the runner
  readonly tenantVisits: number;
}

const ESTIMATE_WINDOW = 32;

interface TickGroup {
  readonly q: TenantQueue;
  readonly taken: readonly Pending[];
}

interface InFlight {
  readonly seq: number;
  readonly calledAt: number; // when it was handed to the runner; it starts once the tick before it ends
  readonly groups: readonly TickGroup[];
  readonly requests: number;
  readonly rows: number;
}

export class TickScheduler {
  private readonly tenants = new Map<string, TenantQueue>();
  private readonly active = new Set<TenantQueue>(); // the tenants whose queue is not empty
  private readonly ids: string[] = []; // plan order
  private estimate: number | null = null; // estimateTickMs(), recomputed when a tick settles
  private readonly workDone = { ticks: 0, tenantVisits: 0 };
  private readonly clock: () => number;
  private readonly capacityRows: number;
  private readonly durations: number[] = []; // the last ESTIMATE_WINDOW tick durations (ms)
  private readonly maxInFlight: number;
  private readonly inFlight: InFlight[] = []; // handed to the runner, in order; the first is running
  private lastSettledAt = Number.NEGATIVE_INFINITY;
  private kickPending = false;
  private seq = 0;
  private accepting = true;
  private drained: Promise<void> | null = null;
  private counts = { accepted: 0, answered: 0, failed: 0, cancelled: 0 };
  private resolveDrained: (() => void) | null = null;
  private lastFailure: { seq: number; at: number; error: string } | null = null; // cleared by a tick that succeeds
  private readonly failureHoldMs: number;

  constructor(
    private readonly runner: TickRunner,
    private readonly opts: SchedulerOptions = {},
  ) {
    this.clock = opts.clock ?? (() => performance.now()); // the HTTP layer's arrivedAt is on performance.now too
    this.maxInFlight = opts.pipeline === true ? 2 : 1;
    this.failureHoldMs = opts.failureHoldMs ?? 2000;
    if (!(this.failureHoldMs >= 0)) throw new ServeError(500, `failureHoldMs must be >= 0, got ${opts.failureHoldMs}`);
    const queueTicks = opts.queueTicks ?? DEFAULT_QUEUE_TICKS;
    if (!(queueTicks >= 1)) throw new ServeError(500, `queueTicks must be >= 1, got ${queueTicks}`);
    const rowsOf = (ticks: number, maxBatch: number) => Math.max(1, Math.floor(ticks * maxBatch));
    for (const tenant of runner.plan.tenants) {
      const sloMs = tenant.sloMs ?? opts.defaultSloMs ?? null;
      const quotaRows = rowsOf(queueTicks, tenant.maxBatch);
      const q: TenantQueue = {
        tenant,
        index: this.ids.length,
        sloMs,
        checkFinite: opts.checkFinite === true || tenant.checkFinite === true,
        quotaRows,
        timedQuotaRows: opts.queueTicks === undefined && sloMs !== null ? rowsOf(SLO_QUEUE_TICKS, tenant.maxBatch) : quotaRows,
        batchable: isBatchable(tenant),
        queue: [],
        rows: 0,
      };
      this.tenants.set(tenant.id, q);
      this.ids.push(tenant.id);
    }
    this.capacityRows = runner.plan.tenants.reduce((a, t) => a + t.maxBatch, 0);
  }

  // Requests admitted into a queue, and how they ended: answered (outputs), failed (their tick failed) or
  // cancelled (the client went away while it was queued). After close() resolves, accepted is their sum.
  get stats(): { readonly accepted: number; readonly answered: number; readonly failed: number; readonly cancelled: number } {
    return { ...this.counts };
  }

  get work(): SchedulerWork {
    return { ...this.workDone };
  }

  // Tenants with queued requests, and their depth: what metrics read at a scrape (never all tenants).
  *queued(): IterableIterator<[string, QueueDepth]> {
    for (const q of this.active) yield [q.tenant.id, { requests: q.queue.length, rows: q.rows }];
  }

  get isAccepting(): boolean {
    return this.accepting;
  }

  tenant(id: string): PlannedTenant | undefined {
    return this.tenants.get(id)?.tenant;
  }

  sloMs(id: string): number | null {
    return this.tenants.get(id)?.sloMs ?? null;
  }

  queueDepth(id: string): QueueDepth {
    const q = this.tenants.get(id);
    return q ? { requests: q.queue.length, rows: q.rows } : { requests: 0, rows: 0 };
  }

  // Readiness as the ticks see it: unready from a failed tick until a later tick succeeds, or until
  // failureHoldMs pass without another failure (an idle server runs no tick to prove it recovered, and a
  // load balancer that stops sending it traffic would otherwise never let it back). A backend that keeps
  // failing keeps it unready as long as requests keep coming.
  health(): SchedulerHealth {
    const f = this.lastFailure;
    if (f === null || this.clock() - f.at >= this.failureHoldMs) return { ready: true, failedTick: null, error: null };
    return { ready: false, failedTick: f.seq, error: f.error };
  }

  // The tick time admission predicts with: the median of the last ESTIMATE_WINDOW successful ticks (each
  // measured from when it could start, after the tick before it, to when it settled: idle gaps between ticks
  // are not in it); null before the first tick. Not the p90: a request several ticks back waits for the sum of
  // those ticks, and charging each one the tail's time refused requests that would have made their SLO.
  estimateTickMs(): number | null {
    return this.estimate;
  }

  private updateEstimate(): void {
    if (this.durations.length === 0) return;
    const sorted = [...this.durations].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    this.estimate = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  }

  // What admission would predict now for a request of `rows` rows to `tenantId` that has already spent
  // `spentMs`: ms until it is answered; null when it would start at once or no tick has been timed yet.
  predictCompletionMs(tenantId: string, rows = 1, spentMs = 0): number | null {
    const q = this.tenants.get(tenantId);
    return q ? this.predict(q, rows, spentMs, this.estimateTickMs()) : null;
  }

  // Validates, admits and queues one request; resolves with its outputs (its own rows only).
  // Rejects with ServeError: 404 unknown tenant, 400 bad input, 429 refused by admission, 503 closing,
  // 500 when its tick failed, 499 when its signal aborted while it was queued.
  submit(tenantId: string, inputs: Readonly<Record<string, Tensor>>, opts: SubmitOptions = {}): Promise<Record<string, Tensor>> {
    try {
      const q = this.tenants.get(tenantId);
      if (!q) refuse(404, unknownModelMessage(tenantId, this.ids));
      if (!this.accepting) {
        this.opts.observer?.onReject?.(tenantId, 'closed');
        refuse(503, 'the server is shutting down and accepts no new requests');
      }
      const rows = validateRequest(q.tenant, inputs, { checkFinite: q.checkFinite });
      const now = this.clock();
      const arrivedAt = Math.min(opts.arrivedAt ?? now, now);
      this.admit(q, rows, now - arrivedAt);
      const signal = opts.signal ?? null;
      if (signal?.aborted) {
        this.opts.observer?.onCancel?.(tenantId, 'queued');
        refuse(499, `the client of this request to model '${tenantId}' went away before it was queued`);
      }
      return new Promise((resolve, reject) => {
        this.counts.accepted++;
        const p: Pending = { inputs, rows, arrivedAt, signal, detach: () => {}, resolve, reject };
        if (signal) {
          const onAbort = () => this.cancelQueued(q, p);
          signal.addEventListener('abort', onAbort, { once: true });
          p.detach = () => signal.removeEventListener('abort', onAbort);
        }
        q.queue.push(p);
        q.rows += rows;
        this.active.add(q);
        this.kick();
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  // Stops accepting; resolves once every accepted request has been answered.
  close(): Promise<void> {
    this.accepting = false;
    if (!this.drained) {
      this.drained = new Promise((resolve) => {
        this.resolveDrained = resolve;
      });
      this.checkDrained();
    }
    return this.drained;
  }

  // Refuses (throws the 429 or 503 that submit would) when not even a one-row request could be admitted
  // for `tenantId` now: the HTTP layer asks before reading a body, so a flood is turned away cheaply.
  precheck(tenantId: string): void {
    const q = this.tenants.get(tenantId);
    if (!q) return; // submit names the unknown model
    if (!this.accepting) {
      this.opts.observer?.onReject?.(tenantId, 'closed');
      refuse(503, 'the server is shutting down and accepts no new requests');
    }
    this.admit(q, 1, 0);
  }

  // The client went away: a request no tick has taken yet leaves its queue, uncomputed.
  private cancelQueued(q: TenantQueue, p: Pending): void {
    const at = q.queue.indexOf(p);
    if (at < 0) return; // a tick took it; its answer is discarded when it comes
    q.queue.splice(at, 1);
    q.rows -= p.rows;
    if (q.queue.length === 0) this.active.delete(q);
    this.counts.cancelled++;
    this.opts.observer?.onCancel?.(q.tenant.id, 'queued');
    p.reject(new ServeError(499, `the client of this request to model '${q.tenant.id}' went away while it was queued; it was dropped, not computed`));
    this.checkDrained();
  }

  // Ms until the runner is free for a tick handed to it now: the running tick's rest plus the ticks queued behind it.
  private busyMs(est: number | null): number {
    const running = this.inFlight[0];
    if (!running || est === null) return 0;
    const startedAt = Math.max(running.calledAt, this.lastSettledAt);
    return Math.max(0, est - (this.clock() - startedAt)) + (this.inFlight.length - 1) * est;
  }

  // Predicted ms from arrival until a request of `rows` rows joining q now is answered: spentMs, the runner's
  // busy time (the running tick's rest, the ticks handed over behind it), then the ticks of q it waits for
  // (its rows and the rows queued before it, maxBatch per tick; one tick per request when q cannot batch).
  // null when it would start at once (nothing running or queued: the best any request can do) or untimed.
  private predict(q: TenantQueue, rows: number, spentMs: number, est: number | null): number | null {
    if (est === null || (this.inFlight.length === 0 && q.queue.length === 0)) return null;
    const ticksNeeded = q.batchable ? Math.ceil((q.rows + rows) / q.tenant.maxBatch) : q.queue.length + 1;
    return spentMs + this.busyMs(est) + ticksNeeded * est;
  }

  private admit(q: TenantQueue, rows: number, spentMs: number): void {
    const est = this.estimateTickMs();
    const remaining = this.busyMs(est);
    const maxBatch = q.tenant.maxBatch;
    const ticksAhead = q.batchable ? Math.ceil(q.rows / maxBatch) : q.queue.length;
    const retryAfterS = () => Math.max(1, Math.ceil((remaining + ticksAhead * (est ?? 0)) / 1000));
    const quota = est === null ? q.quotaRows : q.timedQuotaRows;
    if (q.rows + rows > quota) {
      this.opts.observer?.onReject?.(q.tenant.id, 'quota');
      refuse(429, `model '${q.tenant.id}' has ${q.rows} rows queued and a quota of ${quota}; retry later`, retryAfterS());
    }
    if (q.sloMs === null) return;
    const expectedMs = this.predict(q, rows, spentMs, est);
    if (expectedMs !== null && expectedMs > q.sloMs) {
      this.opts.observer?.onReject?.(q.tenant.id, 'slo');
      refuse(
        429,
        `model '${q.tenant.id}' cannot answer within its SLO of ${q.sloMs} ms now (${q.queue.length} requests queued, ~${expectedMs.toFixed(1)} ms predicted); retry later`,
        retryAfterS(),
      );
    }
  }

  private hasWork(): boolean {
    return this.active.size > 0;
  }

  private kick(): void {
    if (this.inFlight.length >= this.maxInFlight || this.kickPending || !this.hasWork()) return;
    // one macrotask of slack: requests that arrived in the same I/O turn join this tick
    this.kickPending = true;
    setImmediate(() => {
      this.kickPending = false;
      this.launchTick();
    });
  }

  private checkDrained(): void {
    if (!this.accepting && this.inFlight.length === 0 && !this.kickPending && !this.hasWork()) this.resolveDrained?.();
  }

  private take(q: TenantQueue): Pending[] {
    const taken: Pending[] = [];
    let rows = 0;
    while (q.queue.length > 0) {
      const p = q.queue[0]!;
      if (taken.length > 0 && (!q.batchable || rows + p.rows > q.tenant.maxBatch)) break;
      taken.push(q.queue.shift()!);
      p.detach();
      rows += p.rows;
    }
    q.rows -= rows;
    if (q.queue.length === 0) this.active.delete(q);
    return taken;
  }

  // Batches every tenant's waiting requests and hands the tick to the runner, which starts it once the
  // tick before it (if any) ends.
  private launchTick(): void {
    if (this.inFlight.length >= this.maxInFlight) return;
    const groups: TickGroup[] = [];
    let rows = 0;
    let requests = 0;
    // plan order over the active tenants only: sorting k of them beats walking all n when k << n
    const tenants = [...this.active].sort((a, b) => a.index - b.index);
    this.workDone.tenantVisits += tenants.length;
    for (const q of tenants) {
      const taken = this.take(q);
      groups.push({ q, taken });
      rows += taken.reduce((a, p) => a + p.rows, 0);
      requests += taken.length;
    }
    if (groups.length === 0) {
      this.checkDrained();
      return;
    }
    this.workDone.ticks++;
    const tick: InFlight = { seq: ++this.seq, calledAt: this.clock(), groups, requests, rows };
    this.inFlight.push(tick);
    let run: Promise<TickOutputs>;
    try {
      // every tenant's merged inputs in one buffer: one allocation per tick, not one per tenant and input
      const align8 = (n: number) => (n + 7) & ~7;
      let bytes = 0;
      for (const { q, taken } of groups)
        if (taken.length > 1) for (const io of q.tenant.inputs) bytes += align8(taken.reduce((a, p) => a + p.inputs[io.name]!.data.byteLength, 0));
      const merge = new ArrayBuffer(bytes);
      let at = 0;
      const inputs: Record<string, Record<string, Tensor>> = {};
      for (const { q, taken } of groups) {
        const merged: Record<string, Tensor> = {};
        for (const io of q.tenant.inputs) {
          const parts = taken.map((p) => p.inputs[io.name]!);
          if (parts.length === 1) merged[io.name] = parts[0]!;
          else {
            merged[io.name] = concatRows(parts, io.batchAxis ?? 0, { buffer: merge, byteOffset: at });
            at += align8(merged[io.name]!.data.byteLength);
          }
        }
        inputs[q.tenant.id] = merged;
      }
      run = this.runner.runTick(inputs);
    } catch (e) {
      run = Promise.reject(e);
    }
    run.then(
      (outputs) => this.settle(tick, outputs, null),
      (e: unknown) => this.settle(tick, null, e ?? new Error('the tick failed')),
    );
    this.kick(); // with pipelining: the rows that did not fit make the next tick now
  }

  private settle(tick: InFlight, outputs: TickOutputs | null, error: unknown): void {
    const finished = this.clock();
    const started = Math.max(tick.calledAt, this.lastSettledAt); // ticks settle in call order
    this.lastSettledAt = finished;
    this.inFlight.shift();
    const durationMs = finished - started;
    if (outputs) {
      this.durations.push(durationMs);
      if (this.durations.length > ESTIMATE_WINDOW) this.durations.shift();
      this.updateEstimate();
    }
    this.kick();
    const message = error === null ? null : error instanceof Error ? error.message : String(error);
    if (outputs) {
      if (this.lastFailure !== null && tick.seq > this.lastFailure.seq) this.lastFailure = null;
    } else {
      this.lastFailure = { seq: tick.seq, at: finished, error: message ?? 'the tick failed' };
    }
    for (const { q, taken } of tick.groups) {
      if (outputs === null) {
        const fail = new ServeError(500, `the backend failed in tick ${tick.seq}, which carried this request: ${message}`);
        for (const p of taken) this.fail(p, fail);
        continue;
      }
      this.answer(q, taken, outputs[q.tenant.id], started, finished);
    }
    this.opts.observer?.onTick?.({
      seq: tick.seq,
      durationMs,
      ok: outputs !== null,
      error: message,
      tenants: tick.groups.length,
      requests: tick.requests,
      rows: tick.rows,
      maxTenantRows: tick.groups.reduce(
        (m, g) =>
          Math.max(
            m,
            g.taken.reduce((a, p) => a + p.rows, 0),
          ),
        0,
      ),
      capacityRows: this.capacityRows,
      launches: this.runner.plan.launches.length,
    });
    this.checkDrained();
  }

  private fail(p: Pending, e: unknown): void {
    this.counts.failed++;
    p.reject(e);
  }

  private answer(q: TenantQueue, taken: readonly Pending[], outs: Record<string, Tensor> | undefined, started: number, finished: number): void {
    const pieces: Array<Record<string, Tensor>> = taken.map(() => ({}));
    try {
      for (const io of q.tenant.outputs) {
        const t = outs?.[io.name];
        if (!t) throw new ServeError(500, `the runtime returned no output '${io.name}' for model '${q.tenant.id}'`);
        const parts =
          taken.length === 1
            ? [t]
            : splitRows(
                t,
                io.batchAxis ?? 0,
                taken.map((p) => p.rows),
              );
        parts.forEach((part, i) => {
          pieces[i]![io.name] = part;
        });
      }
    } catch (e) {
      const err = isServeError(e) ? e : new ServeError(500, `cannot split the tick's outputs for model '${q.tenant.id}': ${(e as Error).message}`);
      for (const p of taken) this.fail(p, err);
      return;
    }
    taken.forEach((p, i) => {
      const totalMs = finished - p.arrivedAt;
      this.opts.observer?.onAnswered?.(q.tenant.id, { waitMs: started - p.arrivedAt, totalMs, missedSlo: q.sloMs !== null && totalMs > q.sloMs });
      if (p.signal?.aborted) this.opts.observer?.onCancel?.(q.tenant.id, 'in_tick');
      this.counts.answered++;
      p.resolve(pieces[i]!);
    });
  }
}
