// The cost model against the device, fleet by fleet (issue 13 item 2's target: the predicted tick within
// ±25% of the measured one on every bench fleet). For each fleet: write its zoo models, compile with the
// device profile (or the default roofline without --profile), load the plan, measure the tick (CUDA: device
// time of the captured tick, CUDA events; CPU: wall clock) and every launch (LoadedPlan.profileTick), and
// print predicted vs measured per fleet, then per launch kind over all fleets.
//
//   usage: node --import tsx bench/cost-model.ts [--profile profiles/<card>.json | <card> | auto] [--fleets demo,mlp-b1,...]
//          [--backend auto|cpu|cuda] [--branching never|auto] [--tolerance 25] [--iters 100] [--tenants-scale 1]
//          [--work DIR] [--nvcc auto|off] [--measured SPACE_TIME.json] [--out bench/results]
//   Fleets: demo (loom demo's 16 tenants) and the fleet table's (bench/fleet-table/specs.ts). Writes
//   <out>/<date>-<device>-cost-model.json. Exit code 0 whether or not the target is met (the table says).
//   --measured: no device needed — the measured tick of each fleet is its space-time device p50 in a result of
//   bench/space-time.ts (plan it with that run's --branching), and no launch is timed one by one.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readPlanDir } from '../codegen/index.js';
import type { Plan } from '../ir/contract/plan.js';
import { fail } from '../ir/errors.js';
import { writeZooModel } from '../models/index.js';
import { type LoadedPlan, clockOf, loadPlan } from '../runtime/index.js';
import { costModelFromProfile, readProfile } from '../src/calibrate/profile.js';
import { chooseProfile } from '../src/calibrate/shipped.js';
import { hostGpuName } from '../src/cli/host-branching.js';
import { compileFleet } from '../src/fleet/compile.js';
import { demoFleet, writeDemoFleet } from '../src/fleet/demo.js';
import { fmtUs } from '../src/fleet/summary.js';
import { benchInputs } from '../src/measure/run.js';
import { type PredictionCheck, checkPredictions, errorPct, gemmPathsOf, profileLaunchTimes } from '../src/measure/predicted.js';
import { type Branching, type CostModel, branchingFrom } from '../src/planner/index.js';
import { median, resultFile, runIfMain } from './common.js';
import { FLEETS, fleetByName, fleetTenants, scaleFleet } from './fleet-table/specs.js';

export const COST_MODEL_FLEETS = ['demo', ...Object.keys(FLEETS)] as const;

export interface CostModelRow {
  readonly fleet: string;
  readonly tenants: number;
  readonly launches: number;
  readonly predictedUs: number;
  readonly measuredUs: number;
  readonly errorPct: number;
  readonly within: boolean;
  readonly check: PredictionCheck;
}

export interface CostModelOptions {
  readonly fleets: readonly string[];
  readonly profile?: string;
  readonly backend: 'auto' | 'cpu' | 'cuda';
  readonly tolerancePct: number;
  readonly iters: number;
  readonly tenantsScale: number;
  readonly work: string;
  readonly nvcc: 'auto' | 'off';
  readonly branching?: Branching;
  // recorded device ticks (bench/space-time.ts's JSON): fleet → its space-time device p50, instead of a device
  readonly measured?: { readonly device: string; readonly file: string; readonly ticks: ReadonlyMap<string, number> };
  readonly log?: (msg: string) => void;
}

// The space-time device p50 of every measured fleet in a bench/space-time.ts result file.
export function readMeasuredTicks(file: string): NonNullable<CostModelOptions['measured']> {
  let doc: { device?: string; entries?: { status: string; row?: { fleet: string; modes: Record<string, { deviceP50Us?: number }> } }[] };
  try {
    doc = JSON.parse(readFileSync(file, 'utf8')) as typeof doc;
  } catch (e) {
    fail('IO', `--measured: cannot read '${file}': ${(e as Error).message}`);
  }
  const ticks = new Map<string, number>();
  for (const e of doc.entries ?? []) {
    const us = e.row?.modes['space-time']?.deviceP50Us;
    if (e.status === 'measured' && e.row && typeof us === 'number' && us > 0) ticks.set(e.row.fleet, us);
  }
  if (ticks.size === 0) fail('USAGE', `--measured: '${file}' has no measured space-time fleet (is it a bench/space-time.ts result?)`);
  return { device: doc.device ?? 'recorded device', file, ticks };
}

// Writes the fleet's models and manifest under `dir`; returns the manifest.
export function writeFleet(name: string, dir: string, tenantsScale: number): string {
  if (name === 'demo') return writeDemoFleet(dir, demoFleet(false));
  const spec = scaleFleet(fleetByName(name), tenantsScale);
  const entries = fleetTenants(spec);
  mkdirSync(path.join(dir, 'models'), { recursive: true });
  for (const e of entries) writeZooModel(e.group.kind, { ...e.group.options, seed: e.seed } as never, path.join(dir, 'models', `${e.id}.onnx`));
  const manifest = path.join(dir, 'fleet.json');
  writeFileSync(
    manifest,
    `${JSON.stringify({ tenants: entries.map((e) => ({ id: e.id, model: `models/${e.id}.onnx`, maxBatch: e.group.batch })), precision: 'fp32' }, null, 1)}\n`,
  );
  return manifest;
}

