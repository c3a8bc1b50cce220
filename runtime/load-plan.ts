// loadPlan: a LaunchPlan directory → a plan resident on one backend, ready to run ticks. The runtime
// executes the plan as written (no planning here): it checks a tick's inputs, copies them in, runs every
// launch, and copies the outputs out.
import { LoomError, fail, isLoomError } from '../ir/errors.js';
import { type LaunchPlan, loadWeights, readPlanDir } from '../codegen/index.js';
import { type NativeAddon, type NativeHandle, loadNativeAddon } from './native-addon.js';
import { type TickInputs, type TickOutputs, packTick, unpackTick } from './tick-io.js';

export type BackendName = 'cpu' | 'cuda';

export interface LoadPlanOptions {
  readonly backend?: 'auto' | BackendName; // auto: cuda where this addon was built with it, else cpu
  readonly threads?: number; // CPU backend worker threads (default: hardware concurrency)
}

export interface LoadedPlan {
  readonly plan: LaunchPlan;
  readonly backend: BackendName;
  // A tenant absent from `inputs` gets no outputs; a tenant's tensors carry 1..maxBatch rows on batchAxis.
  runTick(inputs: TickInputs): Promise<TickOutputs>;
  close(): void;
}

// Errors from the addon carry code 'EVAL'; make them LoomErrors so the CLI reports them as such.
function fromNative(e: unknown): never {
  if (isLoomError(e)) throw e;
  const msg = e instanceof Error ? e.message : String(e);
  throw new LoomError('EVAL', msg);
}

export function chooseBackend(requested: LoadPlanOptions['backend'], available: readonly string[]): BackendName {
  const want = requested ?? 'auto';
  if (want === 'auto') return available.includes('cuda') ? 'cuda' : 'cpu';
  if (want !== 'cpu' && want !== 'cuda') fail('USAGE', `unknown backend '${String(want)}' (expected auto, cpu or cuda)`);
  if (!available.includes(want)) {
    fail('UNSUPPORTED_FEATURE', `backend '${want}' is not built into this addon (it has: ${available.join(', ')}); the CUDA backend needs the CUDA toolkit with cuBLAS at build time (npm run build:native)`);
  }
  return want;
}

export async function loadPlan(dir: string, opts: LoadPlanOptions = {}): Promise<LoadedPlan> {
  const plan = readPlanDir(dir);
  const weights = loadWeights(dir, plan);
  if (opts.threads !== undefined && (!Number.isInteger(opts.threads) || opts.threads < 1)) fail('USAGE', `threads must be a positive integer, got ${opts.threads}`);
  const addon = loadNativeAddon();
  const backend = chooseBackend(opts.backend, addon.info().backends);
  let handle: NativeHandle;
  try {
    handle = addon.create(plan, weights, opts.threads !== undefined ? { backend, threads: opts.threads } : { backend });
  } catch (e) {
    fromNative(e);
  }
  return new ResidentPlan(addon, handle, plan, backend);
}

class ResidentPlan implements LoadedPlan {
  private closed = false;
  private queue: Promise<unknown> = Promise.resolve(); // ticks run one after another, in call order

  constructor(
    private readonly addon: NativeAddon,
    private readonly handle: NativeHandle,
    readonly plan: LaunchPlan,
    readonly backend: BackendName,
  ) {}

  runTick(inputs: TickInputs): Promise<TickOutputs> {
    if (this.closed) return Promise.reject(new LoomError('USAGE', 'runTick on a closed plan'));
    let packed: ReturnType<typeof packTick>;
    try {
      packed = packTick(this.plan.tenants, inputs);
    } catch (e) {
      return Promise.reject(e);
    }
    const run = async (): Promise<TickOutputs> => {
      if (this.closed) fail('USAGE', 'the plan was closed before this tick ran');
      let results: Uint8Array[];
      try {
        results = await this.addon.runTick(this.handle, packed.inputs, packed.outputs, packed.active);
      } catch (e) {
        fromNative(e);
      }
      return unpackTick(packed, results);
    };
    const tick = this.queue.then(run, run);
    this.queue = tick.catch(() => undefined);
    return tick;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.addon.destroy(this.handle);
  }
}
