// Benchmark (not a test): does a flooding tenant move the other tenants' latency? Compiles a mixed fleet,
// starts `loom serve` as a child process (needs a built dist/: `npm run build`), drives every other tenant
// with open-loop Poisson arrivals at a fixed rate, and measures their p50/p99 alone, then while one tenant
// floods (a moderate flood: 8 requests in flight, retried at once on 429; a hammer: 64 in flight). Prints a
// table and writes JSON under bench/results/.
//   npx tsx bench/serve-isolation.ts [--seconds 8] [--rate 40] [--backend cpu] [--threads N] [--out bench/results/serve-isolation.json]
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readPlanDir } from '../codegen/index.js';
import { generateModel } from '../models/index.js';
import { compileFleet } from '../src/fleet/compile.js';
import { exampleInputs } from '../src/fleet/inputs.js';
import { oipDatatype, tensorToJson } from '../runtime/serve/index.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    rate: { type: 'string', default: '40' },
    backend: { type: 'string', default: 'cpu' },
    threads: { type: 'string' }, // the CPU backend's worker threads (default: all cores)
    out: { type: 'string', default: path.join(ROOT, 'bench/results/serve-isolation.json') },
  },
});
const SECONDS = Number(args.seconds);
const RATE = Number(args.rate); // requests per second per victim tenant

const FLOODER = 'mlp-0';
const FLEET = [
  ...Array.from({ length: 5 }, (_, i) => ({ id: `mlp-${i}`, kind: 'mlp' as const, opts: { seed: 10 + i, sizes: [256, 512, 256, 10] }, maxBatch: 8 })),
  { id: 'mlp-wide', kind: 'mlp' as const, opts: { seed: 20, sizes: [128, 1024, 10], linear: 'matmul' }, maxBatch: 8 },
  { id: 'lstm', kind: 'lstm' as const, opts: { seed: 30, hidden: 64, inputSize: 32, seqLen: 8, classes: 10 }, maxBatch: 8 },
  {
    id: 'encoder',
    kind: 'encoder' as const,
    opts: { seed: 40, layers: 2, hidden: 64, heads: 2, ffn: 128, seq: 16, vocabSize: 100, maxPositions: 32 },
    maxBatch: 4,
  },
];
const SLO_MS = 200;

async function compile(): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'loom-bench-serve-'));
  mkdirSync(path.join(dir, 'models'));
  for (const t of FLEET) writeFileSync(path.join(dir, 'models', `${t.id}.onnx`), generateModel(t.kind, t.opts as never).bytes);
  writeFileSync(
    path.join(dir, 'fleet.json'),
    JSON.stringify({ tenants: FLEET.map((t) => ({ id: t.id, model: `models/${t.id}.onnx`, maxBatch: t.maxBatch, sloMs: SLO_MS })), precision: 'fp32' }),
  );
  await compileFleet(path.join(dir, 'fleet.json'), path.join(dir, 'plan'), { nvcc: 'off' });
  return path.join(dir, 'plan');
}

function startServer(plan: string): Promise<{ proc: ChildProcess; url: string }> {
  if (!existsSync(path.join(ROOT, 'dist/src/cli/serve.js'))) throw new Error('dist/ has no serve command: run `npm run build` first');
  const proc = spawn(
    process.execPath,
    [
      path.join(ROOT, 'bin/loom.js'),
      'serve',
      plan,
      '--port',
      '0',
      '--backend',
      args.backend!,
      '--log-level',
      'warn',
      ...(args.threads ? ['--threads', args.threads] : []),
    ],
    { stdio: ['ignore', 'inherit', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /serving .* at (http:\/\/[^\s]+) /.exec(err);
      if (m) resolve({ proc, url: m[1]! });
    });
    proc.on('exit', (code) => reject(new Error(`loom serve exited (${code}): ${err}`)));
  });
}

function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))]!;
}

interface VictimStats {
  sent: number;
  ok: number;
  refused: number;
  failed: number;
  latencies: number[];
}

async function post(url: string, body: string): Promise<number> {
  const r = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  await r.arrayBuffer();
  return r.status;
}