export async function measureFleet(loaded: LoadedPlan, iters: number): Promise<{ measuredUs: number; measured: string }> {
  const inputs = benchInputs(loaded.plan);
  for (let i = 0; i < 5; i++) await loaded.runTick(inputs);
  if (loaded.backend === 'cuda') return { measuredUs: median(loaded.benchTick(iters).deviceUs), measured: 'device p50, captured tick' };
  const wall: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    await loaded.runTick(inputs);
    wall.push((performance.now() - t0) * 1e3);
  }
  return { measuredUs: median(wall), measured: 'wall p50' };
}

export async function runCostModel(o: CostModelOptions): Promise<{ rows: CostModelRow[]; device: string; costModel: string }> {
  const log = o.log ?? (() => {});
  const profileFile = o.profile !== undefined ? chooseProfile(o.profile, hostGpuName).file : null;
  const costModel: CostModel | undefined = profileFile !== null ? costModelFromProfile(readProfile(profileFile)) : undefined;
  const rows: CostModelRow[] = [];
  let device = '';
  for (const name of o.fleets)
    if (o.measured && !o.measured.ticks.has(name)) fail('USAGE', `--measured: '${o.measured.file}' has no space-time tick of fleet '${name}'`);
  for (const name of o.fleets) {
    const dir = path.join(o.work, name);
    rmSync(dir, { recursive: true, force: true });
    log(`${name}: writing the models`);
    const manifest = writeFleet(name, dir, o.tenantsScale);
    log(`${name}: compiling${costModel ? ' with the profile' : ' with the default roofline'}`);
    const planDir = path.join(dir, 'plan');
    await compileFleet(manifest, planDir, {
      nvcc: o.measured ? 'off' : o.nvcc,
      ...(costModel ? { costModel } : {}),
      ...(o.branching ? { branching: o.branching } : {}),
    });
    if (o.measured) {
      const measuredUs = o.measured.ticks.get(name)!; // checked before any fleet was compiled
      device ||= o.measured.device;
      const plan = readPlanDir(planDir);
      const tick = { measuredUs, measured: `device p50 recorded in ${path.basename(o.measured.file)}` };
      rows.push(rowOf(name, plan, { ...checkPredictions(plan, null, tick, 'cuda'), launchTiming: 'not timed (--measured)' }, o.tolerancePct));
      continue;
    }
    const loaded = await loadPlan(planDir, { backend: o.backend });
    try {
      device ||= loaded.backend === 'cuda' ? String(loaded.backendInfo().device ?? 'CUDA device') : (os.cpus()[0]?.model ?? 'CPU');
      log(`${name}: measuring ${loaded.plan.launches.length} launches on ${loaded.backend}`);
      const tick = await measureFleet(loaded, o.iters);
      const check = checkPredictions(loaded.plan, profileLaunchTimes(loaded), tick, clockOf(loaded.backend), gemmPathsOf(loaded.backendInfo()));
      const err = check.tick.errorPct;
      rows.push(rowOf(name, loaded.plan, check, o.tolerancePct));
      log(`${name}: predicted ${fmtUs(check.tick.predictedUs)}, measured ${fmtUs(check.tick.measuredUs)} (${err >= 0 ? '+' : ''}${err.toFixed(1)}%)`);
    } finally {
      loaded.close();
    }
  }
  return { rows, device, costModel: costModel?.device ?? 'the default roofline (no --profile)' };
}

// A fleet's row: its predicted tick against the measured one (check.tick), within the tolerance or not.
function rowOf(fleet: string, plan: Pick<Plan, 'tenants' | 'launches'>, check: PredictionCheck, tolerancePct: number): CostModelRow {
  const { predictedUs, measuredUs, errorPct: err } = check.tick;
  return {
    fleet,
    tenants: plan.tenants.length,
    launches: plan.launches.length,
    predictedUs,
    measuredUs,
    errorPct: err,
    within: Math.abs(err) <= tolerancePct,
    check,
  };
}

