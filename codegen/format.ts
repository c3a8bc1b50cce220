// What writing a plan directory returns and takes (codegen/write.ts); the LaunchPlan itself is the contract in
// ir/contract/launch-plan.ts.
import type { LaunchPlan } from '../ir/contract/launch-plan.js';

export interface WrittenPlan {
  readonly dir: string;
  readonly plan: LaunchPlan;
  readonly files: { readonly plan: string; readonly weights: string; readonly kernels: string; readonly cubin: string | null };
  readonly cubinFromCache: boolean; // true when the cubin came from the content-hash cache
  readonly nvccSkipped: string | null; // why no cubin was built (nvcc absent or off), null when built
}

export interface WritePlanOptions {
  readonly nvcc?: 'auto' | 'off';
  readonly cacheDir?: string;
  readonly onProgress?: (msg: string) => void;
  readonly onPhase?: (phase: string, seconds: number) => void; // where the time went (`loom compile --timings`)
}
