// `loom compile --branching measure`: batch or branch by the device's own clock instead of the cost model's.
// The fleet is planned both ways — every group of equal tenants batched, and every group that fits the lanes as
// parallel branches ('always') — both plans are loaded on this host's backend (the one that will run them) and
// their ticks timed in interleaved rounds, and the faster plan becomes the output directory. Where the model
// decides ('auto') it can be wrong both ways: on an H100 (2026-12-07) it predicted branching the 64-tenant
// mixed fleet faster (3.93 vs 4.09 ms with the shipped profile) and the device ran it slower (6.51 vs 4.47 ms),
// while on the demo and zoo-mix fleets branching won as predicted. Costs a second compile (the tenant cache, if
// given, serves it) and two plan loads; plan.json's cost.branches.measured records the two ticks. With the tenant
// cache, the kept plan is recorded where it lands (the scratch ones are not: they move or go), so the next compile
// of the fleet can keep its weights.bin bytes.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fail } from '../../ir/errors.js';
import { PLAN_FILE, WEIGHTS_FILE } from '../../ir/contract/launch-plan.js';
import type { MeasuredBranches, Plan } from '../../ir/contract/plan.js';
import { type LoadedPlan, loadPlan } from '../../runtime/index.js';
import { BRANCHINGS, type Branching } from '../planner/index.js';
import { benchInputs } from './inputs.js';
import { MANIFEST_COPY, writeManifestCopy } from './manifest-copy.js';
import type { Manifest } from './manifest.js';
import { fmtUs } from './summary.js';

export const COMPILE_BRANCHINGS = [...BRANCHINGS, 'measure'] as const;
export type CompileBranching = (typeof COMPILE_BRANCHINGS)[number];

// Timed rounds per plan, up to MEASURE_TICKS ticks per round (fewer where a round would take longer than
// MEASURE_ROUND_US: slow CPU ticks; at least 3), after MEASURE_WARMUP untimed ticks each: a plan's tick is the
// median of its rounds' medians, the rounds alternating between the plans.
export const MEASURE_ROUNDS = 5;
export const MEASURE_TICKS = 20;
const MEASURE_ROUND_US = 250_000;
const MEASURE_WARMUP = 3;

// A --branching flag's value (loom compile, the benches).
export function compileBranchingFrom(v: string): CompileBranching {
  if (!(COMPILE_BRANCHINGS as readonly string[]).includes(v)) fail('USAGE', `--branching: expected ${COMPILE_BRANCHINGS.join(', ')}, got '${v}'`);
  return v as CompileBranching;
}

interface CompiledDir {
  readonly dir: string;
  readonly manifest: Manifest;
  readonly plan: Plan | null;
  readonly recordPlanAt?: (weightsFile: string) => Promise<void>; // the tenant cache's record, once moved
}

