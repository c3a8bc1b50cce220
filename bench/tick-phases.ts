// Where a tick's host time goes, phase by phase, through the same calls runTick makes (runtime/tick-io.ts
// TickCodec and the addon's staging sets and submitTick), one tick at a time: check (validate the tensors),
// write (into the staging set), submit (the synchronous part of submitTick: the CUDA backend enqueues the
// copies, the graph and the event here), settle (submit returned → the promise resolved: the device tick, the
// worker's wait and the hand-back to the event loop), unpack (the output views). The executor's own wait
// (submit → the tick's event seen by the worker) is handleInfo().lastTickUs; the hand-back splits into the hop
// (the waiter thread saw the tick done → the JS thread runs the thread-safe call: handleInfo().lastHandBackUs)
// and the settle call itself (result buffer + promise: lastSettleUs).
// Run alone (tsx bench/tick-phases.ts --help) it compiles 64 × MLP 784-16-16-10 at batch 1 and prints the
// phases and `await runTick` through LoadedPlan, medians of interleaved rounds.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Tensor } from '../ir/tensor.js';
import { type LoadedPlan, TickCodec, type TickInputs, loadNativeAddon, loadPlan } from '../runtime/index.js';
import type { NativeHandle } from '../runtime/native-addon.js';
import { compileFleet } from '../src/fleet/compile.js';
import { exampleInputs } from '../src/fleet/inputs.js';
import { alignTable, quantile, runIfMain, writeMlpFleet } from './common.js';

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
  const mask = new Uint8Array(loaded.plan.tenants.length);
  const rows = new Int32Array(loaded.plan.tenants.length);

  const cols: number[][] = [[], [], [], [], [], [], [], [], []];
  for (let i = 0; i < iters + 50; i++) {
    const t0 = now();
    const checked = codec.check(inputs);
    const t1 = now();
    const written = codec.write(checked, set, mask, rows, views);
    const t2 = now();
    const p = addon.submitTick(handle, 0, written.active, written.rows);
    const t3 = now();
    const result = await p;
    const t4 = now();
    codec.unpack(written, result);
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

// `await runTick` through the LoadedPlan, one at a time: median wall µs and the executor's median native µs.
async function runTickUs(loaded: LoadedPlan, inputs: TickInputs, iters: number): Promise<{ wall: number; native: number }> {
  const wall: number[] = [];
  const native: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = now();
    await loaded.runTick(inputs);
    wall.push(now() - t0);
    native.push(Number(loaded.backendInfo().lastTickUs));
  }
  return { wall: quantile(wall, 0.5), native: quantile(native, 0.5) };
}

const USAGE = `usage: tsx bench/tick-phases.ts [--iters N] [--rounds R] [--backend auto|cpu|cuda] [--threads N]
  64 × MLP 784-16-16-10 at batch 1: R rounds of N ticks, each round the phases (bench/tick-phases.ts tickPhases)
  then N × \`await runTick\`; prints the medians over rounds (µs) and the load average.`;

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
  const iters = Number(arg('--iters', '2000'));
  const rounds = Number(arg('--rounds', '5'));
  const backend = arg('--backend', 'cpu') as 'auto' | 'cpu' | 'cuda';
  const threads = Number(arg('--threads', '1'));
  const work = mkdtempSync(path.join(os.tmpdir(), 'loom-phases-'));
  try {
    await compileFleet(writeMlpFleet(work, [784, 16, 16, 10]), path.join(work, 'plan'), { nvcc: backend === 'cpu' ? 'off' : 'auto' });
    const loaded = await loadPlan(path.join(work, 'plan'), { backend, threads });
    try {
      const inputs: Record<string, Record<string, Tensor>> = {};
      loaded.plan.tenants.forEach((t, i) => {
        inputs[t.id] = exampleInputs(t, 1, 1000 + i);
      });
      for (let i = 0; i < 200; i++) await loaded.runTick(inputs);
      const phases: TickPhases[] = [];
      const ticks: { wall: number; native: number }[] = [];
      for (let r = 0; r < rounds; r++) {
        phases.push(await tickPhases(loaded, inputs, iters));
        ticks.push(await runTickUs(loaded, inputs, iters));
      }
      const med = (xs: number[]): string => quantile(xs, 0.5).toFixed(1);
      const keys = ['checkUs', 'writeUs', 'submitUs', 'settleUs', 'nativeUs', 'handBackUs', 'settleCallUs', 'unpackUs', 'totalUs'] as const;
      const head = ['runTick', 'native', 'check', 'write', 'submit', 'settle', 'native (phases)', 'hop', 'settle call', 'unpack', 'total'];
      const body = [[med(ticks.map((t) => t.wall)), med(ticks.map((t) => t.native)), ...keys.map((k) => med(phases.map((p) => p[k])))]];
      const load = os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(' ');
      process.stdout.write(
        `64 × MLP 784-16-16-10 b1, ${loaded.backend} backend, ${os.cpus().length} cores (${os.cpus()[0]?.model.trim() ?? '?'}), ` +
          `node ${process.version}; ${rounds} rounds × ${iters} ticks, medians of round medians (µs); load average ${load}\n`,
      );
      process.stdout.write(`${alignTable(head, body, 0).join('\n')}\n`);
    } finally {
      loaded.close();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, main);
