// Hot plan swap (`loom serve` on SIGHUP, or POST /v2/repository/reload): a PlanSwitch is the scheduler the
// HTTP and gRPC layers call, delegating to the scheduler of the plan serving now (a TickScheduler, or a
// ShardRouter over a shard set). A reload loads the new plan beside the old one, then switches in one
// synchronous step: from then on every new request goes to the new plan, while the old scheduler stops
// accepting and answers what it already accepted on the old plan (so an answer always comes from the plan that
// admitted it). The new plan's first tick waits until the old plan's last tick has ended (`gate`), so the
// two plans never tick at once: the switch happens at a tick boundary. Once drained, the old plan is freed
// (its runners closed). A plan that fails to load, or to build, leaves the old one serving; the failure is
// the reload's report.
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { LaunchPlan } from '../../codegen/index.js';
import { MAX_PLAN_JSON_BYTES } from '../../codegen/read.js';
import { PLAN_FILE } from '../../ir/contract/launch-plan.js';
import { readRegularFile } from '../../ir/files.js';
import type { PlannedTenant } from '../../ir/contract/plan.js';
import type { Tensor } from '../../ir/tensor.js';
import { type RemovedModel, ServeError, notServedMessage } from './errors.js';
import { MODEL_VERSION } from './oip.js';
import { type QueueDepth, type SchedulerHealth, type SubmitOptions, TickScheduler } from './scheduler.js';
import { type ServeScheduler, ShardRouter } from './shards.js';

// One loaded plan (or shard set) and the scheduler over it.
export interface PlanGeneration {
  readonly generation: number; // 1 for the plan loaded at start, +1 per successful reload
  readonly scheduler: ServeScheduler;
  readonly plan: LaunchPlan; // the front end's view (a ShardRouter's merged plan over shards)
  readonly backend: string;
  readonly source: string; // where it was loaded from (the real path behind a symbolic link), for logs and the report
  readonly sha: string; // sha256 of plan.json (which holds weights.bin's sha256s): which plan this is
  closeRunners(): void; // frees the plan(s): called once the scheduler has drained
}

// What a reload hands over: the loaded plan, not yet scheduled (build() turns it into a generation).
export interface LoadedServe<T> {
  readonly value: T;
  readonly source: string;
  readonly sha: string;
  close(): void; // frees it when it is not switched to (build failed, or the server is shutting down)
}

export interface ReloadReport {
  readonly ok: boolean;
  readonly generation: number; // the generation serving when the report was made
  readonly source: string | null; // what the reload read (null: it did not get that far)
  readonly sha: string | null;
  readonly error: string | null; // why it failed; the old plan keeps serving
  // what failed: busy (another reload runs), closing (shutting down), load (reading or loading the new
  // plan), schedule (building its scheduler); null when it switched
  readonly failure: 'busy' | 'closing' | 'load' | 'schedule' | null;
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly kept: number;
  readonly loadMs: number; // reading and loading the new plan, beside the old one
  readonly drainMs: number; // switch → the old plan's last accepted request answered and the plan freed
}

export interface SwapObserver {
  onSwitch?(next: PlanGeneration, prev: PlanGeneration, report: { added: readonly string[]; removed: readonly string[] }): void;
  onFreed?(prev: PlanGeneration, drainMs: number): void;
  onReloadFailed?(report: ReloadReport): void;
  onFreeFailed?(prev: PlanGeneration, error: unknown): void;
}

// KServe's repository extension: one entry of POST /v2/repository/index.
export interface RepositoryEntry {
  readonly name: string;
  readonly version: string;
  readonly state: 'READY' | 'UNAVAILABLE';
  readonly reason: string;
}

// Which plan a directory holds: the sha256 of its plan.json (which carries weights.bin's sha256, so new
// weights alone give a new sha).
export function planSha(dir: string): string {
  const bytes = readRegularFile(path.join(dir, PLAN_FILE), { what: 'plan file', maxBytes: MAX_PLAN_JSON_BYTES, code: 'PLAN_INVALID' });
  return createHash('sha256').update(bytes).digest('hex');
}

type Stats = { accepted: number; answered: number; failed: number; cancelled: number };