export function formatCostModel(r: { rows: readonly CostModelRow[]; device: string; costModel: string }, tolerancePct: number): string {
  const pct = (e: number) => `${e >= 0 ? '+' : ''}${e.toFixed(1)}%`;
  const header = ['fleet', 'tenants', 'launches', 'predicted tick', 'measured tick', 'error', `within ±${tolerancePct}%`];
  const body = r.rows.map((x) => [
    x.fleet,
    String(x.tenants),
    String(x.launches),
    fmtUs(x.predictedUs),
    fmtUs(x.measuredUs),
    pct(x.errorPct),
    x.within ? 'yes' : 'NO',
  ]);
  // per launch kind over every fleet: where the model is off
  const kinds = new Map<string, { n: number; p: number; m: number }>();
  for (const x of r.rows)
    for (const k of x.check.byKind) {
      const a = kinds.get(k.kind) ?? { n: 0, p: 0, m: 0 };
      kinds.set(k.kind, { n: a.n + k.launches, p: a.p + k.predictedUs, m: a.m + k.measuredUs });
    }
  const kindRows = [...kinds].sort((a, b) => b[1].m - a[1].m).map(([k, a]) => [k, String(a.n), fmtUs(a.p), fmtUs(a.m), pct(errorPct(a.p, a.m))]);
  const ok = r.rows.every((x) => x.within);
  return [
    `cost model vs ${r.device}: ${r.costModel}`,
    '',
    ...table(header, body),
    '',
    `per launch kind, all fleets (launches timed one by one${r.rows[0] ? `: ${r.rows[0].check.launchTiming}` : ''}):`,
    ...table(['kind', 'launches', 'predicted', 'measured', 'error'], kindRows),
    '',
    ok
      ? `target met: every fleet's predicted tick is within ±${tolerancePct}% of the measured one`
      : `target missed on: ${r.rows
          .filter((x) => !x.within)
          .map((x) => x.fleet)
          .join(', ')}`,
  ].join('\n');
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((c) => c[i]!.length)));
  const line = (c: readonly string[]) =>
    c
      .map((s, i) => (i === 0 ? s.padEnd(widths[i]!) : s.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

const USAGE = `usage: node --import tsx bench/cost-model.ts [options]

The cost model against the device, fleet by fleet: each fleet compiled with the profile (or the default
roofline), its predicted tick and launches against the measured ones (target: within ±25% on every fleet).

  --profile FILE|NAME|auto  a device profile (loom calibrate), a shipped one's name, or auto (this GPU's); default: the roofline
  --fleets a,b          ${COST_MODEL_FLEETS.join(', ')} (default: all)
  --backend B           auto | cpu | cuda (default auto)
  --branching B         never | auto: plan as measured (default: the planner's)
  --measured FILE       no device: the measured ticks from a bench/space-time.ts result
  --tolerance PCT       default 25
  --iters N             timed ticks (default 100)
  --tenants-scale F     multiply the fleet table fleets' tenant counts
  --work DIR --nvcc auto|off --out DIR`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      profile: { type: 'string' },
      fleets: { type: 'string', default: COST_MODEL_FLEETS.join(',') },
      backend: { type: 'string', default: 'auto' },
      tolerance: { type: 'string', default: '25' },
      iters: { type: 'string', default: '100' },
      'tenants-scale': { type: 'string', default: '1' },
      work: { type: 'string', default: path.join(os.tmpdir(), 'loom-cost-model') },
      nvcc: { type: 'string', default: 'auto' },
      branching: { type: 'string' },
      measured: { type: 'string' },
      out: { type: 'string', default: path.join(import.meta.dirname, 'results') },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const fleets = values.fleets.split(',').filter(Boolean);
  for (const f of fleets)
    if (!(COST_MODEL_FLEETS as readonly string[]).includes(f)) fail('USAGE', `unknown fleet '${f}' (known: ${COST_MODEL_FLEETS.join(', ')})`);
  if (!['auto', 'cpu', 'cuda'].includes(values.backend)) fail('USAGE', `--backend must be auto, cpu or cuda, got '${values.backend}'`);
  if (values.nvcc !== 'auto' && values.nvcc !== 'off') fail('USAGE', `--nvcc must be auto or off, got '${values.nvcc}'`);
  const tolerancePct = Number(values.tolerance);
  const iters = Number(values.iters);
  if (!(tolerancePct > 0)) fail('USAGE', `--tolerance must be a positive percentage, got '${values.tolerance}'`);
  if (!Number.isInteger(iters) || iters < 1) fail('USAGE', `--iters must be a positive integer, got '${values.iters}'`);
  const opts: CostModelOptions = {
    fleets,
    ...(values.profile !== undefined ? { profile: values.profile } : {}),
    backend: values.backend as CostModelOptions['backend'],
    tolerancePct,
    iters,
    tenantsScale: Number(values['tenants-scale']),
    work: values.work,
    nvcc: values.nvcc,
    ...(values.branching !== undefined ? { branching: branchingFrom(values.branching) } : {}),
    ...(values.measured !== undefined ? { measured: readMeasuredTicks(values.measured) } : {}),
    log: (m) => process.stderr.write(`cost-model: ${m}\n`),
  };
  const r = await runCostModel(opts);
  const text = formatCostModel(r, tolerancePct);
  process.stdout.write(`${text}\n`);
  mkdirSync(values.out, { recursive: true });
  const file = resultFile(values.out, r.device, 'cost-model', 'json');
  writeFileSync(
    file,
    `${JSON.stringify({ format: 'loom-cost-model', version: 1, date: new Date().toISOString(), device: r.device, costModel: r.costModel, profile: values.profile ?? null, tolerancePct, rows: r.rows }, null, 1)}\n`,
  );
  process.stderr.write(`cost-model: wrote ${file}\n`);
}

runIfMain(import.meta.url, main);
