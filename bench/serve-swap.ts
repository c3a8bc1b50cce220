// Benchmark (not a test): what a hot plan swap costs the tenants it keeps. Compiles two versions of an MLP
// fleet (same tenant ids, other weights, one tenant swapped for another), serves the first in process
// (createServer with the CLI's loader, src/cli/serve-reload.ts) behind a symbolic link, drives the kept
// tenants with closed-loop clients, and swaps back and forth. Prints, per swap, the load and drain times,
// and the kept tenants' latency p50/p99 in steady state vs in the window from a reload's start to 200 ms
// after it ended; failures must be 0. Writes JSON under bench/results/.
//   npx tsx bench/serve-swap.ts [--tenants 24] [--swaps 4] [--clients 8] [--backend cpu] [--threads N] [--intake-threads 0]
// (--intake-threads N: HTTP on N intake workers, which the switch reaches before the reload reports)
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createServer, oipDatatype, tensorToJson } from '../runtime/serve/index.js';
import { loadServeSource } from '../src/cli/serve-reload.js';
import { exampleInputs } from '../src/fleet/inputs.js';
import { compileSwapPlan, switchLink, tempRoot } from '../test/serve/swap-fleet.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const { values: args } = parseArgs({
  options: {
    tenants: { type: 'string', default: '24' },
    swaps: { type: 'string', default: '4' },
    clients: { type: 'string', default: '8' },
    backend: { type: 'string', default: 'cpu' },
    threads: { type: 'string' },
    'intake-threads': { type: 'string', default: '0' },
    out: { type: 'string', default: path.join(ROOT, 'bench/results/serve-swap.json') },
  },
});
const N = Number(args.tenants);
const INTAKE = Number(args['intake-threads']);
const SIZES = [256, 512, 256, 10];

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

async function main(): Promise<void> {
  const root = tempRoot();
  const kept = Array.from({ length: N - 1 }, (_, i) => `mlp-${i}`);
  const t0 = performance.now();
  const a = await compileSwapPlan(root, 'a', [...kept.map((id, i) => ({ id, seed: 100 + i })), { id: 'only-a', seed: 99 }], 0, SIZES);
  const b = await compileSwapPlan(root, 'b', [...kept.map((id, i) => ({ id, seed: 500 + i })), { id: 'only-b', seed: 98 }], 0, SIZES);
  process.stdout.write(`compiled two ${N}-tenant plans in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  const link = path.join(root, 'current');
  switchLink(link, a);
  const src = {
    dir: link,
    backend: args.backend as 'cpu' | 'cuda',
    ...(args.threads !== undefined ? { threads: Number(args.threads) } : {}),
  };
  const first = await loadServeSource(src);
  const server = createServer({
    runner: first.value.runner!,
    planSource: { source: first.source, sha: first.sha },
    reload: () => loadServeSource(src),
    intakeThreads: INTAKE,
  });
  const url = await server.listen(0, '127.0.0.1');
  const tenant = first.value.runner!.plan.tenants[0]!;
  const bodies = kept.map((id, i) => {
    const x = exampleInputs(tenant, 1 + (i % 4), i, 50);
    return {
      id,
      body: JSON.stringify({ inputs: Object.entries(x).map(([name, t]) => ({ name, shape: t.shape, datatype: oipDatatype(t.dtype), data: tensorToJson(t) })) }),
    };
  });

  const samples: Array<{ at: number; ms: number; status: number }> = [];
  let stop = false;
  const client = async (k: number) => {
    for (let i = k; !stop; i += Number(args.clients)) {
      const j = bodies[i % bodies.length]!;
      const at = performance.now();
      const r = await fetch(`${url}/v2/models/${j.id}/infer`, { method: 'POST', body: j.body });
      await r.arrayBuffer();
      samples.push({ at, ms: performance.now() - at, status: r.status });
    }
  };
  const clients = Array.from({ length: Number(args.clients) }, (_, k) => client(k));
  const windows: Array<{ start: number; end: number }> = [];
  const swaps = [];
  await new Promise((r) => setTimeout(r, 2000));
  for (let s = 0; s < Number(args.swaps); s++) {
    switchLink(link, s % 2 === 0 ? b : a);
    const start = performance.now();
    const r = await server.reload();
    const end = performance.now();
    if (!r.ok) throw new Error(`reload failed: ${r.error}`);
    windows.push({ start, end: end + 200 });
    swaps.push({ generation: r.generation, loadMs: Math.round(r.loadMs), drainMs: Math.round(r.drainMs), totalMs: Math.round(end - start) });
    await new Promise((res) => setTimeout(res, 1500));
  }
  stop = true;
  await Promise.all(clients);
  await server.shutdown();

  const inSwap = (x: { at: number; ms: number }) => windows.some((w) => x.at + x.ms >= w.start && x.at <= w.end);
  const during = samples.filter(inSwap);
  const steady = samples.filter((x) => !inSwap(x));
  const failures = samples.filter((x) => x.status !== 200).length;
  const row = (name: string, xs: typeof samples) =>
    `${name.padEnd(22)} ${String(xs.length).padStart(7)} ${pct(
      xs.map((x) => x.ms),
      50,
    )
      .toFixed(1)
      .padStart(8)} ${pct(
      xs.map((x) => x.ms),
      99,
    )
      .toFixed(1)
      .padStart(8)}`;
  process.stdout.write(`\nswaps (${N} tenants, ${SIZES.join('-')} MLPs, ${args.backend}, intake threads ${server.intakeThreads}):\n`);
  for (const s of swaps) process.stdout.write(`  generation ${s.generation}: load ${s.loadMs} ms, drain+free ${s.drainMs} ms, reload() ${s.totalMs} ms\n`);
  process.stdout.write(`\nkept tenants, ${args.clients} closed-loop clients      requests   p50 ms   p99 ms\n`);
  process.stdout.write(`${row('steady', steady)}\n${row('during a swap (+200ms)', during)}\nfailures: ${failures}\n`);
  mkdirSync(path.dirname(args.out!), { recursive: true });
  const summarize = (xs: typeof samples) => ({
    requests: xs.length,
    p50Ms: pct(
      xs.map((x) => x.ms),
      50,
    ),
    p99Ms: pct(
      xs.map((x) => x.ms),
      99,
    ),
  });
  writeFileSync(
    args.out!,
    `${JSON.stringify({ tenants: N, sizes: SIZES, backend: args.backend, intakeThreads: server.intakeThreads, clients: Number(args.clients), swaps, steady: summarize(steady), duringSwap: summarize(during), failures }, null, 2)}\n`,
  );
  if (failures > 0) process.exitCode = 1;
}

await main();
