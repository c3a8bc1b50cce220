// Benchmark (not a test): Loom at tenant scale (issue 18). For each row, a fleet of N one-model tenants:
//   zoo100      100 × zoo MLP 784-512-512-10, maxBatch 1, fp32
//   zoo1000     1,000 × the same
//   small10000  10,000 × a small MLP (--small-sizes, default 256-256-256-16: three Gemm layers 256 wide)
// it measures, in this order and within one time budget (--budget-s; a phase that would start past it is
// skipped and says so):
//   compile   `loom compile` as a child process (the real CLI, module loading included): wall s, peak RSS
//   plan      launches per tick, weight bytes
//   tick      runTick of the full tick and of a 10%-occupancy tick (every 10th tenant live), interleaved:
//             p50/p99 µs and the 10%/full ratio; on CUDA also benchTick's device time (full and 10%), the
//             weights read per second (weight bytes / device tick) and the tick against the weight-bytes
//             floor (weight bytes / the card's nominal bandwidth: a batch-1 tick must read every weight once)
//   serve     `loom serve` as a child: start-up (spawn to the first answered request), its RSS, the /metrics
//             page's bytes before and after load, then a closed loop (bench/serve-load.ts's autocannon
//             machinery, binary bodies, 1-row requests) over 10% of the tenants: answered/s, p50/p99,
//             429s by admission reason, SLO misses, lost/duplicated/mismatched (must be 0)
// Prints a table; writes JSON to bench/results/<date>-<cpu or card>-tenant-scale.json (and $OUT if set).
// Needs a built dist/ (`npm run build`): compile and serve run bin/loom.js.
//   node --import tsx bench/tenant-scale.ts [--rows zoo100,zoo1000,small10000] [--backend cpu|cuda|auto]
//     [--budget-s 280] [--ticks 100] [--serve-s 5] [--connections 64] [--slo-ms 50] [--small-sizes 256,256,256,16]
//     [--threads N] [--nvcc] [--work DIR] [--out DIR]
// On the GPU host: `bash bench/gpu-suite.sh OUT tenants` (about 5 minutes; TENANT_SCALE_ARGS adds flags).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readPlanDir } from '../codegen/index.js';
import { type LoadedPlan, type TickInputs, clockOf, loadPlan } from '../runtime/index.js';
import { benchInputs, deviceOf } from '../src/measure/run.js';
import { tickStats } from '../src/measure/stats.js';
import { deviceStats, timeInterleaved } from '../src/measure/timing.js';
import { alignTable, listFlag, runHeader, runIfMain, writeResultJson } from './common.js';
import { type TenantShape, closedLoop, requestMaker, scrape, scrapeDelta, startLoom, stop } from './serve-load.js';
import { spreadTenants, writeTenantFleet } from './tenant-fleet.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const ZOO_SIZES = [784, 512, 512, 10];

export interface RowSpec {
  readonly name: string;
  readonly count: number;
  readonly sizes: readonly number[];
}

// The row names the program knows: zoo<N> (zoo MLP) and small<N> (--small-sizes), N tenants.
export function rowSpec(name: string, smallSizes: readonly number[]): RowSpec {
  const m = /^(zoo|small)(\d+)$/.exec(name);
  if (!m || Number(m[2]) < 1) throw new Error(`--rows: '${name}' is not zoo<N> or small<N> (e.g. zoo1000, small10000)`);
  return { name, count: Number(m[2]), sizes: m[1] === 'zoo' ? ZOO_SIZES : smallSizes };
}

// The bandwidth a tick's weight reads are measured against: bench/cuda-tick.ts's figures (H100: the ~3 TB/s
// copy bandwidth measured in issue 4, below the 3.35 TB/s spec), so the floors of both benches agree.
export function nominalBandwidth(card: string): { bytesPerS: number; label: string } {
  if (/H200/i.test(card)) return { bytesPerS: 4.8e12, label: 'H200 HBM3e 4.8 TB/s' };
  if (/H100/i.test(card)) return { bytesPerS: 3.0e12, label: 'H100 ~3 TB/s (issue 4: measured copy bandwidth)' };
  return { bytesPerS: 3.0e12, label: 'unknown card, 3 TB/s assumed' };
}

interface Budget {
  readonly end: number;
  left(): number; // seconds
}

