// The LaunchPlan: the on-disk form of a Plan (plan.json + weights.bin + kernels.cu [+ cubin]) and the only
// thing runtime/ and native/ read. Field semantics: codegen/FORMAT.md. Launch/Segment types (launch.ts) and
// tenants, arenas and cost (plan.ts) are the planner's, serialized as they are; codegen adds the weights and
// kernels tables below.
import type { DType } from '../dtype.js';
import type { Launch } from './launch.js';
import type { ArenaSizes, CostSummary, PlannedTenant, Precision } from './plan.js';

export const FORMAT_NAME = 'loom-launchplan';
// Bump on any change a reader of the previous version would misread; additive optional fields that old
// readers may ignore keep the version (FORMAT.md "Versioning").
// 2: the im2col `ones` row (a version-1 reader would ignore the field and leave the row unwritten) and the `conv`
// KernelOp. A version-1 plan reads the same under version 2 (it has neither).
export const FORMAT_VERSION = 2;
export const OLDEST_READ_VERSION = 1;

export const PLAN_FILE = 'plan.json';
export const WEIGHTS_FILE = 'weights.bin';
export const KERNELS_FILE = 'kernels.cu';

// One constant as laid out in weights.bin (for inspect and debugging; backends upload the file whole).
export interface WeightBlobInfo {
  readonly offset: number;
  readonly bytes: number;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

// weights.bin's integrity: a sha256 per WEIGHT_HASH_CHUNK bytes (FORMAT.md "weights"), so a recompile that
// keeps most of the previous plan's bytes hashes only the chunks it rewrote.
export const WEIGHT_HASH_CHUNK = 1 << 20;

export interface WeightChunks {
  readonly bytes: number; // chunk size; the last chunk may be shorter
  readonly sha256: readonly string[]; // hex, one per chunk: ceil(weights.bytes / chunks.bytes) of them
}

// Exactly one of sha256 (plans written before chunk hashes) and chunks (plans written now).
export interface WeightsTable {
  readonly file: string; // 'weights.bin', relative to the plan dir
  readonly bytes: number; // == arenas.weights
  readonly sha256?: string; // hex of the whole file (older plans)
  readonly chunks?: WeightChunks; // hex per chunk (written since the incremental recompile)
  readonly blobs: readonly WeightBlobInfo[];
}

// How a generated kernel launch is started: <<<grid, block>>> over its segment table.
export interface KernelGrid {
  readonly name: string; // the extern "C" symbol in kernels.cu / the cubin
  readonly block: number; // threads per block
  readonly grid: number; // blocks (>= 1)
  readonly mapping: 'thread' | 'block'; // one thread or one block per work item (informative)
  readonly work: readonly number[]; // work items per segment; workBegin = prefix sum
}

export interface KernelsTable {
  readonly source: string; // 'kernels.cu'
  readonly cubin: string | null; // 'kernels.sm_90.cubin', null when nvcc was absent or off
  readonly arch: string | null; // 'sm_90' with cubin
  readonly names: Readonly<Record<string, string>>; // launch id (decimal) → kernel symbol, every 'kernel' launch
  readonly grids: Readonly<Record<string, KernelGrid>>; // launch id (decimal) → launch geometry
}

export interface LaunchPlan {
  readonly format: typeof FORMAT_NAME;
  readonly version: number; // FORMAT_VERSION when written; OLDEST_READ_VERSION..FORMAT_VERSION when read
  readonly precision: Precision;
  readonly arenas: ArenaSizes;
  readonly tenants: readonly PlannedTenant[];
  readonly launches: readonly Launch[];
  readonly stages: number;
  readonly lanes?: number; // absent: 1 (FORMAT.md "Lanes")
  readonly priorityLanes?: readonly number[]; // absent: none (FORMAT.md "Lanes")
  readonly cost: CostSummary;
  readonly weights: WeightsTable;
  readonly kernels: KernelsTable;
}
