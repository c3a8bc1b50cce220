// Issue 13's comparison in one command: for the demo fleet, the fleet table's fleets and the zoo mix, `loom bench`
// (src/measure: time-only, space-only and space-time planned from the same tenants, loaded on one backend in
// one process, checked to compute the same outputs, timed interleaved) and, per fleet, the three device ticks,
// space-time / space-only and space-time / time-only, and whether the targets (≤ 0.8x, ≤ 0.5x) are met.
//
//   usage: node --import tsx bench/space-time.ts [--fleets demo,mlp-b1,...,zoo-mix] [--work DIR] [--backend cuda]
//          [--ticks 100] [--warmup 10] [--tenants-scale 1] [--fresh] [--out bench/results]
//   Writes <out>/<date>-<card>-space-time.json and .txt. --work is shared with bench/fleet-table.ts (the same
//   fleet directories, reused while their stamps match); the demo fleet goes to <work>/demo.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { fail } from '../ir/errors.js';
import { type BenchResult, benchFleet } from '../src/measure/index.js';
import { type CompileBranching as Branching, compileBranchingFrom as branchingFrom } from '../src/fleet/branch-measure.js';
import { FLEET_BENCH_FLAGS, backendFlag, intFlag, runIfMain, tableBenchMain, writeTableResult } from './common.js';
import { prepareFleet } from './fleet-table/prepare.js';
import { type FleetSpec, FLEETS, describeFleet, fleetByName, scaleFleet } from './fleet-table/specs.js';
import { DEMO_NAME, describeDemo, prepareDemo } from './space-time/demo.js';
import { formatSpaceTime } from './space-time/format.js';
import { type SpaceTimeEntry, spaceTimeRow } from './space-time/row.js';

export { formatSpaceTime } from './space-time/format.js';
export { spaceTimeRow, TARGET_SPACE_ONLY, TARGET_TIME_ONLY } from './space-time/row.js';
export type { SpaceTimeEntry, SpaceTimeRow } from './space-time/row.js';

export const SPACE_TIME_FORMAT = 'loom-space-time';
export const SPACE_TIME_FLEETS: readonly string[] = [DEMO_NAME, ...Object.keys(FLEETS)];

export type SpaceTimeFleet = { readonly kind: 'demo' } | { readonly kind: 'table'; readonly spec: FleetSpec };

export interface SpaceTimeOptions {
  readonly fleets: readonly SpaceTimeFleet[];
  readonly work: string;
  readonly backend: 'cpu' | 'cuda';
  readonly ticks: number;
  readonly warmup: number;
  readonly fresh?: boolean;
  readonly nvcc?: 'auto' | 'off'; // plans and baselines; default auto on cuda (cached cubins), off on cpu
  readonly branching?: Branching; // the plans' batch or branch (loom compile --branching; default never)
  readonly log?: (msg: string) => void;
  readonly quietProgress?: boolean;
}

export interface SpaceTimeResult {
  readonly format: typeof SPACE_TIME_FORMAT;
  readonly version: 1;
  readonly date: string;
  readonly backend: 'cpu' | 'cuda';
  readonly device: string;
  readonly settings: {
    readonly ticks: number;
    readonly warmup: number;
    readonly precision: 'fp32';
    readonly fleets: readonly string[];
    readonly branching: Branching;
  };
  readonly entries: readonly SpaceTimeEntry[];
  // every fleet's loom bench result without the per-tick samples (the JSON stays small)
  readonly bench: Readonly<Record<string, Omit<BenchResult, 'modes'> & { modes: ReadonlyArray<Omit<BenchResult['modes'][number], 'samplesUs'>> }>>;
  readonly table: string;
}

export function fleetName(f: SpaceTimeFleet): string {
  return f.kind === 'demo' ? DEMO_NAME : f.spec.name;
}