export interface RowResult {
  readonly row: string;
  readonly tenants: number;
  readonly sizes: readonly number[];
  compile?: { seconds: number; peakRssMB: number };
  plan?: { launches: number; weightBytes: number };
  tick?: {
    loadS: number;
    fullUs: { p50: number; p99: number };
    tenthUs: { p50: number; p99: number };
    tenthOverFull: number;
    device: null | {
      fullUs: number;
      tenthUs: number;
      tenthOverFull: number;
      weightsTBps: number;
      floorUs: number;
      overFloor: number;
      nominal: string;
    };
  };
  serve?: {
    startupS: number;
    rssMB: number | null;
    metricsBytesIdle: number;
    metricsBytesAfter: number;
    active: number;
    okPerS: number;
    p50Ms: number;
    p99Ms: number;
    refused429: number;
    rejectedByReason: Record<string, number>;
    sloMissed: number;
    lost: number;
    duplicated: number;
    mismatched: number;
  };
  skipped: string[];
}

function run(cmd: string, argv: readonly string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => resolve({ code, out }));
  });
}

async function compileRow(manifest: string, plan: string, nvcc: boolean): Promise<NonNullable<RowResult['compile']>> {
  const timings = `${plan}.timings.json`;
  const t0 = performance.now();
  const argv = [path.join(ROOT, 'bin/loom.js'), 'compile', manifest, '-o', plan, '--quiet', '--timings', timings, ...(nvcc ? [] : ['--no-nvcc'])];
  const r = await run(process.execPath, argv);
  const seconds = (performance.now() - t0) / 1000;
  if (r.code !== 0) throw new Error(`loom compile failed (${r.code}): ${r.out.slice(-2000)}`);
  const t = JSON.parse(readFileSync(timings, 'utf8')) as { peakRssBytes: number };
  return { seconds: round(seconds, 2), peakRssMB: Math.round(t.peakRssBytes / 2 ** 20) };
}

async function tickRow(loaded: LoadedPlan, ticks: number, device: string): Promise<NonNullable<RowResult['tick']>> {
  const plan = loaded.plan;
  const all = benchInputs(plan);
  const live = spreadTenants(
    plan.tenants.map((t) => t.id),
    0.1,
  );
  const tenth: TickInputs = Object.fromEntries(live.map((id) => [id, all[id]!]));
  for (let i = 0; i < 5; i++) {
    await loaded.runTick(all);
    await loaded.runTick(tenth);
  }
  const [full, part] = (await timeInterleaved(2, ticks, (k) => loaded.runTick(k === 0 ? all : tenth))).map(tickStats);
  let dev: NonNullable<RowResult['tick']>['device'] = null;
  if (loaded.backend === 'cuda') {
    const f = deviceStats(() => loaded.benchTick(ticks));
    const p = deviceStats(() => loaded.benchTick(ticks, live));
    if (f && p) {
      const w = plan.arenas.weights;
      const nom = nominalBandwidth(device);
      const floorUs = (w / nom.bytesPerS) * 1e6;
      dev = {
        fullUs: round(f.p50, 1),
        tenthUs: round(p.p50, 1),
        tenthOverFull: round(p.p50 / f.p50, 3),
        weightsTBps: round(w / (f.p50 * 1e-6) / 1e12, 3),
        floorUs: round(floorUs, 1),
        overFloor: round(f.p50 / floorUs, 2),
        nominal: nom.label,
      };
    }
  }
  return {
    loadS: 0,
    fullUs: { p50: round(full!.p50, 1), p99: round(full!.p99, 1) },
    tenthUs: { p50: round(part!.p50, 1), p99: round(part!.p99, 1) },
    tenthOverFull: round(part!.p50 / full!.p50, 3),
    device: dev,
  };
}

function rssMB(pid: number | undefined): number | null {
  if (pid === undefined || !existsSync(`/proc/${pid}/status`)) return null;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : null;
}

