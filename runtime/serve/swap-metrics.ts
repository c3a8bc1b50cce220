// /metrics for hot plan swaps (swap.ts): reloads by result, the generation serving, which plan it is (the
// sha256 of its plan.json) and plans still answering the requests they accepted before a switch.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { PlanGeneration, PlanSwitch } from './swap.js';

export class SwapMetrics {
  private readonly reloads: Counter<'result'>;
  private readonly last: Gauge<'result'>;
  private readonly generation: Gauge;
  private readonly source: Gauge<'generation' | 'sha'>;

  constructor(plans: Pick<PlanSwitch, 'retiringCount' | 'current'>, registry: Registry) {
    const registers = [registry];
    this.reloads = new Counter({
      name: 'loom_plan_reloads_total',
      help: 'Plan reloads (SIGHUP or POST /v2/repository/reload), by result: ok (switched), error (the old plan kept serving; the log says why)',
      labelNames: ['result'],
      registers,
    });
    this.last = new Gauge({
      name: 'loom_plan_last_reload_timestamp_seconds',
      help: 'When the last reload of each result ended (Unix time)',
      labelNames: ['result'],
      registers,
    });
    this.generation = new Gauge({ name: 'loom_plan_generation', help: 'The plan generation serving: 1 at start, +1 per successful reload', registers });
    this.source = new Gauge({
      name: 'loom_plan_source_info',
      help: 'The plan serving: its generation and the sha256 of its plan.json (which holds the sha256 of weights.bin); always 1',
      labelNames: ['generation', 'sha'],
      registers,
    });
    new Gauge({
      name: 'loom_plan_retiring',
      help: 'Plans switched away from by a reload that are still answering the requests they accepted (freed when done)',
      registers,
      collect() {
        this.set(plans.retiringCount);
      },
    });
    this.serving(plans.current);
  }

  serving(g: PlanGeneration): void {
    this.generation.set(g.generation);
    this.source.reset();
    this.source.set({ generation: String(g.generation), sha: g.sha }, 1);
  }

  onReload(ok: boolean): void {
    const result = ok ? 'ok' : 'error';
    this.reloads.inc({ result });
    this.last.set({ result }, Date.now() / 1000);
  }
}