export async function runSpaceTime(opts: SpaceTimeOptions): Promise<SpaceTimeResult> {
  const log = opts.log ?? (() => {});
  const nvcc = opts.nvcc ?? (opts.backend === 'cuda' ? 'auto' : 'off');
  const entries: SpaceTimeEntry[] = [];
  const bench: Record<string, SpaceTimeResult['bench'][string]> = {};
  let device = opts.backend === 'cpu' ? (os.cpus()[0]?.model ?? 'unknown CPU') : 'CUDA device';
  for (const f of opts.fleets) {
    const name = fleetName(f);
    const description = f.kind === 'demo' ? describeDemo() : describeFleet(f.spec);
    try {
      let t0 = Date.now();
      const planDir =
        f.kind === 'demo'
          ? (
              await prepareDemo(opts.work, {
                nvcc,
                ...(opts.branching ? { branching: opts.branching } : {}),
                ...(opts.fresh ? { fresh: true } : {}),
                log,
                ...(opts.quietProgress ? { quietProgress: true } : {}),
              })
            ).planDir
          : (
              await prepareFleet(f.spec, {
                work: opts.work,
                precision: 'fp32',
                nvcc,
                ...(opts.branching ? { branching: opts.branching } : {}),
                ...(opts.fresh ? { fresh: true } : {}),
                log,
                ...(opts.quietProgress ? { quietProgress: true } : {}),
              })
            ).planDir;
      const prepareS = (Date.now() - t0) / 1e3;
      t0 = Date.now();
      log(`${name}: loom bench on ${opts.backend}, ${opts.warmup} warm-up + ${opts.ticks} timed ticks per mode`);
      const r = await benchFleet(planDir, { backend: opts.backend, ticks: opts.ticks, warmup: opts.warmup, nvcc });
      device = r.device;
      const row = spaceTimeRow({ fleet: name, description, seconds: { prepare: prepareS, bench: (Date.now() - t0) / 1e3 } }, r);
      bench[name] = { ...r, modes: r.modes.map(({ samplesUs: _, ...m }) => m) };
      entries.push({ status: 'measured', row });
      const d = row.device;
      log(
        `${name}: device TO/SO/ST ${[row.modes['time-only'], row.modes['space-only'], row.modes['space-time']].map((m) => m.deviceP50Us?.toFixed(1) ?? '-').join(' / ')} µs; ST/SO ${d.vsSpaceOnly?.toFixed(2) ?? '-'}x, ST/TO ${d.vsTimeOnly?.toFixed(2) ?? '-'}x`,
      );
    } catch (e) {
      // one fleet that cannot be measured (a mode disagreeing, out of memory) must not cost the others' numbers
      const reason = (e as Error).message ?? String(e);
      log(`${name}: FAILED: ${reason}`);
      entries.push({ status: 'failed', fleet: name, description, reason });
    }
  }
  const date = new Date().toISOString();
  return {
    format: SPACE_TIME_FORMAT,
    version: 1,
    date,
    backend: opts.backend,
    device,
    settings: { ticks: opts.ticks, warmup: opts.warmup, precision: 'fp32', fleets: opts.fleets.map(fleetName), branching: opts.branching ?? 'never' },
    entries,
    bench,
    table: formatSpaceTime(entries, { date, backend: opts.backend, device, ticks: opts.ticks, branching: opts.branching ?? 'never' }),
  };
}

export function writeSpaceTime(result: SpaceTimeResult, outDir: string): { json: string; txt: string } {
  return writeTableResult(result, outDir, result.device, 'space-time');
}

export function parseSpaceTimeArgs(argv: readonly string[]): { opts: SpaceTimeOptions; out: string } {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      ...FLEET_BENCH_FLAGS,
      fleets: { type: 'string', default: SPACE_TIME_FLEETS.join(',') },
      ticks: { type: 'string', default: '100' },
      warmup: { type: 'string', default: '10' },
      branching: { type: 'string', default: 'never' },
    },
    strict: true,
  });
  const backend = backendFlag(values.backend);
  const scale = Number(values['tenants-scale']);
  const fleets = values.fleets
    .split(',')
    .filter((s) => s !== '')
    .map((n): SpaceTimeFleet => (n === DEMO_NAME ? { kind: 'demo' } : { kind: 'table', spec: scaleFleet(fleetByName(n), scale) }));
  if (fleets.length === 0) fail('USAGE', `--fleets names no fleet (known: ${SPACE_TIME_FLEETS.join(', ')})`);
  return {
    opts: {
      fleets,
      work: values.work,
      backend,
      ticks: intFlag('ticks', values.ticks, 1),
      warmup: intFlag('warmup', values.warmup, 0),
      fresh: values.fresh,
      branching: branchingFrom(values.branching),
      log: (m) => process.stderr.write(`space-time: ${m}\n`),
    },
    out: values.out,
  };
}

const USAGE = `usage: node --import tsx bench/space-time.ts [options]

Issue 13's comparison: for each fleet, loom bench's three modes on one backend in one process (time-only:
every tenant step its own launch; space-only: every tenant planned alone, its plans' captured ticks launched
at once, a CUDA stream each; space-time: the plan), their device ticks, ST/SO and ST/TO against the targets
(≤ 0.8x, ≤ 0.5x). fp32.

  --fleets a,b          ${SPACE_TIME_FLEETS.join(', ')} (default: all)
  --work DIR            fleet directories, shared with bench/fleet-table.ts (default <tmp>/loom-fleet-table)
  --backend cuda|cpu    default cuda
  --ticks N --warmup N  timed / untimed ticks per mode (default 100 / 10)
  --tenants-scale F     multiply the fleet table fleets' tenant counts (the demo keeps its 16)
  --branching MODE      the plans' batch or branch (loom compile --branching: auto, never, always, measure;
                        default never): auto runs each group of equal tenants that fits the lanes as parallel
                        branches, a lane per tenant, where the cost model predicts it pays; measure times both
                        plans on this host's GPU at compile time and keeps the faster
  --fresh               rebuild models and plans even when the work dir matches
  --out DIR             results folder (default bench/results)
`;

async function main(): Promise<void> {
  const result = await tableBenchMain(process.argv.slice(2), {
    usage: USAGE,
    parse: parseSpaceTimeArgs,
    describe: (opts) => `fleets ${opts.fleets.map(fleetName).join(', ')}; work dir ${opts.work}`,
    run: runSpaceTime,
    write: writeSpaceTime,
  });
  if (result?.entries.some((e) => e.status === 'failed')) process.exitCode = 1;
}

runIfMain(import.meta.url, main);