async function serveRow(
  planDir: string,
  shapes: readonly TenantShape[],
  o: { backend: string; threads?: string; seconds: number; connections: number },
): Promise<{ result: NonNullable<RowResult['serve']>; proc: ChildProcess }> {
  const t0 = performance.now();
  const { proc, url } = await startLoom(planDir, { backend: o.backend, threads: o.threads });
  const active = spreadTenants(shapes, 0.1);
  const make = requestMaker(active, 'binary');
  const first = make('startup', 0);
  const r = await fetch(`${url}${first.path}`, { method: 'POST', headers: first.headers, body: first.body });
  if (r.status !== 200) throw new Error(`loom serve: the first request got ${r.status}: ${await r.text()}`);
  const startupS = (performance.now() - t0) / 1000;
  const metricsBytesIdle = Buffer.byteLength(await (await fetch(`${url}/metrics`)).text());
  const before = await scrape(url);
  const load = await closedLoop(url, make, { connections: o.connections, seconds: o.seconds, target: 'loom', body: 'binary', idPrefix: 's-' });
  const after = await scrape(url);
  const metricsBytesAfter = Buffer.byteLength(await (await fetch(`${url}/metrics`)).text());
  const { rejectedByReason, sloMissed } = scrapeDelta(before, after);
  return {
    proc,
    result: {
      startupS: round(startupS, 2),
      rssMB: rssMB(proc.pid),
      metricsBytesIdle,
      metricsBytesAfter,
      active: active.length,
      okPerS: load.okPerS,
      p50Ms: load.p50Ms,
      p99Ms: load.p99Ms,
      refused429: load.refused429,
      rejectedByReason,
      sloMissed,
      lost: load.lost,
      duplicated: load.duplicated,
      mismatched: load.mismatched,
    },
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// What each phase is expected to need at most, in seconds per 1,000 tenants (16-core GPU host, measured
// there and on the 2-core box): a phase starts only if this much budget is left.
const PHASE_S_PER_1K = { compile: 12, tick: 3, serve: 4 } as const;

async function measureRow(spec: RowSpec, o: Options, budget: Budget): Promise<RowResult> {
  const res: RowResult = { row: spec.name, tenants: spec.count, sizes: spec.sizes, skipped: [] };
  const k = Math.max(1, spec.count / 1000);
  const enough = (phase: keyof typeof PHASE_S_PER_1K, extra = 0) => {
    const need = PHASE_S_PER_1K[phase] * k + extra;
    if (budget.left() >= need) return true;
    res.skipped.push(`${phase}: ${Math.round(budget.left())} s of the budget left, ~${Math.round(need)} s needed`);
    return false;
  };
  const dir = path.join(o.work, spec.name);
  mkdirSync(dir, { recursive: true });
  const fleet = writeTenantFleet(dir, { count: spec.count, sizes: spec.sizes, maxBatch: 1, sloMs: o.sloMs });
  const planDir = path.join(dir, 'plan');
  if (!enough('compile', o.serveS + 10)) return res;
  process.stderr.write(`${spec.name}: compiling ${spec.count} × MLP ${spec.sizes.join('-')}...\n`);
  res.compile = await compileRow(fleet.manifest, planDir, o.nvcc);
  const plan = readPlanDir(planDir);
  res.plan = { launches: plan.launches.length, weightBytes: plan.arenas.weights };
  const shapes: TenantShape[] = plan.tenants.map((t) => ({ id: t.id, input: t.inputs[0]!.name, width: t.inputs[0]!.shape[1]!, output: t.outputs[0]!.name }));
  if (enough('tick', o.serveS)) {
    process.stderr.write(`${spec.name}: ticks (${o.ticks} each, full and 10%)...\n`);
    const t0 = performance.now();
    const loaded = await loadPlan(planDir, { backend: o.backend as 'cpu' | 'cuda' | 'auto', ...(o.threads ? { threads: Number(o.threads) } : {}) });
    const loadS = (performance.now() - t0) / 1000;
    try {
      o.device ??= deviceOf(clockOf(loaded.backend), loaded).device;
      res.tick = { ...(await tickRow(loaded, o.ticks, o.device)), loadS: round(loadS, 2) };
    } finally {
      loaded.close();
    }
  }
  if (enough('serve', o.serveS)) {
    process.stderr.write(`${spec.name}: loom serve, ${o.serveS} s of load over 10% of the tenants...\n`);
    const { result, proc } = await serveRow(planDir, shapes, { backend: o.backend, threads: o.threads, seconds: o.serveS, connections: o.connections });
    res.serve = result;
    await stop(proc);
  }
  if (!o.keep) rmSync(dir, { recursive: true, force: true });
  return res;
}

interface Options {
  readonly backend: string;
  readonly threads: string | undefined;
  readonly ticks: number;
  readonly serveS: number;
  readonly connections: number;
  readonly sloMs: number;
  readonly nvcc: boolean;
  readonly work: string;
  readonly keep: boolean;
  device?: string;
}

const us = (x: number | undefined) => (x === undefined ? '-' : x >= 10_000 ? `${(x / 1000).toFixed(1)} ms` : `${x.toFixed(0)} µs`);

export function formatRows(rows: readonly RowResult[]): string {
  const head = [
    'row',
    'tenants',
    'compile s',
    'peak MB',
    'launches',
    'weights MB',
    'runTick p50',
    'p99',
    '10%/full',
    'device tick',
    'TB/s',
    'vs floor',
    'dev 10%/full',
    'serve up s',
    'serve MB',
    '/metrics B',
    'active',
    'ok/s',
    'p99 ms',
    '429',
    'lost',
  ];
  const body = rows.map((r) => [
    r.row,
    String(r.tenants),
    r.compile ? r.compile.seconds.toFixed(1) : '-',
    r.compile ? String(r.compile.peakRssMB) : '-',
    r.plan ? String(r.plan.launches) : '-',
    r.plan ? (r.plan.weightBytes / 2 ** 20).toFixed(0) : '-',
    us(r.tick?.fullUs.p50),
    us(r.tick?.fullUs.p99),
    r.tick ? r.tick.tenthOverFull.toFixed(2) : '-',
    us(r.tick?.device?.fullUs),
    r.tick?.device ? r.tick.device.weightsTBps.toFixed(2) : '-',
    r.tick?.device ? `${r.tick.device.overFloor.toFixed(2)}x` : '-',
    r.tick?.device ? r.tick.device.tenthOverFull.toFixed(2) : '-',
    r.serve ? r.serve.startupS.toFixed(1) : '-',
    r.serve?.rssMB != null ? String(r.serve.rssMB) : '-',
    r.serve ? `${r.serve.metricsBytesIdle}/${r.serve.metricsBytesAfter}` : '-',
    r.serve ? String(r.serve.active) : '-',
    r.serve ? String(r.serve.okPerS) : '-',
    r.serve ? r.serve.p99Ms.toFixed(1) : '-',
    r.serve ? String(r.serve.refused429) : '-',
    r.serve ? String(r.serve.lost + r.serve.duplicated + r.serve.mismatched) : '-',
  ]);
  return alignTable(head, body, 1).join('\n');
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      rows: { type: 'string', default: 'zoo100,zoo1000,small10000' },
      backend: { type: 'string', default: 'cpu' },
      threads: { type: 'string' },
      'budget-s': { type: 'string', default: '280' },
      ticks: { type: 'string', default: '100' },
      'serve-s': { type: 'string', default: '5' },
      connections: { type: 'string', default: '64' },
      'slo-ms': { type: 'string', default: '50' },
      'small-sizes': { type: 'string', default: '256,256,256,16' },
      nvcc: { type: 'boolean', default: false },
      work: { type: 'string' },
      out: { type: 'string', default: path.join(ROOT, 'bench/results') },
    },
  });
  const started = performance.now();
  const budgetS = Number(a['budget-s']);
  if (!(budgetS > 0)) throw new Error(`--budget-s must be a positive number of seconds, got '${a['budget-s']}'`);
  const budget: Budget = { end: started + budgetS * 1000, left: () => (started + budgetS * 1000 - performance.now()) / 1000 };
  const smallSizes = a['small-sizes']!.split(',').map(Number);
  const specs = listFlag(a.rows!).map((s) => rowSpec(s, smallSizes));
  if (!existsSync(path.join(ROOT, 'dist/src/cli/main.js'))) throw new Error('dist/ is missing: run `npm run build` first (compile and serve run bin/loom.js)');
  const o: Options = {
    backend: a.backend!,
    threads: a.threads,
    ticks: Number(a.ticks),
    serveS: Number(a['serve-s']),
    connections: Number(a.connections),
    sloMs: Number(a['slo-ms']),
    nvcc: a.nvcc!,
    work: a.work ?? mkdtempSync(path.join(os.tmpdir(), 'loom-tenant-scale-')),
    keep: a.work !== undefined,
  };
  const rows: RowResult[] = [];
  try {
    for (const spec of specs) rows.push(await measureRow(spec, o, budget));
  } finally {
    if (!o.keep) rmSync(o.work, { recursive: true, force: true });
  }
  const device = o.device ?? os.cpus()[0]?.model ?? 'cpu';
  const elapsedS = round((performance.now() - started) / 1000, 1);
  process.stdout.write(
    `\ntenant scale: backend ${o.backend}, ${device}, ${os.cpus().length} cores, load average ${os.loadavg()[0]!.toFixed(1)}; ${o.ticks} ticks a row; serve: 10% of the tenants active, ${o.connections} connections, ${o.serveS} s, sloMs ${o.sloMs}; ${elapsedS} s of a ${budgetS} s budget\n`,
  );
  process.stdout.write(`${formatRows(rows)}\n`);
  for (const r of rows) for (const s of r.skipped) process.stdout.write(`${r.row}: skipped ${s}\n`);
  const bad = rows.filter((r) => r.serve && r.serve.lost + r.serve.duplicated + r.serve.mismatched > 0);
  if (bad.length > 0) process.stdout.write(`ACCOUNTING FAILED: ${bad.map((r) => r.row).join(', ')}\n`);
  const json = {
    ...runHeader('tenant-scale', device),
    backend: o.backend,
    elapsedS,
    rows,
  };
  writeResultJson(a.out!, device, 'tenant-scale', json);
  if (bad.length > 0) process.exitCode = 1;
}

runIfMain(import.meta.url, main);
