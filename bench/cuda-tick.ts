// Tick time of the CUDA backend with the captured CUDA graph, for two fleets:
//   demo   — the `loom demo` fleet (16 tenants: 8 MLPs, 4 LSTMs, 2 ResNet-18, 2 encoders; maxBatch 4)
//   mlp64  — 64 × MLP 784-512-512-10 (different weights each) at batch 1
// For each: graph replays (median of many; host steady clock around launch + sync, and CUDA events), the
// end-to-end runTick from JS, launches per tick (kernel nodes in the graph), and weight bytes / tick time
// against the card's nominal memory bandwidth (the batch-1 floor of a tick is all weights read once).
// Writes bench/results/<date>-<card>-cuda-tick.json (and a copy under $OUT when set) and prints a table.
//   usage: tsx bench/cuda-tick.ts [--iters N] [--only demo|mlp64]
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Tensor } from '../ir/tensor.js';
import { type LoadedPlan, loadPlan, nativeAddonInfo } from '../runtime/index.js';
import { compileFleet } from '../src/fleet/compile.js';
import { demoFleet, writeDemoFleet } from '../src/fleet/demo.js';
import { exampleInputs } from '../src/fleet/inputs.js';
import { alignTable, quantile, resultFile, writeMlpFleet } from './common.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const ITERS = Number(arg('--iters') ?? 500);
const ONLY = arg('--only');

interface FleetResult {
  fleet: string;
  tenants: number;
  maxBatch: number;
  rowsPerTenant: number;
  planLaunches: number;
  launchesPerTick: number; // kernel nodes in the captured graph (cuBLAS kernels + generated + epilogues)
  memcpyNodes: number;
  cublasCalls: number;
  generatedKernelLaunches: number;
  epilogueLaunches: number; // epilogue kernels left in the tick (LOOM_CUDA_FUSE=auto fuses the rest into their GEMMs)
  fusedEpilogues: number;
  ltCalls: number;
  gemmPaths: string; // per gemm launch, the path chosen at load
  weightBytes: number;
  graphWallUs: { median: number; p10: number; p90: number };
  graphDeviceUsMedian: number;
  runTickMsMedian: number; // from JS: pack, copy to pinned staging, graph, copy back, unpack
  weightGBps: number; // weight bytes / median device tick time
  floorUs: number; // weight bytes / nominal bandwidth
  ofNominal: number; // floorUs / median device tick time
  predictedTickUs: number; // the planner's cost model
  compileS: number;
  groupedNote: string; // how gemm_grouped launches run (backend_cuda.cc choose_grouped)
  // One eager tick with an event between launches: where the device time goes.
  profile: {
    eagerTotalUs: number;
    byKind: Record<string, { launches: number; us: number }>;
    top: Array<{ id: number; kind: string; label: string; us: number }>;
  };
}

function nominal(card: string): { bytesPerS: number; label: string } {
  if (/H200/i.test(card)) return { bytesPerS: 4.8e12, label: 'H200 HBM3e ~4.8 TB/s' };
  if (/H100/i.test(card)) return { bytesPerS: 3.0e12, label: 'H100 ~3 TB/s (issue 4: H100 copy bandwidth)' };
  return { bytesPerS: 3.0e12, label: `unknown card, assumed ~3 TB/s` };
}

