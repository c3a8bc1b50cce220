// Where a tick's host time goes, phase by phase, through the same calls runTick makes (runtime/tick-io.ts
// TickCodec and the addon's staging sets and submitTick), one tick at a time: check (validate the tensors),
// write (into the staging set), submit (the synchronous part of submitTick: the CUDA backend enqueues the
// copies, the graph and the event here), settle (submit returned → the promise resolved: the device tick, the
// worker's wait and the hand-back to the event loop), unpack (the output views). The executor's own wait
// (submit → the tick's event seen by the worker) is handleInfo().lastTickUs.
import { type LoadedPlan, TickCodec, type TickInputs, loadNativeAddon } from '../runtime/index.js';
import type { NativeHandle } from '../runtime/native-addon.js';
import { quantile } from './common.js';

export interface TickPhases {
  readonly checkUs: number;
  readonly writeUs: number;
  readonly submitUs: number;
  readonly settleUs: number;
  readonly unpackUs: number;
  readonly nativeUs: number; // the executor's submit → done
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
  const mask = new Uint8Array(loaded.plan.tenants.length);
  const rows = new Int32Array(loaded.plan.tenants.length);

  const cols: number[][] = [[], [], [], [], [], [], []];
  for (let i = 0; i < iters + 50; i++) {
    const t0 = now();
    const checked = codec.check(inputs);
    const t1 = now();
    const written = codec.write(checked, set, mask, rows);
    const t2 = now();
    const p = addon.submitTick(handle, 0, written.active, written.rows);
    const t3 = now();
    const result = await p;
    const t4 = now();
    codec.unpack(written, result);
    codec.clear(written);
    const t5 = now();
    if (i < 50) continue;
    const native = Number(addon.handleInfo(handle).lastTickUs);
    [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, native, t5 - t0].forEach((v, k) => cols[k]!.push(v));
  }
  const med = (k: number): number => quantile(cols[k]!, 0.5);
  return { checkUs: med(0), writeUs: med(1), submitUs: med(2), settleUs: med(3), unpackUs: med(4), nativeUs: med(5), totalUs: med(6) };
}
