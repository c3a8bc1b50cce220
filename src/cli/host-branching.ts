// Batch or branch by default (src/planner/branches.ts), for a plan compiled on this host: measured where it will
// run on the CUDA backend (`measure`: both plans timed on this GPU, the faster kept: src/fleet/branch-measure.ts),
// batched where it will run on the CPU backend. On the GPU each group of equal tenants that fits the lanes may run
// as parallel branches (H100, stop 18: the zoo mix 534 → 330 µs a tick, three LSTMs 72 → 59, the demo 1,532 →
// 1,492), but the cost model alone can choose wrong (stop 20: the 64-tenant mixed fleet predicted faster branched,
// 3.93 vs 4.09 ms; measured 6.51 branched vs 4.47 batched), so a GPU host times both. The CPU backend runs
// launches in order, where a branched plan only loses its batching (the zoo mix 20.3 → 25.7 ms a tick here).
// `--branching` overrides either way; where measuring cannot apply (--shards, --device-memory, --emit, --from
// launch) the GPU default is `auto`.
import { chooseBackend } from '../../runtime/load-plan.js';
import { loadNativeAddon } from '../../runtime/native-addon.js';
import type { CompileBranching } from '../fleet/branch-measure.js';

export interface HostBranching {
  readonly branching: CompileBranching;
  readonly reason: string; // why this default, for the compile summary
  readonly otherwise: string; // the flag that decides the other way
}

// `backend`: what the plan will be loaded with (auto: what `auto` picks on this host).
export function hostBranching(backend: 'auto' | 'cpu' | 'cuda' = 'auto'): HostBranching {
  let onCuda = false;
  try {
    const info = loadNativeAddon().info();
    onCuda = backend !== 'cpu' && chooseBackend(backend, info.backends, info.cudaDevices) === 'cuda';
  } catch {
    // no addon, or no CUDA backend built: the CPU backend runs the plan
  }
  return onCuda
    ? {
        branching: 'measure',
        reason: 'the CUDA backend runs this plan here: both plans timed on it',
        otherwise: '--branching auto lets the cost model decide; never batches every group',
      }
    : { branching: 'never', reason: 'the CPU backend runs this plan here', otherwise: '--branching auto branches for a GPU' };
}

// The GPU the CUDA backend would run a plan on here (device 0's name), or null (no GPU, no CUDA backend built).
export function hostGpuName(): string | null {
  try {
    const info = loadNativeAddon().info();
    const name = info.cudaDevices && info.cudaDevices > 0 ? info.gpu?.name : undefined;
    return typeof name === 'string' && name.length > 0 ? name : null;
  } catch {
    return null;
  }
}

// The GPU default where the plan cannot be timed whole (shards, stopping at a stage, restarting after planning).
export function unmeasured(h: HostBranching): HostBranching {
  if (h.branching !== 'measure') return h;
  return {
    branching: 'auto',
    reason: 'the CUDA backend runs this plan here (the cost model decides: this compile does not time whole plans)',
    otherwise: '--branching never batches every group',
  };
}
