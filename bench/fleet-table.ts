// Issue 5's fleet table, "Fleets against PyTorch": for each fleet, the tenants' zoo models are written and
// compiled, Loom's tick is timed end to end (and on CUDA its device tick and per-launch times), then Loom
// space-only (every tenant planned alone, its plans' ticks in flight at once: issue 13's comparison), the fleet
// is handed to the PyTorch peer (bench/peers/fleet_torch.py: same weights, same inputs, Loom's outputs to check
// against), and all are set against the roofline floor from the peaks the peer measured on the card.
// Rows: every --fleets fleet at --precision, then every --extra-fleets fleet at each --extra-precisions
// precision (Loom compiled at that precision, the peers run at it too).
//
//   usage: node --import tsx bench/fleet-table.ts [--fleets mlp-b1,...,zoo-mix] [--work DIR]
//          [--backend cpu|cuda] [--iters 200] [--warmup 20] [--tenants-scale 1] [--precision fp32]
//          [--extra-precisions bf16,tf32] [--extra-fleets mlp-b1,zoo-mix] [--no-space-only] [--no-peers]
//          [--peers eager,streams,...] [--python python3] [--fresh] [--out bench/results]
//   Writes <out>/<date>-<device>-fleet-table.json and .txt. --work keeps the fleets (models, plan, hand-off)
//   between runs (default <tmp>/loom-fleet-table); --fresh regenerates and recompiles them.
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fail } from '../ir/errors.js';
import { SUPPORTED_PRECISIONS } from '../src/fleet/manifest.js';
import { FLEET_BENCH_FLAGS, backendFlag, intFlag, runIfMain, tableBenchMain, writeTableResult } from './common.js';
import { type TableMeta, formatFleetTable } from './fleet-table/format.js';
import { writePeerFleet } from './fleet-table/handoff.js';
import { measureLoom } from './fleet-table/measure.js';
import { PEER_NAMES, type PeerName, type PeerPeaks, type PeerRun, runPeer } from './fleet-table/peer.js';
import { prepareFleet } from './fleet-table/prepare.js';
import { type FleetRow, buildRow } from './fleet-table/row.js';
import { type FleetSpec, FLEETS, describeFleet, fleetByName, fleetTenants, scaleFleet } from './fleet-table/specs.js';

export { checkPeerFleet, writeInitializers } from './fleet-table/handoff.js';
export { formatFleetTable } from './fleet-table/format.js';
export { probePeer, runPeer } from './fleet-table/peer.js';
export { buildRow, rooflineFloor } from './fleet-table/row.js';
export { FLEETS, fleetTenants, scaleFleet } from './fleet-table/specs.js';
export type { FleetSpec, TenantGroup } from './fleet-table/specs.js';
export type { FleetRow } from './fleet-table/row.js';

export const FLEET_TABLE_FORMAT = 'loom-fleet-table';
// Precision rows of the default run: the MLP fleet (one architecture, vmap peers) and the zoo mix (four).
export const DEFAULT_EXTRA_FLEETS = ['mlp-b1', 'zoo-mix'] as const;

export interface FleetTableOptions {
  readonly fleets: readonly FleetSpec[];
  readonly work: string;
  readonly backend: 'cpu' | 'cuda';
  readonly precision: string;
  // More rows: each of these fleets at each of these precisions (none by default)
  readonly extra?: { readonly precisions: readonly string[]; readonly fleets: readonly FleetSpec[] };
  readonly spaceOnly?: boolean; // the Loom space-only columns (default true)
  readonly iters: number;
  readonly warmup: number;
  readonly peers:
    | { readonly run: false; readonly reason: string }
    | { readonly run: true; readonly python: string; readonly script?: string; readonly names?: readonly PeerName[] };
  readonly peaks?: PeerPeaks | null; // instead of the peer's (a fleet the peer did not run still gets a floor)
  readonly nvcc?: 'auto' | 'off'; // default: auto on cuda, off on cpu (a cubin the CPU backend never reads)
  readonly fresh?: boolean;
  readonly log?: (msg: string) => void;
  readonly quietProgress?: boolean;
}

export interface FleetTableResult {
  readonly format: typeof FLEET_TABLE_FORMAT;
  readonly version: 2; // 2: precision rows and the Loom space-only columns
  readonly date: string;
  readonly backend: 'cpu' | 'cuda';
  readonly device: string;
  readonly peerDevice: string | null;
  readonly host: { readonly cpus: number; readonly cpuModel: string; readonly node: string };
  readonly settings: {
    readonly iters: number;
    readonly warmup: number;
    readonly precision: string;
    readonly fleets: readonly FleetSpec[];
    readonly rows: ReadonlyArray<{ readonly fleet: string; readonly precision: string }>;
    readonly spaceOnly: boolean;
  };
  readonly rows: readonly FleetRow[];
  readonly table: string;
}