// A runner whose ticks wait for `until` (the previous plan's drain) before they reach the plan; calls keep
// their order (each goes through `until.then`, registered in call order).
export function gateRunner<R extends { runTick(i: never): Promise<unknown> }>(runner: R, until: Promise<void>): R {
  const runTick = (inputs: never) => until.then(() => runner.runTick(inputs));
  return new Proxy(runner, {
    get: (t, k) => {
      if (k === 'runTick') return runTick;
      const v: unknown = Reflect.get(t, k, t);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
}

// The tenants with queued work in one scheduler (never all tenants): what /metrics reads at a scrape.
function* queuedIn(s: ServeScheduler): Iterable<[string, QueueDepth]> {
  if (s instanceof TickScheduler) yield* s.queued();
  else if (s instanceof ShardRouter) for (let k = 0; k < s.shards.length; k++) yield* s.schedulerOf(k).queued();
}

const sub = (a: readonly string[], b: ReadonlySet<string>) => a.filter((x) => !b.has(x));
const idsOf = (p: LaunchPlan) => p.tenants.map((t) => t.id);

export class PlanSwitch<T = unknown> implements ServeScheduler {
  private gen: PlanGeneration;
  private readonly retiring = new Map<PlanGeneration, Promise<void>>(); // switched away from, still answering
  private readonly retiredStats: Stats = { accepted: 0, answered: 0, failed: 0, cancelled: 0 };
  private readonly removedAt = new Map<string, RemovedModel>(); // for the index and 404s
  private reloading: { since: number; done: Promise<ReloadReport> } | null = null;
  private closing = false;

  constructor(
    first: PlanGeneration,
    // Schedules a loaded plan as generation `generation`; its runners must wait for `gate` (gateRunner).
    private readonly build: (loaded: LoadedServe<T>, generation: number, gate: Promise<void>) => PlanGeneration,
    private readonly observer: SwapObserver = {},
  ) {
    this.gen = first;
  }

  get current(): PlanGeneration {
    return this.gen;
  }

  get plan(): LaunchPlan {
    return this.gen.plan;
  }

  // Plans switched away from that are still answering their accepted requests.
  get retiringCount(): number {
    return this.retiring.size;
  }

  get reloadInProgress(): boolean {
    return this.reloading !== null;
  }

  get stats() {
    const out = { ...this.retiredStats };
    for (const g of [this.gen, ...this.retiring.keys()]) {
      const s = g.scheduler.stats;
      out.accepted += s.accepted;
      out.answered += s.answered;
      out.failed += s.failed;
      out.cancelled += s.cancelled;
    }
    return out;
  }

  tenant(id: string): PlannedTenant | undefined {
    return this.gen.scheduler.tenant(id);
  }

  sloMs(id: string): number | null {
    return this.gen.scheduler.sloMs(id);
  }

  // Over every plan still holding requests: during a drain a kept tenant has some in both.
  queueDepth(id: string): QueueDepth {
    let { requests, rows } = this.gen.scheduler.queueDepth(id);
    for (const g of this.retiring.keys()) {
      const d = g.scheduler.queueDepth(id);
      requests += d.requests;
      rows += d.rows;
    }
    return { requests, rows };
  }

  *queued(): IterableIterator<[string, QueueDepth]> {
    if (this.retiring.size === 0) return yield* queuedIn(this.gen.scheduler);
    const all = new Map<string, QueueDepth>();
    for (const g of [this.gen, ...this.retiring.keys()])
      for (const [t, d] of queuedIn(g.scheduler)) {
        const had = all.get(t);
        all.set(t, had ? { requests: had.requests + d.requests, rows: had.rows + d.rows } : d);
      }
    yield* all.entries();
  }

  health(tenant?: string): SchedulerHealth {
    return this.gen.scheduler.health(tenant);
  }

  precheck(tenantId: string): void {
    this.gen.scheduler.precheck(tenantId);
  }

  submit(tenantId: string, inputs: Readonly<Record<string, Tensor>>, opts?: SubmitOptions): Promise<Record<string, Tensor>> {
    const s = this.gen.scheduler;
    // a model an intake worker still knew when it decoded the request (its tables are updated just after a
    // switch): the same 404 as the routes give, saying when a reload removed it
    if (s.tenant(tenantId) === undefined && this.removedAt.has(tenantId)) return Promise.reject(new ServeError(404, this.unknownModel(tenantId)));
    return s.submit(tenantId, inputs, opts);
  }

  // The 404 for a model this server does not serve now, saying when a reload removed it.
  unknownModel(name: string): string {
    return notServedMessage(name, idsOf(this.gen.plan), this.removedAt.get(name));
  }

  // The models earlier reloads removed (and not added back since): what intake workers' 404s say (pool.ts).
  get removed(): ReadonlyMap<string, RemovedModel> {
    return this.removedAt;
  }

  // POST /v2/repository/index: the tenants served now (READY, or UNAVAILABLE while their plan or shard is
  // unready), then those an earlier reload removed (UNAVAILABLE, saying when).
  index(serving: boolean, readyOnly = false): RepositoryEntry[] {
    const out: RepositoryEntry[] = [];
    const whole = this.gen.scheduler.health();
    for (const t of this.gen.plan.tenants) {
      const h = serving ? (whole.ready ? this.gen.scheduler.health(t.id) : whole) : null;
      const reason = h === null ? 'the server is shutting down' : h.ready ? '' : `a tick failed: ${h.error ?? 'unknown error'}`;
      out.push({ name: t.id, version: MODEL_VERSION, state: reason === '' ? 'READY' : 'UNAVAILABLE', reason });
    }
    if (readyOnly) return out.filter((e) => e.state === 'READY');
    for (const [name, r] of this.removedAt)
      out.push({ name, version: MODEL_VERSION, state: 'UNAVAILABLE', reason: `removed by the plan reload of ${r.at} (generation ${r.generation})` });
    return out;
  }

  // Loads a new plan with `load` beside the serving one and switches to it; resolves once the old plan has
  // answered its accepted requests and is freed (or with ok false, the old plan still serving). One reload
  // at a time: another while one runs resolves at once with ok false.
  reload(load: () => Promise<LoadedServe<T>>): Promise<ReloadReport> {
    const started = performance.now();
    const failed = (failure: ReloadReport['failure'], error: string, source: string | null = null, sha: string | null = null, loadMs = 0): ReloadReport => {
      const r: ReloadReport = {
        ok: false,
        generation: this.gen.generation,
        source,
        sha,
        error,
        failure,
        added: [],
        removed: [],
        kept: 0,
        loadMs,
        drainMs: 0,
      };
      this.observer.onReloadFailed?.(r);
      return r;
    };
    if (this.closing) return Promise.resolve(failed('closing', 'the server is shutting down; no reload'));
    if (this.reloading) {
      const s = ((started - this.reloading.since) / 1000).toFixed(1);
      return Promise.resolve(failed('busy', `a reload is already running (started ${s} s ago); this one was not started`));
    }
    const done = (async (): Promise<ReloadReport> => {
      let loaded: LoadedServe<T>;
      try {
        loaded = await load();
      } catch (e) {
        return failed('load', `the new plan did not load: ${e instanceof Error ? e.message : String(e)}`, null, null, performance.now() - started);
      }
      const loadMs = performance.now() - started;
      if (this.closing) {
        loaded.close();
        return failed('closing', 'the server began shutting down while the new plan loaded; it was freed unused', loaded.source, loaded.sha, loadMs);
      }
      const prev = this.gen;
      let release!: () => void;
      const gate = new Promise<void>((r) => {
        release = r;
      });
      let next: PlanGeneration;
      try {
        next = this.build(loaded, prev.generation + 1, gate);
      } catch (e) {
        loaded.close();
        return failed('schedule', `the new plan could not be scheduled: ${e instanceof Error ? e.message : String(e)}`, loaded.source, loaded.sha, loadMs);
      }
      // the switch: one synchronous step, no request in between sees a half-switched server
      const before = new Set(idsOf(prev.plan));
      const after = new Set(idsOf(next.plan));
      const added = sub(idsOf(next.plan), before);
      const removed = sub(idsOf(prev.plan), after);
      this.gen = next;
      const at = new Date().toISOString();
      for (const id of removed) this.removedAt.set(id, { generation: next.generation, at });
      for (const id of after) this.removedAt.delete(id);
      const switchedAt = performance.now();
      this.observer.onSwitch?.(next, prev, { added, removed });
      await this.retire(prev, release);
      const drainMs = performance.now() - switchedAt;
      this.observer.onFreed?.(prev, drainMs);
      return {
        ok: true,
        generation: next.generation,
        source: next.source,
        sha: next.sha,
        error: null,
        failure: null,
        added,
        removed,
        kept: after.size - added.length,
        loadMs,
        drainMs,
      };
    })();
    this.reloading = { since: started, done };
    return done.finally(() => {
      this.reloading = null;
    });
  }

  // The old plan stops accepting, answers what it accepted, then its plan is freed and the next plan's
  // ticks may start.
  private retire(prev: PlanGeneration, release: () => void): Promise<void> {
    const drained = prev.scheduler
      .close()
      .finally(release)
      .then(() => {
        this.retiring.delete(prev);
        const s = prev.scheduler.stats;
        this.retiredStats.accepted += s.accepted;
        this.retiredStats.answered += s.answered;
        this.retiredStats.failed += s.failed;
        this.retiredStats.cancelled += s.cancelled;
        try {
          prev.closeRunners();
        } catch (e) {
          this.observer.onFreeFailed?.(prev, e); // the switch stands; the old plan may still hold its memory
        }
      });
    this.retiring.set(prev, drained);
    return drained;
  }

  // Stops accepting; resolves once every accepted request of every plan was answered (a reload loading
  // now is abandoned: its plan freed unused).
  async close(): Promise<void> {
    this.closing = true;
    const serving = this.gen.scheduler.close(); // no new requests from here, even while a reload loads
    await this.reloading?.done;
    await Promise.all([serving, this.gen.scheduler.close(), ...this.retiring.values()]);
  }

  // After close(): the serving plan freed (retired ones were freed by their drain).
  closeRunners(): void {
    this.gen.closeRunners();
  }
}