// Compiles the fleet both ways into a scratch folder beside outDir, times both, moves the faster to outDir.
// `compile(dir, branching)` compiles the fleet into dir; `backend` is what the plan will be loaded with.
export async function compileMeasuringBranches<R extends CompiledDir>(
  outDir: string,
  backend: 'auto' | 'cpu' | 'cuda',
  compile: (dir: string, branching: Branching) => Promise<R>,
  onProgress?: (label: string) => void,
): Promise<R & { readonly measured: MeasuredBranches | null }> {
  const out = path.resolve(outDir);
  const parent = path.dirname(out);
  let scratch: string;
  try {
    mkdirSync(parent, { recursive: true });
    scratch = mkdtempSync(path.join(parent, `.${path.basename(out)}.branching-`));
  } catch (e) {
    return fail('IO', `cannot create a scratch folder beside '${outDir}': ${(e as Error).message}`);
  }
  try {
    const batched = await compile(path.join(scratch, 'batched'), 'never');
    const branched = await compile(path.join(scratch, 'branched'), 'always');
    const predicted = branched.plan?.cost.branches;
    let measured: MeasuredBranches | null = null;
    let chosen: R = batched;
    if (predicted !== undefined && predicted.tenants.length > 0) {
      onProgress?.(`timing the batched and branched plans (${MEASURE_ROUNDS} interleaved rounds each)`);
      measured = await timeBoth(batched.dir, branched.dir, backend);
      if (measured.branchedUs < measured.batchedUs) chosen = branched;
    }
    const plan = chosen.plan && predicted ? withMeasured(chosen.plan, predicted, chosen === branched, measured) : chosen.plan;
    if (plan !== chosen.plan) writePlanCost(chosen.dir, plan!);
    const manifestCopy = existsSync(path.join(chosen.dir, MANIFEST_COPY));
    rmSync(out, { recursive: true, force: true });
    renameSync(chosen.dir, out);
    if (manifestCopy) writeManifestCopy(chosen.manifest, out); // its model paths are relative to the plan directory
    await chosen.recordPlanAt?.(path.join(out, WEIGHTS_FILE));
    return { ...chosen, dir: outDir, plan, measured };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

// One line for the compile summary and `loom inspect`.
export function measuredText(m: MeasuredBranches, branched: boolean): string {
  const on = m.device === m.backend ? m.device : `${m.device} (${m.backend})`;
  return `batched ${fmtUs(m.batchedUs)}, branched ${fmtUs(m.branchedUs)} a tick on ${on}: the ${branched ? 'branched' : 'batched'} plan kept`;
}

function withMeasured(plan: Plan, predicted: NonNullable<Plan['cost']['branches']>, branched: boolean, measured: MeasuredBranches | null): Plan {
  const branches = { ...predicted, tenants: branched ? predicted.tenants : [], ...(measured ? { measured } : {}) };
  return { ...plan, cost: { ...plan.cost, branches } };
}

// plan.json's cost with the choice recorded (inspect only; nothing the backends read changes).
function writePlanCost(dir: string, plan: Plan): void {
  const file = path.join(dir, PLAN_FILE);
  try {
    const json = JSON.parse(readFileSync(file, 'utf8')) as { cost: Plan['cost'] };
    json.cost = plan.cost;
    writeFileSync(file, `${JSON.stringify(json)}\n`);
  } catch (e) {
    fail('IO', `cannot record the measured branching in '${file}': ${(e as Error).message}`);
  }
}

// Both plans loaded at once and timed in alternating rounds; where the device cannot hold both (a fleet near its
// memory), one after the other.
async function timeBoth(batchedDir: string, branchedDir: string, backend: 'auto' | 'cpu' | 'cuda'): Promise<MeasuredBranches> {
  const first = await loadPlan(batchedDir, { backend });
  let second: LoadedPlan | null = null;
  try {
    try {
      second = await loadPlan(branchedDir, { backend });
    } catch {
      second = null;
    }
    const info = first.backendInfo();
    const about = { backend: first.backend, device: String(info.device ?? first.backend) };
    if (second !== null) {
      const [batchedUs, branchedUs] = await timeRounds([tickTimer(first), tickTimer(second)]);
      return { ...about, batchedUs: batchedUs!, branchedUs: branchedUs! };
    }
    const [batchedUs] = await timeRounds([tickTimer(first)]);
    first.close();
    second = await loadPlan(branchedDir, { backend });
    const [branchedUs] = await timeRounds([tickTimer(second)]);
    return { ...about, batchedUs: batchedUs!, branchedUs: branchedUs! };
  } finally {
    first.close();
    second?.close();
  }
}

// Each subject's median tick over MEASURE_ROUNDS rounds (the subjects alternating within a round).
async function timeRounds(ticks: ReadonlyArray<(n: number) => Promise<number[]>>): Promise<number[]> {
  let slowest = 0;
  for (const t of ticks) slowest = Math.max(slowest, median(await t(MEASURE_WARMUP)));
  const n = Math.max(3, Math.min(MEASURE_TICKS, Math.floor(MEASURE_ROUND_US / Math.max(1, slowest))));
  const rounds: number[][] = ticks.map(() => []);
  for (let r = 0; r < MEASURE_ROUNDS; r++) {
    for (let j = 0; j < ticks.length; j++) {
      const k = (r + j) % ticks.length;
      rounds[k]!.push(median(await ticks[k]!(n)));
    }
  }
  return rounds.map(median);
}

// n ticks of a loaded plan, µs each: on CUDA the captured tick's device time (CUDA events around graph replays),
// elsewhere the wall time of runTick over every tenant at maxBatch rows.
function tickTimer(p: LoadedPlan): (n: number) => Promise<number[]> {
  if (p.backend === 'cuda') return async (n) => p.benchTick(n).deviceUs;
  const inputs = benchInputs(p.plan);
  return async (n) => {
    const us: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await p.runTick(inputs);
      us.push((performance.now() - t0) * 1e3);
    }
    return us;
  };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
