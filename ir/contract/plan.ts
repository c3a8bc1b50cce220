// The planner's output: every tenant's I/O slots, the launches of one tick, the arenas, the packed
// weights, and the cost model's numbers. codegen/ writes it as a LaunchPlan directory.
import type { DType } from '../dtype.js';
import type { Tensor } from '../tensor.js';
import type { Launch, Ref } from './launch.js';

// fp32: true fp32 everywhere. tf32: the same plan; a backend may run f32 GEMMs with TF32 tensor cores.
// bf16 / fp16: GEMM operands (A, B) in that dtype (weights converted at compile time, activations cast by an
// eltwise step), GEMM outputs, biases and everything else f32; GEMMs accumulate in f32.
export type Precision = 'fp32' | 'tf32' | 'bf16' | 'fp16';
export const PRECISIONS: readonly Precision[] = ['fp32', 'tf32', 'bf16', 'fp16'];

export interface TenantIO {
  readonly name: string; // the ONNX graph input/output name
  readonly dtype: DType;
  readonly shape: readonly number[]; // concrete, at maxBatch rows
  readonly batchAxis: number | null; // the axis that holds the rows (0 almost always), null when the tensor has none
  readonly ref: Ref; // arena 'io'
  readonly bytes: number;
}

export interface PlannedTenant {
  readonly id: string;
  readonly model: string; // the model file as the manifest named it
  readonly maxBatch: number;
  readonly sloMs: number | null;
  readonly checkFinite?: true; // `loom serve` refuses NaN/Inf in float inputs; written only when set (absent = false)
  readonly layers: number; // the tenant's lowered steps: the launches a per-tenant (time-only) runtime would make
  readonly inputs: readonly TenantIO[];
  readonly outputs: readonly TenantIO[];
}

// A constant laid out exactly as its launches read it (transposed, packed with its group, as an index table).
export interface WeightBlob {
  readonly offset: number; // into the weights arena
  readonly tensor: Tensor;
  // Where the planner made it: the tenant (index into tenants) whose lowering created it, and its place among
  // that tenant's weights (0, 1, … in creation order). Its bytes depend on that tenant's lowered graph alone,
  // which a recompile uses to keep them (src/cache/plan-record.ts). Absent in a Plan read back from plan.json.
  readonly tenant?: number;
  readonly seq?: number;
}

export interface ArenaSizes {
  readonly weights: number;
  readonly act: number;
  readonly io: number;
  readonly actWithoutReuse: number; // what the activation arena would take with no liveness reuse
}

// `loom compile --branching measure` (src/fleet/branch-measure.ts): the median ticks of the fleet's batched and
// branched plans on the backend and device that timed them (device time where the backend reports it, else wall).
export interface MeasuredBranches {
  readonly backend: string;
  readonly device: string;
  readonly batchedUs: number;
  readonly branchedUs: number;
}

export interface CostSummary {
  readonly predictedTickUs: number; // sum of the launches' predictions (+ tickIoUs with a device profile)
  readonly ungroupedTickUs: number; // the same work as one launch per tenant step (time-only)
  readonly floorUs: number; // max(total flops / peak, total bytes / bandwidth)
  readonly device: string; // the device the cost model describes
  readonly criticalPathUs?: number; // multi-lane plans: the lanes run as the device would (src/planner/lane-sim.ts), by the cost model
  // tenants run as parallel branches (each its own chain of launches) rather than batched with their equals, and
  // the predicted tick had they been batched (src/planner/branches.ts); absent: every group batched
  // --branching auto: the tenants run as parallel branches (none: the model predicted batching faster), and the
  // ticks the model predicted batched and branched
  // --branching measure: `measured` holds both plans' ticks as timed on the device at compile time (the faster
  // plan was kept: `tenants` empty where it was the batched one)
  readonly branches?: { readonly tenants: readonly number[]; readonly batchedUs: number; readonly branchedUs?: number; readonly measured?: MeasuredBranches };
  // the device profile the model was calibrated with (`loom compile --profile`); absent: the default roofline
  readonly profile?: CostProfileRef;
  // with a profile: the tick's fixed cost and the copies of every tenant's input and output slots
  readonly tickIoUs?: number;
}

export interface CostProfileRef {
  readonly name: string; // the profile's name: the card (or CPU) it was measured on
  readonly hash: string; // sha256 (hex) of the profile file's bytes
}

export interface Plan {
  readonly precision: Precision;
  readonly tenants: readonly PlannedTenant[];
  readonly launches: readonly Launch[]; // in execution order; LaunchInfo.stage is non-decreasing
  readonly stages: number;
  readonly lanes?: number; // parallel lanes of the tick's DAG (absent: 1, every launch in order on one stream)
  // lanes on the tick's critical path, run at the device's highest stream priority (src/planner/lanes.ts
  // criticalLanes; absent: none)
  readonly priorityLanes?: readonly number[];
  readonly arenas: ArenaSizes;
  readonly weights: readonly WeightBlob[];
  readonly cost: CostSummary;
}

// What the planner needs per tenant: its canonical IR and how many rows a tick may carry for it.
export interface TenantInput {
  readonly id: string;
  readonly model: string;
  readonly graph: import('../graph.js').Graph; // canonicalized (ir/passes canonicalize)
  readonly maxBatch: number;
  readonly sloMs: number | null;
  readonly checkFinite?: boolean; // from the manifest; default false
}