// The table's rows in order: every fleet at the base precision, then the extra fleets at each extra precision
// (a pair already listed is not repeated).
export function tableRows(opts: Pick<FleetTableOptions, 'fleets' | 'precision' | 'extra'>): Array<{ spec: FleetSpec; precision: string }> {
  const out = opts.fleets.map((spec) => ({ spec, precision: opts.precision }));
  for (const precision of opts.extra?.precisions ?? [])
    for (const spec of opts.extra?.fleets ?? []) if (!out.some((r) => r.spec.name === spec.name && r.precision === precision)) out.push({ spec, precision });
  return out;
}

// Where a fleet lives under --work: <name> at fp32 (what `bench/gpu-suite.sh occupancy` reads), <name>-<precision> otherwise.
export function fleetDirName(name: string, precision: string): string {
  return precision === 'fp32' ? name : `${name}-${precision}`;
}

export async function runFleetTable(opts: FleetTableOptions): Promise<FleetTableResult> {
  const log = opts.log ?? (() => {});
  const rows: FleetRow[] = [];
  const pairs = tableRows(opts);
  const spaceOnly = opts.spaceOnly ?? true;
  for (const { spec, precision } of pairs) {
    const label = precision === opts.precision ? spec.name : `${spec.name} ${precision}`;
    const prepared = await prepareFleet(spec, {
      work: opts.work,
      dirName: fleetDirName(spec.name, precision),
      precision,
      nvcc: opts.nvcc ?? (opts.backend === 'cuda' ? 'auto' : 'off'),
      spaceOnly,
      ...(opts.fresh ? { fresh: true } : {}),
      log,
      ...(opts.quietProgress ? { quietProgress: true } : {}),
    });
    let t0 = Date.now();
    log(`${label}: Loom on ${opts.backend}, ${opts.warmup} warm-up + ${opts.iters} timed ticks${spaceOnly ? ', then space-only' : ''}`);
    const loom = await measureLoom(prepared.planDir, {
      backend: opts.backend,
      iters: opts.iters,
      warmup: opts.warmup,
      onFirstTick: (loaded, inputs, outputs) => {
        writePeerFleet(prepared.peerDir, spec.name, precision, prepared.entries, prepared.weights, loaded.plan.tenants, inputs, outputs);
      },
      spaceOnly: prepared.spaceOnly ? { dirs: prepared.spaceOnly, precision } : null,
    });
    const measureS = (Date.now() - t0) / 1e3;
    t0 = Date.now();
    const peer = await peerRun(opts, precision, path.join(prepared.peerDir, 'fleet.json'), path.join(prepared.dir, 'peer-result.json'));
    const base = {
      fleet: spec.name,
      description: describeFleet(spec),
      tenants: prepared.entries.length,
      precision,
      seconds: {
        models: prepared.seconds.models,
        compile: prepared.seconds.compile,
        spaceOnlyPlans: prepared.seconds.spaceOnly,
        loom: measureS,
        peer: (Date.now() - t0) / 1e3,
      },
    };
    const row = buildRow(base, loom, peer, opts.peaks);
    const so = row.loom.spaceOnly;
    log(
      `${label}: loom p50 ${row.loom.runTickUs.p50.toFixed(1)} µs${so ? `, space-only p50 ${so.runTickUs.p50.toFixed(1)} µs` : ''}${row.overSpaceOnly.device !== null ? ` (device ST/SO ${row.overSpaceOnly.device.toFixed(2)}x)` : ''}, peer ${peer.status}${row.bestPeer ? ` (best ${row.bestPeer.name} ${row.bestPeer.p50Us.toFixed(1)} µs)` : ''}`,
    );
    rows.push(row);
  }
  const device = rows[0]?.loom.device ?? 'unknown';
  const peerDevice =
    rows.map((r) => (r.peer.status === 'ran' || r.peer.status === 'failed' ? r.peer.result?.device : undefined)).find((d) => d !== undefined) ?? null;
  const date = new Date().toISOString();
  const meta: TableMeta = { date, backend: opts.backend, device, peerDevice, iters: opts.iters };
  return {
    format: FLEET_TABLE_FORMAT,
    version: 2,
    date,
    backend: opts.backend,
    device,
    peerDevice,
    host: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version },
    settings: {
      iters: opts.iters,
      warmup: opts.warmup,
      precision: opts.precision,
      fleets: opts.fleets,
      rows: pairs.map((r) => ({ fleet: r.spec.name, precision: r.precision })),
      spaceOnly,
    },
    rows,
    table: formatFleetTable(rows, meta),
  };
}

async function peerRun(opts: FleetTableOptions, precision: string, fleetJson: string, out: string): Promise<PeerRun> {
  const p = opts.peers;
  if (!p.run) return { status: 'skipped', reason: p.reason };
  return runPeer({
    python: p.python,
    ...(p.script ? { script: p.script } : {}),
    fleetJson,
    out,
    precision,
    iters: opts.iters,
    warmup: opts.warmup,
    ...(p.names ? { peers: p.names } : {}),
  });
}