// Open loop: arrivals do not wait for answers, so a slow server shows as latency, not as a lower rate.
async function victim(url: string, body: string, rate: number, until: number, stats: VictimStats): Promise<void> {
  const inflight: Promise<void>[] = [];
  let next = performance.now();
  while (next < until) {
    const wait = next - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const t0 = performance.now();
    stats.sent++;
    inflight.push(
      post(url, body).then(
        (status) => {
          if (status === 200) {
            stats.ok++;
            stats.latencies.push(performance.now() - t0);
          } else if (status === 429) stats.refused++;
          else stats.failed++;
        },
        () => {
          stats.failed++;
        },
      ),
    );
    next += -Math.log(1 - Math.random()) * (1000 / rate);
  }
  await Promise.all(inflight);
}

interface FloodStats {
  sent: number;
  ok: number;
  refused: number;
}

async function flooder(url: string, body: string, inFlight: number, until: number, stats: FloodStats): Promise<void> {
  const worker = async () => {
    while (performance.now() < until) {
      stats.sent++;
      const status = await post(url, body).catch(() => 0);
      if (status === 200) stats.ok++;
      else if (status === 429) stats.refused++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
}

async function scrape(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const get = (re: RegExp) => Number(re.exec(text)?.[1] ?? Number.NaN);
  return {
    ticks: get(/^loom_ticks_total\{result="ok"\} (\S+)$/m),
    tickSeconds: get(/^loom_tick_duration_seconds_sum (\S+)$/m),
    occupancySum: get(/^loom_tick_occupancy_ratio_sum (\S+)$/m),
    sloMissed: [...text.matchAll(/^loom_slo_missed_total\{[^}]*\} (\S+)$/gm)].reduce((a, m) => a + Number(m[1]), 0),
  };
}

interface PhaseResult {
  readonly phase: string;
  readonly flood: { readonly inFlight: number; readonly sent: number; readonly answered: number; readonly refused: number } | null;
  readonly victims: Record<string, { sent: number; ok: number; refused: number; failed: number; p50Ms: number; p99Ms: number }>;
  readonly victimsAll: { readonly ok: number; readonly p50Ms: number; readonly p99Ms: number; readonly refused: number; readonly failed: number };
  readonly answeredPerS: number;
  readonly ticksPerS: number;
  readonly meanTickMs: number;
  readonly meanOccupancy: number;
  readonly sloMissed: number;
}

async function phase(name: string, url: string, bodies: Map<string, string>, floodInFlight: number | null): Promise<PhaseResult> {
  const before = await scrape(url);
  const until = performance.now() + SECONDS * 1000;
  const victims = FLEET.filter((t) => t.id !== FLOODER);
  const stats = new Map(victims.map((t) => [t.id, { sent: 0, ok: 0, refused: 0, failed: 0, latencies: [] } as VictimStats]));
  const flood: FloodStats = { sent: 0, ok: 0, refused: 0 };
  const t0 = performance.now();
  await Promise.all([
    ...victims.map((t) => victim(`${url}/v2/models/${t.id}/infer`, bodies.get(t.id)!, RATE, until, stats.get(t.id)!)),
    ...(floodInFlight !== null ? [flooder(`${url}/v2/models/${FLOODER}/infer`, bodies.get(`${FLOODER}:full`)!, floodInFlight, until, flood)] : []),
  ]);
  const elapsed = (performance.now() - t0) / 1000;
  const after = await scrape(url);
  const ticks = after.ticks! - before.ticks!;
  const all = [...stats.values()].flatMap((s) => s.latencies);
  const okAll = [...stats.values()].reduce((a, s) => a + s.ok, 0);
  return {
    phase: name,
    flood: floodInFlight === null ? null : { inFlight: floodInFlight, sent: flood.sent, answered: flood.ok, refused: flood.refused },
    victims: Object.fromEntries(
      [...stats].map(([id, s]) => [
        id,
        { sent: s.sent, ok: s.ok, refused: s.refused, failed: s.failed, p50Ms: percentile(s.latencies, 0.5), p99Ms: percentile(s.latencies, 0.99) },
      ]),
    ),
    victimsAll: {
      ok: okAll,
      p50Ms: percentile(all, 0.5),
      p99Ms: percentile(all, 0.99),
      refused: [...stats.values()].reduce((a, s) => a + s.refused, 0),
      failed: [...stats.values()].reduce((a, s) => a + s.failed, 0),
    },
    answeredPerS: (okAll + flood.ok) / elapsed,
    ticksPerS: ticks / elapsed,
    meanTickMs: ((after.tickSeconds! - before.tickSeconds!) / ticks) * 1000,
    meanOccupancy: (after.occupancySum! - before.occupancySum!) / ticks,
    sloMissed: after.sloMissed! - before.sloMissed!,
  };
}

function table(results: readonly PhaseResult[]): string {
  // the baseline: the mean of the 'alone' phases (run before and between the floods, to show the noise)
  const alone = results.filter((r) => r.flood === null);
  const base = alone.reduce((a, r) => a + r.victimsAll.p99Ms, 0) / alone.length;
  const rows = [
    [
      'phase',
      'victim p50 ms',
      'victim p99 ms',
      'p99 vs alone (mean)',
      'victim 429',
      'flood answered/s',
      'flood 429/s',
      'answered/s',
      'ticks/s',
      'tick ms',
      'occupancy',
      'slo missed',
    ],
  ];
  for (const r of results) {
    rows.push([
      r.phase,
      r.victimsAll.p50Ms.toFixed(2),
      r.victimsAll.p99Ms.toFixed(2),
      `${r.victimsAll.p99Ms >= base ? '+' : ''}${(((r.victimsAll.p99Ms - base) / base) * 100).toFixed(1)}%`,
      String(r.victimsAll.refused),
      r.flood ? (r.flood.answered / SECONDS).toFixed(0) : '-',
      r.flood ? (r.flood.refused / SECONDS).toFixed(0) : '-',
      r.answeredPerS.toFixed(0),
      r.ticksPerS.toFixed(0),
      r.meanTickMs.toFixed(2),
      r.meanOccupancy.toFixed(2),
      String(r.sloMissed),
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join('  ')).join('\n');
}

async function main(): Promise<void> {
  process.stderr.write(`compiling ${FLEET.length} tenants...\n`);
  const planDir = await compile();
  const plan = readPlanDir(planDir);
  const bodies = new Map<string, string>();
  const body = (id: string, rows: number) => {
    const t = plan.tenants.find((x) => x.id === id)!;
    const x = exampleInputs(t, rows, 1, 100);
    return JSON.stringify({ inputs: Object.entries(x).map(([name, v]) => ({ name, shape: v.shape, datatype: oipDatatype(v.dtype), data: tensorToJson(v) })) });
  };
  for (const t of FLEET) bodies.set(t.id, body(t.id, 1));
  bodies.set(`${FLOODER}:full`, body(FLOODER, FLEET.find((t) => t.id === FLOODER)!.maxBatch));
  const { proc, url } = await startServer(planDir);
  try {
    process.stderr.write(`server at ${url}; warm-up...\n`);
    await phase('warm-up', url, bodies, null).catch(() => undefined);
    const results: PhaseResult[] = [];
    for (const [name, flood] of [
      ['alone', null],
      ['flood x8', 8],
      ['alone (again)', null],
      ['hammer x64', 64],
    ] as const) {
      process.stderr.write(`phase ${name} (${SECONDS} s)...\n`);
      results.push(await phase(name, url, bodies, flood));
    }
    const text = table(results);
    process.stdout.write(
      `\nserve isolation: ${FLEET.length - 1} victim tenants at ${RATE} req/s each (1 row, open loop), '${FLOODER}' flooding with ${FLEET.find((t) => t.id === FLOODER)!.maxBatch}-row requests; sloMs ${SLO_MS}; backend ${args.backend}${args.threads ? ` (${args.threads} threads)` : ''}; ${os.cpus().length} CPU cores, load average ${os.loadavg()[0]!.toFixed(1)} at the end\n\n${text}\n`,
    );
    mkdirSync(path.dirname(args.out!), { recursive: true });
    writeFileSync(
      args.out!,
      `${JSON.stringify({ date: new Date().toISOString(), machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? '', node: process.version }, backend: args.backend, threads: args.threads ?? null, loadAverage1m: os.loadavg()[0], seconds: SECONDS, ratePerVictim: RATE, sloMs: SLO_MS, flooder: FLOODER, fleet: FLEET.map((t) => ({ id: t.id, kind: t.kind, maxBatch: t.maxBatch })), launchesPerTick: plan.launches.length, results }, null, 1)}\n`,
    );
    process.stdout.write(`\nwrote ${path.relative(process.cwd(), args.out!)}\n`);
  } finally {
    proc.kill('SIGTERM');
  }
}

await main();
