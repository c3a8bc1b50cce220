// What writing a plan directory returns and takes (codegen/write.ts); the LaunchPlan itself is the contract in
// ir/contract/launch-plan.ts.
import type { LaunchPlan, WeightChunks } from '../ir/contract/launch-plan.js';

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

// An earlier plan's weights.bin with the same layout as the plan being written (the same arena size and the
// same blob offsets and sizes), and which of the new plan's blobs hold the same bytes as it (src/cache decides:
// the blob was made by an unchanged tenant). writeWeights then copies that file and rewrites only the other
// blobs, hashing only the chunks they touch.
export interface PreviousWeights {
  readonly file: string;
  readonly chunks: WeightChunks; // its chunk hashes, as its plan.json records them
  readonly keep: readonly boolean[]; // per blob of the new plan, in offset order
  // asked once the copy is made: why the file may have changed meanwhile (then every byte is written), or null
  readonly stillSame?: () => string | null;
  // a copy of `file` already made (started early, while the tenants were read and planned): used instead of
  // copying again, and removed when it cannot be used
  readonly copied?: string;
}

// What writeWeights did with a PreviousWeights (absent: it wrote every byte).
export interface WeightsReuse {
  readonly from: string;
  readonly keptBlobs: number;
  readonly rewrittenBlobs: number;
  readonly rewrittenBytes: number;
  readonly hashedChunks: number;
  readonly totalChunks: number;
}