async function measure(name: string, planDir: string, rows: number, compileS: number, bw: number): Promise<FleetResult> {
  const loaded: LoadedPlan = await loadPlan(planDir, { backend: 'cuda' });
  try {
    const plan = loaded.plan;
    const inputs: Record<string, Record<string, Tensor>> = {};
    plan.tenants.forEach((t, i) => {
      inputs[t.id] = exampleInputs(t, rows, 1000 + i);
    });
    for (let i = 0; i < 5; i++) await loaded.runTick(inputs);
    const e2e: number[] = [];
    for (let i = 0; i < 50; i++) {
      const t0 = process.hrtime.bigint();
      await loaded.runTick(inputs);
      e2e.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const { wallUs, deviceUs } = loaded.benchTick(ITERS);
    const prof = loaded.profileTick();
    const byId = new Map(plan.launches.map((l) => [l.id, l]));
    const kindOf = (id: number): string => {
      const l = byId.get(id)!;
      return l.kind === 'kernel' ? `kernel:${l.op.op}` : l.kind === 'gemm' ? (l.strides ? 'gemm strided' : 'gemm batched') : 'gemm_grouped';
    };
    const byKind: FleetResult['profile']['byKind'] = {};
    for (const p of prof) {
      const k = (byKind[kindOf(p.id)] ??= { launches: 0, us: 0 });
      k.launches++;
      k.us += p.us;
    }
    const top = [...prof]
      .sort((a, b) => b.us - a.us)
      .slice(0, 8)
      .map((p) => ({ id: p.id, kind: kindOf(p.id), label: byId.get(p.id)!.info.label, us: p.us }));
    const info = loaded.backendInfo();
    if (info.graph !== 1) process.stdout.write(`warning: ${name} runs without a CUDA graph: ${String(info.graphNote)}\n`);
    const weightBytes = plan.arenas.weights;
    const dev = quantile(deviceUs, 0.5);
    const floorUs = (weightBytes / bw) * 1e6;
    return {
      fleet: name,
      tenants: plan.tenants.length,
      maxBatch: Math.max(...plan.tenants.map((t) => t.maxBatch)),
      rowsPerTenant: rows,
      planLaunches: plan.launches.length,
      launchesPerTick: Number(info.kernelNodes),
      memcpyNodes: Number(info.memcpyNodes),
      cublasCalls: Number(info.cublasCalls),
      generatedKernelLaunches: Number(info.generatedKernelLaunches),
      epilogueLaunches: Number(info.epilogueLaunches),
      fusedEpilogues: Number(info.fusedEpilogues ?? 0),
      ltCalls: Number(info.ltCalls ?? 0),
      gemmPaths: String(info.gemmPaths ?? ''),
      weightBytes,
      graphWallUs: { median: quantile(wallUs, 0.5), p10: quantile(wallUs, 0.1), p90: quantile(wallUs, 0.9) },
      graphDeviceUsMedian: dev,
      runTickMsMedian: quantile(e2e, 0.5),
      weightGBps: weightBytes / (dev * 1e-6) / 1e9,
      floorUs,
      ofNominal: floorUs / dev,
      predictedTickUs: plan.cost.predictedTickUs,
      compileS,
      groupedNote: String(info.groupedNote ?? 'no gemm_grouped launches'),
      profile: { eagerTotalUs: prof.reduce((a, p) => a + p.us, 0), byKind, top },
    };
  } finally {
    loaded.close();
  }
}

async function compileDemo(dir: string): Promise<number> {
  const t0 = Date.now();
  await compileFleet(writeDemoFleet(dir, demoFleet(false)), path.join(dir, 'plan'), {});
  return (Date.now() - t0) / 1000;
}

async function compileMlp64(dir: string): Promise<number> {
  const t0 = Date.now();
  await compileFleet(writeMlpFleet(dir, [784, 512, 512, 10]), path.join(dir, 'plan'), {});
  return (Date.now() - t0) / 1000;
}

async function main(): Promise<void> {
  const addon = nativeAddonInfo();
  if (!addon.backends.includes('cuda') || !addon.cudaDevices) {
    process.stdout.write('bench/cuda-tick: needs the addon built with the CUDA backend and a visible GPU; nothing to measure here\n');
    return;
  }
  const gpu = addon.gpu ?? {};
  const card = String(gpu.name ?? 'unknown GPU');
  const bw = nominal(card);
  const results: FleetResult[] = [];
  const work = mkdtempSync(path.join(os.tmpdir(), 'loom-bench-'));
  try {
    if (!ONLY || ONLY === 'demo') {
      const dir = path.join(work, 'demo');
      const s = await compileDemo(dir);
      results.push(await measure('demo (loom demo fleet)', path.join(dir, 'plan'), 1, s, bw.bytesPerS));
    }
    if (!ONLY || ONLY === 'mlp64') {
      const dir = path.join(work, 'mlp64');
      const s = await compileMlp64(dir);
      results.push(await measure('64 x MLP 784-512-512-10', path.join(dir, 'plan'), 1, s, bw.bytesPerS));
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const date = new Date().toISOString().slice(0, 10);
  const report = {
    date,
    card,
    gpu,
    nominalBandwidth: bw.label,
    command: `tsx bench/cuda-tick.ts${args.length ? ` ${args.join(' ')}` : ''}`,
    iters: ITERS,
    precision: 'fp32 (CUBLAS_COMPUTE_32F, no TF32)',
    results,
  };
  const outDir = path.join(ROOT, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const file = resultFile(outDir, card, 'cuda-tick', 'json');
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  if (process.env.OUT) copyFileSync(file, path.join(process.env.OUT, path.basename(file)));

  process.stdout.write(
    `\nLoom CUDA tick — ${card} (cc ${String(gpu.computeCapability)}, driver ${String(gpu.driver)}, CUDA runtime ${String(gpu.runtime)}, cuBLAS ${String(gpu.cublas)}), ${date}\n`,
  );
  process.stdout.write(`graph replays: ${ITERS} per fleet; bandwidth reference: ${bw.label}\n\n`);
  const head = ['fleet', 'tenants', 'launches', 'weights', 'tick µs', 'device µs', 'runTick ms', 'GB/s', 'floor µs', 'of floor', 'cost µs'];
  const body = results.map((r) => [
    r.fleet,
    String(r.tenants),
    `${r.launchesPerTick}`,
    `${(r.weightBytes / 2 ** 20).toFixed(1)}M`,
    r.graphWallUs.median.toFixed(1),
    r.graphDeviceUsMedian.toFixed(1),
    r.runTickMsMedian.toFixed(2),
    r.weightGBps.toFixed(0),
    r.floorUs.toFixed(1),
    `${(r.ofNominal * 100).toFixed(0)}%`,
    r.predictedTickUs.toFixed(0),
  ]);
  process.stdout.write(`${alignTable(head, body, 1).join('\n')}\n`);
  process.stdout.write(
    `\n(launches = kernel nodes in the tick's CUDA graph; plan launches: ${results.map((r) => `${r.fleet.split(' ')[0]} ${r.planLaunches}`).join(', ')})\n`,
  );
  for (const r of results) {
    process.stdout.write(`\n${r.fleet}: gemm_grouped: ${r.groupedNote}\n`);
    process.stdout.write(`${r.fleet}: one eager tick, device time by launch kind (total ${r.profile.eagerTotalUs.toFixed(0)} µs)\n`);
    for (const [k, v] of Object.entries(r.profile.byKind).sort((a, b) => b[1].us - a[1].us))
      process.stdout.write(`  ${k.padEnd(20)} ${String(v.launches).padStart(4)} launches ${v.us.toFixed(1).padStart(9)} µs\n`);
    process.stdout.write('  slowest launches:\n');
    for (const t of r.profile.top)
      process.stdout.write(`    #${String(t.id).padEnd(5)} ${t.kind.padEnd(18)} ${t.us.toFixed(1).padStart(8)} µs  ${t.label.slice(0, 70)}\n`);
  }
  process.stdout.write(`wrote ${path.relative(ROOT, file)}\n`);
}

await main();
