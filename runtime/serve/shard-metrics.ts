// /metrics for a sharded server (shards.ts): per shard and device, its ticks, readiness, queued requests and
// arena bytes, and which shard serves each tenant. The per-tenant and fleet-wide families (metrics.ts) stay
// as they are; `loom_shard_tenant_info` joins a tenant's series to its shard and device in PromQL.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { TickReport } from './scheduler.js';
import type { ServeShard, ShardObserver, ShardRouter } from './shards.js';

const TICK_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class ShardMetrics implements ShardObserver {
  private readonly ticks: Counter<'shard' | 'device' | 'result'>;
  private readonly tickDuration: Histogram<'shard' | 'device'>;
  private readonly tickRows: Counter<'shard' | 'device'>;

  constructor(router: ShardRouter, registry: Registry) {
    const registers = [registry];
    const labels = (s: ServeShard) => ({ shard: String(s.id), device: s.device });
    this.ticks = new Counter({
      name: 'loom_shard_ticks_total',
      help: 'Ticks run by each shard (one tick loop per shard and device), by result (ok, error)',
      labelNames: ['shard', 'device', 'result'],
      registers,
    });
    this.tickDuration = new Histogram({
      name: 'loom_shard_tick_duration_seconds',
      help: "Duration of one tick of a shard (its tenants' batched rows through its plan)",
      labelNames: ['shard', 'device'],
      buckets: TICK_BUCKETS,
      registers,
    });
    this.tickRows = new Counter({
      name: 'loom_shard_tick_rows_total',
      help: 'Live rows carried by the ticks of a shard',
      labelNames: ['shard', 'device'],
      registers,
    });
    new Gauge({
      name: 'loom_shard_ready',
      help: '1 while a shard is ready (no failed tick it has not recovered from), else 0',
      labelNames: ['shard', 'device'],
      registers,
      collect() {
        for (const s of router.shards) this.set(labels(s), router.health(s.runner.plan.tenants[0]!.id).ready ? 1 : 0);
      },
    });
    new Gauge({
      name: 'loom_shard_queue_depth',
      help: "Requests waiting in a shard's tenant queues",
      labelNames: ['shard', 'device'],
      registers,
      collect() {
        for (const s of router.shards)
          this.set(
            labels(s),
            s.runner.plan.tenants.reduce((a, t) => a + router.queueDepth(t.id).requests, 0),
          );
      },
    });
    const arena = new Gauge({
      name: 'loom_shard_plan_arena_bytes',
      help: "Bytes a shard's plan holds on its device, by arena",
      labelNames: ['shard', 'device', 'backend', 'arena'],
      registers,
    });
    const info = new Gauge({
      name: 'loom_shard_tenant_info',
      help: 'The shard and device that serve each tenant (always 1)',
      labelNames: ['tenant', 'shard', 'device'],
      registers,
    });
    for (const s of router.shards) {
      for (const name of ['weights', 'act', 'io'] as const) arena.set({ ...labels(s), backend: s.runner.backend, arena: name }, s.runner.plan.arenas[name]);
      for (const t of s.runner.plan.tenants) info.set({ tenant: t.id, ...labels(s) }, 1);
    }
  }

  onShardTick(s: ServeShard, r: TickReport): void {
    const l = { shard: String(s.id), device: s.device };
    this.ticks.inc({ ...l, result: r.ok ? 'ok' : 'error' });
    this.tickDuration.observe(l, r.durationMs / 1000);
    this.tickRows.inc(l, r.rows);
  }
}
