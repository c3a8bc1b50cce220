// Host overhead of a tick: `LoadedPlan.runTick` wall time from JS (validate + pack inputs, N-API, the
// libuv thread-pool handoff, results back, unpack) minus the native tick (the executor's own time for
// copy in, launches, copy out; handleInfo().lastTickUs). Fleets whose native tick is tiny, so what is
// left is the JS/N-API path that every backend shares:
//   mlp64  — 64 × MLP 784-16-16-10 at batch 1 (the I/O of issue 5's 64 × MLP 784-512-512-10, tiny compute)
//   demo   — the `loom demo` fleet (16 tenants, mixed models), batch 1; by default only on a GPU (its CPU
//            tick takes most of a second, so on the CPU backend it runs only with --only demo, at most 20 ticks)
// Writes bench/results/<date>-<cpu or card>-host-overhead.json (and a copy under $OUT when set), prints a table.
//   usage: tsx bench/host-overhead.ts [--iters N] [--only mlp64|demo] [--backend auto|cpu|cuda] [--threads N]
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Tensor } from '../ir/tensor.js';
import { type LoadedPlan, loadPlan, nativeAddonInfo } from '../runtime/index.js';
import { compileFleet } from '../src/fleet/compile.js';
import { demoFleet, writeDemoFleet } from '../src/fleet/demo.js';
import { exampleInputs } from '../src/fleet/inputs.js';
import { alignTable, quantile, resultFile, writeMlpFleet } from './common.js';
import { type TickPhases, tickPhases } from './tick-phases.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const ITERS = Number(arg('--iters') ?? 2000);
const ONLY = arg('--only');
const BACKEND = (arg('--backend') ?? 'auto') as 'auto' | 'cpu' | 'cuda';
const THREADS = arg('--threads') !== undefined ? Number(arg('--threads')) : 1;

interface Spread {
  median: number;
  p10: number;
  p90: number;
}

interface FleetResult {
  fleet: string;
  backend: string;
  tenants: number;
  ticks: number;
  inputBytes: number; // per tick, all tenants
  outputBytes: number;
  runTickUs: Spread; // JS wall time of `await runTick(inputs)`
  nativeUs: Spread; // the executor's time for the same ticks
  hostOverheadUs: Spread; // per tick: runTick - native
  phases: TickPhases; // bench/tick-phases.ts: medians per phase of the same path, one tick at a time
}

function spread(xs: readonly number[]): Spread {
  return { median: quantile(xs, 0.5), p10: quantile(xs, 0.1), p90: quantile(xs, 0.9) };
}

async function measure(name: string, planDir: string, iters = ITERS): Promise<FleetResult> {
  const loaded: LoadedPlan = await loadPlan(planDir, { backend: BACKEND, threads: THREADS });
  try {
    const inputs: Record<string, Record<string, Tensor>> = {};
    loaded.plan.tenants.forEach((t, i) => {
      inputs[t.id] = exampleInputs(t, 1, 1000 + i);
    });
    const bytes = (key: 'inputs' | 'outputs'): number => loaded.plan.tenants.reduce((a, t) => a + t[key].reduce((b, io) => b + io.bytes, 0), 0);
    for (let i = 0; i < Math.min(200, iters); i++) await loaded.runTick(inputs);
    const wall: number[] = [];
    const native: number[] = [];
    const over: number[] = [];
    for (let i = 0; i < iters; i++) {
      const t0 = process.hrtime.bigint();
      await loaded.runTick(inputs);
      const us = Number(process.hrtime.bigint() - t0) / 1e3;
      const n = Number(loaded.backendInfo().lastTickUs);
      wall.push(us);
      native.push(n);
      over.push(us - n);
    }
    return {
      fleet: name,
      backend: loaded.backend,
      tenants: loaded.plan.tenants.length,
      ticks: iters,
      inputBytes: bytes('inputs'),
      outputBytes: bytes('outputs'),
      runTickUs: spread(wall),
      nativeUs: spread(native),
      hostOverheadUs: spread(over),
      phases: await tickPhases(loaded, inputs, iters),
    };
  } finally {
    loaded.close();
  }
}

