// Where a tick's host time goes, phase by phase, through the same calls runTick makes (runtime/tick-io.ts
// TickCodec and the addon's staging sets and submitTick), one tick at a time: check (validate the tensors),
// write (into the staging set), submit (the synchronous part of submitTick: the CUDA backend enqueues the
// copies, the graph and the event here), settle (submit returned → the promise resolved: the device tick, the
// worker's wait and the hand-back to the event loop), unpack (the output views). The executor's own wait
// (submit → the tick's event seen by the worker) is handleInfo().lastTickUs; the hand-back splits into the hop
// (the waiter thread saw the tick done → the JS thread runs the thread-safe call: handleInfo().lastHandBackUs)
// and the settle call itself (result buffer + promise: lastSettleUs).
// Run alone (tsx bench/tick-phases.ts --help) it compiles N × MLP (default 64 × 784-16-16-10) at batch 1 and prints
// the phases and `await runTick` through LoadedPlan, medians of interleaved rounds, per live fraction.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type PerformanceEntry, PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import type { Tensor } from '../ir/tensor.js';
import { type LoadedPlan, TickCodec, type TickInputs, loadNativeAddon, loadPlan } from '../runtime/index.js';
import type { NativeHandle } from '../runtime/native-addon.js';
import { compileFleet } from '../src/fleet/compile.js';
import { exampleInputs } from '../src/fleet/inputs.js';
import { alignTable, intFlag, listFlag, quantile, runIfMain } from './common.js';
import { spreadTenants, writeTenantFleet } from './tenant-fleet.js';

export interface TickPhases {
  readonly checkUs: number;
  readonly writeUs: number;
  readonly submitUs: number;
  readonly settleUs: number;
  readonly unpackUs: number;
  readonly nativeUs: number; // the executor's submit → done
  readonly handBackUs: number; // the waiter saw the tick done → the JS thread settles it (NaN: an addon without the figure)
  readonly settleCallUs: number; // the settle call on the JS thread: result buffer + promise resolve
  readonly totalUs: number;
}

const now = (): number => Number(process.hrtime.bigint()) / 1e3;

// Medians over `iters` ticks of `inputs` on `loaded`'s plan, through its own native handle.
export async function tickPhases(loaded: LoadedPlan, inputs: TickInputs, iters: number): Promise<TickPhases> {
  const addon = loadNativeAddon();
  const inner = loaded as unknown as { handle?: NativeHandle };
  if (!inner.handle) throw new Error('tickPhases reads the loaded plan’s native handle (runtime/load-plan.ts ResidentPlan)');
  const handle = inner.handle;
  const staging = addon.staging(handle);
  const codec = new TickCodec(loaded.plan.tenants, staging);
  const set = new Uint8Array(staging.sets[0]!, 0, staging.inBytes);
  const views = codec.slotViews(set);
  const compact = staging.compact === true; // as runTick: results of the live tenants' bytes only
  const mask = new Uint8Array(loaded.plan.tenants.length);
  const rows = new Int32Array(loaded.plan.tenants.length);

  const cols: number[][] = [[], [], [], [], [], [], [], [], []];
  for (let i = 0; i < iters + 50; i++) {
    const t0 = now();
    const checked = codec.check(inputs);
    const t1 = now();
    const written = codec.write(checked, set, mask, rows, views);
    const t2 = now();
    const p = addon.submitTick(handle, 0, written.active, written.rows, compact ? written.live : undefined);
    const t3 = now();
    const result = await p;
    const t4 = now();
    codec.unpack(written, result, compact);
    codec.clear(written);
    const t5 = now();
    if (i < 50) continue;
    const info = addon.handleInfo(handle);
    const native = Number(info.lastTickUs);
    const hop = info.lastHandBackUs === undefined ? Number.NaN : Number(info.lastHandBackUs);
    const call = info.lastSettleUs === undefined ? Number.NaN : Number(info.lastSettleUs);
    [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, native, hop, call, t5 - t0].forEach((v, k) => cols[k]!.push(v));
  }
  const med = (k: number): number => quantile(cols[k]!, 0.5);
  return {
    checkUs: med(0),
    writeUs: med(1),
    submitUs: med(2),
    settleUs: med(3),
    unpackUs: med(4),
    nativeUs: med(5),
    handBackUs: med(6),
    settleCallUs: med(7),
    totalUs: med(8),
  };
}

// GC pauses while `fn` runs (perf_hooks 'gc' entries): counts and total ms, minor (scavenge) and major (mark-compact).
export interface GcCounts {
  minor: number;
  major: number;
  other: number;
  ms: number;
}

async function withGcCounts<T>(fn: () => Promise<T>): Promise<{ value: T; gc: GcCounts }> {
  const gc: GcCounts = { minor: 0, major: 0, other: 0, ms: 0 };
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
      if (kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) gc.minor++;
      else if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) gc.major++;
      else gc.other++;
      gc.ms += e.duration;
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  try {
    const value = await fn();
    await new Promise((r) => setImmediate(r)); // the observer's last entries
    return { value, gc };
  } finally {
    obs.disconnect();
  }
}

