// Benchmark (not a test): does batching the next tick while one runs (the scheduler's `pipeline`) change
// what `loom serve` delivers? One in-process server per mode over the same compiled mixed fleet, closed-loop
// HTTP clients on loopback spread over every tenant, rounds alternating the modes so a noisy host hits both
// alike. Prints a table (answered/s, latency p50/p99, rows per tick) and writes JSON under bench/results/.
//   npx tsx bench/serve-pipeline.ts [--seconds 4] [--rounds 3] [--clients 32] [--backend cpu] [--out file]
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readPlanDir } from '../codegen/index.js';
import { generateModel } from '../models/index.js';
import { loadPlan } from '../runtime/index.js';
import { percentile } from '../src/measure/stats.js';
import { compileFleet } from '../src/fleet/compile.js';
import { exampleInputs } from '../src/fleet/inputs.js';
import { createServer, oipDatatype, tensorToJson } from '../runtime/serve/index.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '3' },
    clients: { type: 'string', default: '32' },
    backend: { type: 'string', default: 'cpu' },
    out: { type: 'string' },
  },
});
const SECONDS = Number(args.seconds);
const ROUNDS = Number(args.rounds);
const CLIENTS = Number(args.clients);

const FLEET = [
  ...Array.from({ length: 4 }, (_, i) => ({ id: `mlp-${i}`, kind: 'mlp' as const, opts: { seed: 10 + i, sizes: [256, 512, 256, 10] }, maxBatch: 8 })),
  { id: 'lstm', kind: 'lstm' as const, opts: { seed: 30, hidden: 64, inputSize: 32, seqLen: 8, classes: 10 }, maxBatch: 8 },
  {
    id: 'encoder',
    kind: 'encoder' as const,
    opts: { seed: 40, layers: 2, hidden: 64, heads: 2, ffn: 128, seq: 16, vocabSize: 100, maxPositions: 32 },
    maxBatch: 4,
  },
];

async function compile(): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'loom-bench-pipeline-'));
  mkdirSync(path.join(dir, 'models'));
  for (const t of FLEET) writeFileSync(path.join(dir, 'models', `${t.id}.onnx`), generateModel(t.kind, t.opts as never).bytes);
  writeFileSync(
    path.join(dir, 'fleet.json'),
    JSON.stringify({ tenants: FLEET.map((t) => ({ id: t.id, model: `models/${t.id}.onnx`, maxBatch: t.maxBatch })), precision: 'fp32' }),
  );
  await compileFleet(path.join(dir, 'fleet.json'), path.join(dir, 'plan'), { nvcc: 'off' });
  return path.join(dir, 'plan');
}

interface RunResult {
  readonly pipeline: boolean;
  readonly round: number;
  readonly answered: number;
  readonly answeredPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly ticks: number;
  readonly requestsPerTick: number;
  readonly other: number; // non-200 answers
}

async function run(planDir: string, bodies: readonly { url: string; body: string }[], pipeline: boolean, round: number): Promise<RunResult> {
  const loaded = await loadPlan(planDir, { backend: args.backend as 'cpu' | 'cuda' });
  const server = createServer({ runner: loaded, scheduler: { pipeline, queueTicks: 64 }, logger: false });
  const base = await server.listen(0, '127.0.0.1');
  const lat: number[] = [];
  let other = 0;
  const until = performance.now() + SECONDS * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      for (let k = c; performance.now() < until; k += CLIENTS) {
        const b = bodies[k % bodies.length]!;
        const s = performance.now();
        const r = await fetch(base + b.url, { method: 'POST', body: b.body });
        await r.arrayBuffer();
        if (r.status === 200) lat.push(performance.now() - s);
        else other++;
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  const text = await (await fetch(`${base}/metrics`)).text();
  const ticks = Number(/^loom_ticks_total\{result="ok"\} (\S+)$/m.exec(text)?.[1] ?? 0);
  await server.shutdown();
  const sorted = [...lat].sort((a, b) => a - b);
  return {
    pipeline,
    round,
    answered: lat.length,
    answeredPerS: lat.length / elapsed,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    ticks,
    requestsPerTick: ticks > 0 ? lat.length / ticks : 0,
    other,
  };
}

async function main(): Promise<void> {
  process.stderr.write(`compiling ${FLEET.length} tenants...\n`);
  const planDir = await compile();
  const plan = readPlanDir(planDir);
  const bodies = plan.tenants.map((t, i) => {
    const x = exampleInputs(t, 1, 100 + i, 100);
    return {
      url: `/v2/models/${t.id}/infer`,
      body: JSON.stringify({ inputs: Object.entries(x).map(([name, v]) => ({ name, shape: v.shape, datatype: oipDatatype(v.dtype), data: tensorToJson(v) })) }),
    };
  });
  await run(planDir, bodies, true, -1); // warm-up
  const results: RunResult[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (const pipeline of r % 2 === 0 ? [true, false] : [false, true]) {
      process.stderr.write(`round ${r + 1}/${ROUNDS}, pipeline ${pipeline ? 'on' : 'off'} (${SECONDS} s)...\n`);
      results.push(await run(planDir, bodies, pipeline, r));
    }
  }
  const rows = [['pipeline', 'round', 'answered/s', 'p50 ms', 'p99 ms', 'ticks', 'requests/tick', 'non-200']];
  for (const r of results)
    rows.push([
      r.pipeline ? 'on' : 'off',
      String(r.round + 1),
      r.answeredPerS.toFixed(0),
      r.p50Ms.toFixed(2),
      r.p99Ms.toFixed(2),
      String(r.ticks),
      r.requestsPerTick.toFixed(2),
      String(r.other),
    ]);
  const mean = (on: boolean, f: (r: RunResult) => number) => {
    const xs = results.filter((r) => r.pipeline === on).map(f);
    return xs.reduce((a, b) => a + b, 0) / xs.length;
  };
  for (const on of [true, false])
    rows.push([
      on ? 'on' : 'off',
      'mean',
      mean(on, (r) => r.answeredPerS).toFixed(0),
      mean(on, (r) => r.p50Ms).toFixed(2),
      mean(on, (r) => r.p99Ms).toFixed(2),
      '',
      mean(on, (r) => r.requestsPerTick).toFixed(2),
      '',
    ]);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  process.stdout.write(
    `\nserve pipelining: ${FLEET.length} tenants, ${CLIENTS} closed-loop clients (1-row requests, round robin over tenants), ${SECONDS} s per run, backend ${args.backend}; ${cpu} x${os.cpus().length}, load ${os.loadavg()[0]!.toFixed(1)}\n\n`,
  );
  process.stdout.write(`${rows.map((r) => r.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join('  ')).join('\n')}\n`);
  const out = args.out ?? path.join(ROOT, 'bench/results', `${new Date().toISOString().slice(0, 10)}-${args.backend}-serve-pipeline.json`);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(
    out,
    `${JSON.stringify({ date: new Date().toISOString(), machine: { cpu, cpus: os.cpus().length, node: process.version, loadAverage1m: os.loadavg()[0] }, backend: args.backend, seconds: SECONDS, clients: CLIENTS, fleet: FLEET.map((t) => ({ id: t.id, kind: t.kind, maxBatch: t.maxBatch })), launchesPerTick: plan.launches.length, results }, null, 1)}\n`,
  );
  process.stdout.write(`\nwrote ${path.relative(process.cwd(), out)}\n`);
}

await main();