// nvcc only where the plan will run on a GPU (a CPU-only run needs no cubin).
const NVCC: 'auto' | 'off' = BACKEND !== 'cpu' && nativeAddonInfo().cudaDevices ? 'auto' : 'off';

async function main(): Promise<void> {
  const addon = nativeAddonInfo();
  const results: FleetResult[] = [];
  const work = mkdtempSync(path.join(os.tmpdir(), 'loom-host-'));
  try {
    if (!ONLY || ONLY === 'mlp64') {
      const dir = path.join(work, 'mlp64');
      await compileFleet(writeMlpFleet(dir, [784, 16, 16, 10]), path.join(dir, 'plan'), { nvcc: NVCC });
      results.push(await measure('64 x MLP 784-16-16-10', path.join(dir, 'plan')));
    }
    if (ONLY === 'demo' || (!ONLY && NVCC === 'auto')) {
      const dir = path.join(work, 'demo');
      await compileFleet(writeDemoFleet(dir, demoFleet(false)), path.join(dir, 'plan'), { nvcc: NVCC });
      results.push(await measure('demo (loom demo fleet)', path.join(dir, 'plan'), NVCC === 'auto' ? ITERS : Math.min(ITERS, 20)));
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const date = new Date().toISOString().slice(0, 10);
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  const card = results.some((r) => r.backend === 'cuda') ? String(addon.gpu?.name ?? 'unknown GPU') : null;
  const machine = card ?? `${os.cpus().length}cpu`;
  const report = {
    date,
    cpu,
    cores: os.cpus().length,
    card,
    node: process.version,
    command: `tsx bench/host-overhead.ts${args.length ? ` ${args.join(' ')}` : ''}`,
    iters: ITERS,
    threads: THREADS,
    results,
  };
  const outDir = path.join(ROOT, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const file = resultFile(outDir, machine, 'host-overhead', 'json');
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  if (process.env.OUT) copyFileSync(file, path.join(process.env.OUT, path.basename(file)));

  process.stdout.write(
    `\nLoom host overhead per tick — ${card ?? cpu} (${os.cpus().length} cores, node ${process.version}), ${date}, up to ${ITERS} ticks\n\n`,
  );
  const head = ['fleet', 'backend', 'tenants', 'in KB', 'out KB', 'runTick µs', 'native µs', 'host µs', 'host p90'];
  const body = results.map((r) => [
    r.fleet,
    r.backend,
    String(r.tenants),
    (r.inputBytes / 1024).toFixed(1),
    (r.outputBytes / 1024).toFixed(1),
    r.runTickUs.median.toFixed(1),
    r.nativeUs.median.toFixed(1),
    r.hostOverheadUs.median.toFixed(1),
    r.hostOverheadUs.p90.toFixed(1),
  ]);
  process.stdout.write(`${alignTable(head, body, 2).join('\n')}\n`);
  process.stdout.write(`\n(host = runTick wall - the executor's native tick, per tick; medians unless noted)\n`);
  const phaseHead = ['fleet', 'check', 'write', 'submit', 'settle', 'native', 'hop', 'settle call', 'unpack', 'total'];
  const phaseBody = results.map((r) => [
    r.fleet,
    ...[
      r.phases.checkUs,
      r.phases.writeUs,
      r.phases.submitUs,
      r.phases.settleUs,
      r.phases.nativeUs,
      r.phases.handBackUs,
      r.phases.settleCallUs,
      r.phases.unpackUs,
      r.phases.totalUs,
    ].map((v) => v.toFixed(1)),
  ]);
  process.stdout.write(`\n${alignTable(phaseHead, phaseBody, 2).join('\n')}\n`);
  process.stdout.write(
    `(µs, medians, bench/tick-phases.ts: settle = submitTick returned → promise resolved; native = the executor's submit → tick done;\n` +
      ` hop = the waiter saw the tick done → the JS thread settles it; settle call = result buffer + resolve)\nwrote ${path.relative(ROOT, file)}\n`,
  );
}

await main();