// `await runTick` through the LoadedPlan, one at a time: median and mean wall µs (the mean shows the collector's
// pauses), the executor's median native µs and the GC pauses over the loop.
async function runTickUs(loaded: LoadedPlan, inputs: TickInputs, iters: number): Promise<{ wall: number; mean: number; native: number; gc: GcCounts }> {
  const wall: number[] = [];
  const native: number[] = [];
  const { gc } = await withGcCounts(async () => {
    for (let i = 0; i < iters; i++) {
      const t0 = now();
      await loaded.runTick(inputs);
      wall.push(now() - t0);
      native.push(Number(loaded.backendInfo().lastTickUs));
    }
  });
  return { wall: quantile(wall, 0.5), mean: wall.reduce((a, b) => a + b, 0) / wall.length, native: quantile(native, 0.5), gc };
}

const USAGE = `usage: tsx bench/tick-phases.ts [--iters N] [--rounds R] [--backend auto|cpu|cuda] [--threads N]
    [--tenants N] [--sizes 784-16-16-10] [--live-frac 1,0.1] [--work DIR]
  N tenants (default 64) × MLP of the given widths at batch 1 (bench/tenant-fleet.ts: 16 model files reused), one
  row per live fraction (every 1/F-th tenant live, bench/tenant-fleet.ts spreadTenants): R rounds of N ticks, each
  round the phases (bench/tick-phases.ts tickPhases) then N × \`await runTick\`; prints the medians over rounds (µs),
  runTick's mean over all ticks (GC pauses show there), the collector's pauses per 1,000 runTicks (minor/major)
  and the load average. --work DIR keeps the compiled plan there and reuses it (the same --tenants and --sizes).`;

// The plan under `work` for `tenants` × MLP `sizes`: compiled once, reused while its fleet matches.
async function fleetPlan(work: string, tenants: number, sizes: readonly number[], nvcc: 'off' | 'auto'): Promise<string> {
  const dir = path.join(work, `plan-${tenants}x${sizes.join('-')}`);
  if (existsSync(path.join(dir, 'plan.json'))) return dir;
  const fleet = writeTenantFleet(path.join(work, `fleet-${tenants}x${sizes.join('-')}`), { count: tenants, sizes });
  await compileFleet(fleet.manifest, dir, { nvcc });
  return dir;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const arg = (name: string, d: string): string => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : d;
  };
  const iters = intFlag('iters', arg('--iters', '2000'), 1);
  const rounds = intFlag('rounds', arg('--rounds', '5'), 1);
  const backend = arg('--backend', 'cpu') as 'auto' | 'cpu' | 'cuda';
  const threads = intFlag('threads', arg('--threads', '1'), 1);
  const tenants = intFlag('tenants', arg('--tenants', '64'), 1);
  const sizes = arg('--sizes', '784-16-16-10').split('-').map(Number);
  const fracs = listFlag(arg('--live-frac', '1')).map(Number);
  const given = args.includes('--work');
  const work = given ? arg('--work', '') : mkdtempSync(path.join(os.tmpdir(), 'loom-phases-'));
  try {
    const loaded = await loadPlan(await fleetPlan(work, tenants, sizes, backend === 'cpu' ? 'off' : 'auto'), { backend, threads });
    try {
      const head = [
        'live',
        'runTick',
        'mean',
        'native',
        'check',
        'write',
        'submit',
        'settle',
        'native (phases)',
        'hop',
        'settle call',
        'unpack',
        'total',
        'gc/1k minor',
        'major',
        'gc ms/1k',
      ];
      const body: string[][] = [];
      for (const frac of fracs) {
        const inputs: Record<string, Record<string, Tensor>> = {};
        for (const i of spreadTenants(
          loaded.plan.tenants.map((_, k) => k),
          frac,
        ))
          inputs[loaded.plan.tenants[i]!.id] = exampleInputs(loaded.plan.tenants[i]!, 1, 1000 + i);
        for (let i = 0; i < 200; i++) await loaded.runTick(inputs);
        const phases: TickPhases[] = [];
        const ticks: Awaited<ReturnType<typeof runTickUs>>[] = [];
        for (let r = 0; r < rounds; r++) {
          phases.push(await tickPhases(loaded, inputs, iters));
          ticks.push(await runTickUs(loaded, inputs, iters));
        }
        const med = (xs: number[]): string => quantile(xs, 0.5).toFixed(1);
        const per1k = (f: (g: GcCounts) => number): string => ((ticks.reduce((a, t) => a + f(t.gc), 0) * 1000) / (rounds * iters)).toFixed(1);
        const keys = ['checkUs', 'writeUs', 'submitUs', 'settleUs', 'nativeUs', 'handBackUs', 'settleCallUs', 'unpackUs', 'totalUs'] as const;
        body.push([
          `${Object.keys(inputs).length}`,
          med(ticks.map((t) => t.wall)),
          (ticks.reduce((a, t) => a + t.mean, 0) / rounds).toFixed(1),
          med(ticks.map((t) => t.native)),
          ...keys.map((k) => med(phases.map((p) => p[k]))),
          per1k((g) => g.minor),
          per1k((g) => g.major),
          per1k((g) => g.ms),
        ]);
      }
      const load = os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(' ');
      process.stdout.write(
        `${tenants} × MLP ${sizes.join('-')} b1, ${loaded.backend} backend, ${os.cpus().length} cores (${os.cpus()[0]?.model.trim() ?? '?'}), ` +
          `node ${process.version}; ${rounds} rounds × ${iters} ticks, medians of round medians (µs; mean: runTick's mean over every tick); load average ${load}\n`,
      );
      process.stdout.write(`${alignTable(head, body, 0).join('\n')}\n`);
    } finally {
      loaded.close();
    }
  } finally {
    if (!given) rmSync(work, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, main);
