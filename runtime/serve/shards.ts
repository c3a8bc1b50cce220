// Several plans behind one front end (`loom serve DIR --devices …` on a `loom compile --shards N` directory):
// one TickScheduler per shard, each with its own tick loop on its own device, and a router that presents the
// scheduler surface the HTTP and gRPC layers use, delegating every call to the shard that serves the tenant.
// A failed tick on one shard makes only that shard's tenants unready.
import type { LaunchPlan } from '../../codegen/index.js';
import type { PlannedTenant } from '../../ir/contract/plan.js';
import type { Tensor } from '../../ir/tensor.js';
import { ServeError } from './errors.js';
import { type QueueDepth, type SchedulerHealth, type SchedulerObserver, type SchedulerOptions, type SubmitOptions, TickScheduler } from './scheduler.js';
import type { TickRunner } from './scheduler.js';

// What server.ts and grpc/service.ts call on a scheduler: a TickScheduler, or a ShardRouter over several.
export interface ServeScheduler {
  readonly stats: { readonly accepted: number; readonly answered: number; readonly failed: number; readonly cancelled: number };
  tenant(id: string): PlannedTenant | undefined;
  sloMs(id: string): number | null;
  queueDepth(id: string): QueueDepth;
  health(tenant?: string): SchedulerHealth; // with a tenant: the readiness of the shard that serves it
  precheck(tenantId: string): void;
  submit(tenantId: string, inputs: Readonly<Record<string, Tensor>>, opts?: SubmitOptions): Promise<Record<string, Tensor>>;
  close(): Promise<void>;
}

// One shard: a loaded plan (LoadedPlan fits) and the device it runs on, as /metrics labels it.
export interface ServeShard {
  readonly id: number;
  readonly device: string; // e.g. 'cuda:0', 'cpu'
  readonly runner: TickRunner & { readonly backend: string; close?(): void };
}

// Per-shard hooks (shard-metrics.ts): which shard ticked.
export interface ShardObserver {
  onShardTick?(shard: ServeShard, report: Parameters<NonNullable<SchedulerObserver['onTick']>>[0]): void;
}

export class ShardRouter implements ServeScheduler {
  readonly shards: readonly ServeShard[];
  // A LaunchPlan-shaped view of the whole fleet for the front end (tenant lists, /metrics' arena and launch
  // totals): every shard's tenants and launches, arenas summed. It is never run.
  readonly plan: LaunchPlan;
  readonly backend: string;
  private readonly schedulers: readonly TickScheduler[];
  private readonly home = new Map<string, number>(); // tenant → index into shards
  private shardObserver: ShardObserver | null = null;

  constructor(shards: readonly ServeShard[], opts: SchedulerOptions = {}) {
    if (shards.length === 0) throw new RangeError('ShardRouter: no shards');
    this.shards = shards;
    shards.forEach((s, k) => {
      for (const t of s.runner.plan.tenants) {
        const other = this.home.get(t.id);
        if (other !== undefined) throw new RangeError(`ShardRouter: tenant '${t.id}' is on shard ${shards[other]!.id} and shard ${s.id}`);
        this.home.set(t.id, k);
      }
    });
    this.schedulers = shards.map(
      (s) =>
        new TickScheduler(s.runner, {
          ...opts,
          observer: {
            ...opts.observer,
            onTick: (r) => {
              opts.observer?.onTick?.(r);
              this.shardObserver?.onShardTick?.(s, r);
            },
          },
        }),
    );
    const plans = shards.map((s) => s.runner.plan);
    const sum = (k: 'weights' | 'act' | 'io' | 'actWithoutReuse') => plans.reduce((a, p) => a + p.arenas[k], 0);
    this.plan = {
      ...plans[0]!,
      tenants: plans.flatMap((p) => p.tenants),
      launches: plans.flatMap((p) => p.launches),
      arenas: { weights: sum('weights'), act: sum('act'), io: sum('io'), actWithoutReuse: sum('actWithoutReuse') },
    };
    this.backend = [...new Set(shards.map((s) => s.runner.backend))].join('+');
  }

  observeShards(o: ShardObserver): void {
    this.shardObserver = o;
  }

  // The shard serving a tenant (undefined when no shard does).
  shardOf(tenant: string): ServeShard | undefined {
    const k = this.home.get(tenant);
    return k === undefined ? undefined : this.shards[k];
  }

  schedulerOf(shardIndex: number): TickScheduler {
    return this.schedulers[shardIndex]!;
  }

  private of(tenant: string): TickScheduler | undefined {
    const k = this.home.get(tenant);
    return k === undefined ? undefined : this.schedulers[k];
  }

  get stats() {
    const all = this.schedulers.map((s) => s.stats);
    return {
      accepted: all.reduce((a, s) => a + s.accepted, 0),
      answered: all.reduce((a, s) => a + s.answered, 0),
      failed: all.reduce((a, s) => a + s.failed, 0),
      cancelled: all.reduce((a, s) => a + s.cancelled, 0),
    };
  }

  tenant(id: string): PlannedTenant | undefined {
    return this.of(id)?.tenant(id);
  }

  sloMs(id: string): number | null {
    return this.of(id)?.sloMs(id) ?? null;
  }

  queueDepth(id: string): QueueDepth {
    return this.of(id)?.queueDepth(id) ?? { requests: 0, rows: 0 };
  }

  // Without a tenant: ready while every shard is (the process-wide /v2/health/ready); the first unready
  // shard's failure is reported.
  health(tenant?: string): SchedulerHealth {
    if (tenant !== undefined) return this.of(tenant)?.health() ?? { ready: true, failedTick: null, error: null };
    for (const [k, s] of this.schedulers.entries()) {
      const h = s.health();
      if (!h.ready) return { ...h, error: `shard ${this.shards[k]!.id} (${this.shards[k]!.device}): ${h.error}` };
    }
    return { ready: true, failedTick: null, error: null };
  }

  precheck(tenantId: string): void {
    this.of(tenantId)?.precheck(tenantId); // an unknown model is named by submit
  }

  submit(tenantId: string, inputs: Readonly<Record<string, Tensor>>, opts: SubmitOptions = {}): Promise<Record<string, Tensor>> {
    const s = this.of(tenantId);
    if (s === undefined)
      return Promise.reject(new ServeError(404, `unknown model '${tenantId}' (this server has: ${this.plan.tenants.map((t) => t.id).join(', ')})`));
    return s.submit(tenantId, inputs, opts);
  }

  close(): Promise<void> {
    return Promise.all(this.schedulers.map((s) => s.close())).then(() => undefined);
  }

  // After close(): every shard's plan released.
  closeRunners(): void {
    for (const s of this.shards) s.runner.close?.();
  }
}