// <out>/<date>-<card>-fleet-table.json and .txt; the card is the peer's GPU where it ran, else Loom's device.
export function writeFleetTable(result: FleetTableResult, outDir: string): { json: string; txt: string } {
  return writeTableResult(result, outDir, result.peerDevice ?? result.device, 'fleet-table');
}

export function parseFleetTableArgs(argv: readonly string[]): { opts: FleetTableOptions; out: string } {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      ...FLEET_BENCH_FLAGS,
      fleets: { type: 'string', default: Object.keys(FLEETS).join(',') },
      precision: { type: 'string', default: 'fp32' },
      'extra-precisions': { type: 'string', default: '' },
      'extra-fleets': { type: 'string', default: DEFAULT_EXTRA_FLEETS.join(',') },
      'no-space-only': { type: 'boolean', default: false },
      iters: { type: 'string', default: '200' },
      warmup: { type: 'string', default: '20' },
      'no-peers': { type: 'boolean', default: false },
      peers: { type: 'string' },
      python: { type: 'string', default: 'python3' },
    },
    strict: true,
  });
  const backend = backendFlag(values.backend);
  const precision = (flag: string, v: string): string => {
    if (!(SUPPORTED_PRECISIONS as readonly string[]).includes(v)) fail('USAGE', `--${flag} must be one of ${SUPPORTED_PRECISIONS.join(', ')}, got '${v}'`);
    return v;
  };
  precision('precision', values.precision);
  const list = (v: string): string[] => v.split(',').filter((x) => x !== '');
  const scale = Number(values['tenants-scale']);
  const fleets = list(values.fleets).map((n) => scaleFleet(fleetByName(n), scale));
  const extraPrecisions = list(values['extra-precisions']).map((p) => precision('extra-precisions', p));
  const extraFleets = list(values['extra-fleets']).map((n) => scaleFleet(fleetByName(n), scale));
  const names = values.peers?.split(',').map((n) => {
    if (!(PEER_NAMES as readonly string[]).includes(n)) fail('USAGE', `--peers: unknown peer '${n}' (known: ${PEER_NAMES.join(', ')})`);
    return n as PeerName;
  });
  const opts: FleetTableOptions = {
    fleets,
    work: values.work,
    backend,
    precision: values.precision,
    ...(extraPrecisions.length > 0 ? { extra: { precisions: extraPrecisions, fleets: extraFleets } } : {}),
    spaceOnly: !values['no-space-only'],
    iters: intFlag('iters', values.iters, 1),
    warmup: intFlag('warmup', values.warmup, 0),
    peers: values['no-peers'] ? { run: false, reason: '--no-peers' } : { run: true, python: values.python, ...(names ? { names } : {}) },
    fresh: values.fresh,
    log: (m) => process.stderr.write(`fleet-table: ${m}\n`),
  };
  return { opts, out: values.out };
}

const USAGE = `usage: node --import tsx bench/fleet-table.ts [options]

Issue 5's fleet table: each fleet compiled by Loom and run end to end (host inputs -> host outputs) against
Loom space-only (each tenant its own plan, its own CUDA graph on its own stream, all launched at once) and
PyTorch peers (bench/peers/fleet_torch.py: eager loop, one stream per tenant, CUDA graph, vmap, vmap+graph)
with the same weights at the same precision, plus the roofline floor from the peaks the peer measures.

  --fleets a,b          ${Object.keys(FLEETS).join(', ')} (default: all)
  --work DIR            where models, plans and hand-offs go (default: <tmp>/loom-fleet-table; reused)
  --backend cuda|cpu    Loom backend (default cuda)
  --precision P         the --fleets rows' precision: fp32 (default) | tf32 | bf16 | fp16 (Loom and the peers)
  --extra-precisions a,b  also run --extra-fleets at each of these (e.g. bf16,tf32; default none)
  --extra-fleets a,b    the fleets of those rows (default ${DEFAULT_EXTRA_FLEETS.join(',')})
  --no-space-only       skip the Loom space-only columns (every tenant planned alone, all in flight)
  --iters N --warmup N  timed / untimed ticks per system (default 200 / 20)
  --tenants-scale F     multiply tenant counts (e.g. 0.25 for a quick run)
  --peers a,b           peers to run (default all); --no-peers skips PyTorch
  --python BIN          python with torch (default python3)
  --fresh               rebuild models and plans even when the work dir matches
  --out DIR             results folder (default bench/results)
`;

async function main(): Promise<void> {
  await tableBenchMain(process.argv.slice(2), {
    usage: USAGE,
    parse: parseFleetTableArgs,
    describe: (opts) => `fleets ${opts.fleets.map((f) => `${f.name} (${fleetTenants(f).length} tenants)`).join(', ')}; work dir ${opts.work}`,
    run: runFleetTable,
    write: writeFleetTable,
  });
}

runIfMain(import.meta.url, main);
