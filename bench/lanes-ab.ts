// The tick as a DAG, measured: each plan's device tick with its lanes (LOOM_CUDA_LANES=auto) against the same
// plan, same process, run in plan order on one stream (LOOM_CUDA_LANES=off), in alternating rounds so drift
// falls on both. Also prints what the planner predicted (the serial sum and the lanes' critical path).
//   usage: node --import tsx bench/lanes-ab.ts [--iters 300] [--rounds 3] [--fleets mixed,mlp-b1,...]
//          [--work DIR] [--demo DIR] [PLAN_DIR ...]
//   --fleets: fleet-table fleets (bench/fleet-table/specs.ts), compiled under --work; --demo DIR: the
//   `loom demo` fleet compiled into DIR. Writes <date>-<card>-lanes-ab.json under bench/results (and $OUT).
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type LoadedPlan, loadPlan, withBackendEnv } from '../runtime/index.js';
import { compileFleet } from '../src/fleet/compile.js';
import { demoFleet, writeDemoFleet } from '../src/fleet/demo.js';
import { alignTable, quantile, resultFile } from './common.js';
import { prepareFleet } from './fleet-table/prepare.js';
import { fleetByName } from './fleet-table/specs.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    iters: { type: 'string', default: '300' },
    rounds: { type: 'string', default: '3' },
    fleets: { type: 'string', default: '' },
    work: { type: 'string', default: path.join(os.tmpdir(), 'loom-fleet-table') },
    demo: { type: 'string' },
  },
});
const ITERS = Number(values.iters);
const ROUNDS = Number(values.rounds);

function loadWith(dir: string, lanes: 'auto' | 'off'): Promise<LoadedPlan> {
  return withBackendEnv({ LOOM_CUDA_LANES: lanes }, () => loadPlan(dir, { backend: 'cuda' }));
}

interface Row {
  plan: string;
  tenants: number;
  launches: number;
  lanes: number;
  crossLaneWaits: number;
  predictedSerialUs: number;
  predictedCriticalPathUs: number | null;
  deviceSerialUs: number;
  deviceLanesUs: number;
  speedup: number;
  oneLanePlanUs: number | null; // the fleet planned with --lanes 1
  oneLanePlanLaunches: number | null;
}

// Each fleet twice: planned with lanes (the default) and with one lane (--lanes 1: grouped GEMMs where the cost
// model says they pay on one stream), so the table shows the DAG against the plan as it was before it.
const plans: Array<{ name: string; dir: string; oneLane: string | null }> = positionals.map((d) => ({
  name: path.basename(path.dirname(path.resolve(d))),
  dir: d,
  oneLane: null,
}));
async function withOneLane(name: string, manifest: string, planDir: string): Promise<void> {
  const one = `${planDir}-1lane`;
  if (!existsSync(path.join(one, 'plan.json'))) await compileFleet(manifest, one, { maxLanes: 1 });
  plans.push({ name, dir: planDir, oneLane: one });
}
if (values.demo) {
  const planDir = path.join(values.demo, 'plan');
  const manifest = writeDemoFleet(values.demo, demoFleet(false));
  if (!existsSync(path.join(planDir, 'plan.json'))) await compileFleet(manifest, planDir, {});
  await withOneLane('demo', manifest, planDir);
}
for (const name of values.fleets.split(',').filter(Boolean)) {
  const f = await prepareFleet(fleetByName(name), { work: values.work, precision: 'fp32', nvcc: 'auto', log: (m) => process.stderr.write(`${m}\n`) });
  await withOneLane(name, path.join(f.dir, 'manifest.json'), f.planDir);
}
if (plans.length === 0) {
  process.stderr.write('lanes-ab: no plans (give plan dirs, --demo DIR or --fleets NAMES)\n');
  process.exit(2);
}

const rows: Row[] = [];
let card = 'unknown';
for (const p of plans) {
  const serial = await loadWith(p.dir, 'off');
  const laned = await loadWith(p.dir, 'auto');
  const single = p.oneLane ? await loadWith(p.oneLane, 'auto') : null;
  try {
    card = String(laned.backendInfo().device ?? card);
    const s: number[] = [];
    const l: number[] = [];
    const o: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      s.push(...serial.benchTick(ITERS).deviceUs);
      l.push(...laned.benchTick(ITERS).deviceUs);
      if (single) o.push(...single.benchTick(ITERS).deviceUs);
    }
    const info = laned.backendInfo();
    const row: Row = {
      plan: p.name,
      tenants: laned.plan.tenants.length,
      launches: laned.plan.launches.length,
      lanes: Number(info.lanes),
      crossLaneWaits: Number(info.crossLaneWaits),
      predictedSerialUs: laned.plan.cost.predictedTickUs,
      predictedCriticalPathUs: laned.plan.cost.criticalPathUs ?? null,
      deviceSerialUs: quantile(s, 0.5),
      deviceLanesUs: quantile(l, 0.5),
      speedup: quantile(s, 0.5) / quantile(l, 0.5),
      oneLanePlanUs: single ? quantile(o, 0.5) : null,
      oneLanePlanLaunches: single ? single.plan.launches.length : null,
    };
    rows.push(row);
    process.stderr.write(`${p.name}: ${JSON.stringify(row)}\n`);
  } finally {
    serial.close();
    laned.close();
    single?.close();
  }
}

const f = (x: number | null): string => (x === null ? '-' : x.toFixed(1));
process.stdout.write(`lanes A/B on ${card}, ${new Date().toISOString().slice(0, 10)}: device tick p50 (CUDA events), ${ROUNDS} x ${ITERS} replays each\n`);
const table = alignTable(
  ['plan', 'tenants', 'launches', 'lanes', 'waits', 'pred. serial us', 'pred. lanes us', '--lanes 1 plan us', 'one stream us', 'lanes us', 'vs --lanes 1'],
  rows.map((r) => [
    r.plan,
    String(r.tenants),
    String(r.launches),
    String(r.lanes),
    String(r.crossLaneWaits),
    f(r.predictedSerialUs),
    f(r.predictedCriticalPathUs),
    r.oneLanePlanUs === null ? '-' : `${f(r.oneLanePlanUs)} (${r.oneLanePlanLaunches} launches)`,
    f(r.deviceSerialUs),
    f(r.deviceLanesUs),
    r.oneLanePlanUs === null ? '-' : `${(r.oneLanePlanUs / r.deviceLanesUs).toFixed(2)}x`,
  ]),
  1,
);
process.stdout.write(`${table.join('\n')}\n`);
const resultsDir = path.resolve(import.meta.dirname, 'results');
mkdirSync(resultsDir, { recursive: true });
const out = resultFile(resultsDir, card, 'lanes-ab', 'json');
writeFileSync(out, `${JSON.stringify({ card, date: new Date().toISOString(), iters: ITERS, rounds: ROUNDS, rows }, null, 2)}\n`);
if (process.env.OUT) copyFileSync(out, path.join(process.env.OUT, path.basename(out)));
