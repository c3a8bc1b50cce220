// Loom's library API: what the CLI is a thin layer over. `import { compile, loadPlan } from 'loom'`.
export { compileFleet as compile, compileFleet, planSummary, EMIT_STAGES, FROM_STAGES, DUMP_AFTER_PASSES } from './fleet/compile.js';
export type { CompileOptions, CompileProgress, CompileResult, EmitStage, FromStage } from './fleet/compile.js';
export { STAGES, STAGE_NAMES, runPipeline } from './pipeline.js';
export type { Stage, StageName, StageContext, PipelineRun, PipelineResult } from './pipeline.js';
export { manifestFromFiles, parseManifest, readManifest, SUPPORTED_PRECISIONS, MAX_BATCH_LIMIT } from './fleet/manifest.js';
export type { FleetPrecision, Manifest, TenantSpec } from './fleet/manifest.js';
export { loadTenants, importTenant } from './fleet/tenants.js';
export { checkTenantInputs, exampleInputs } from './fleet/inputs.js';
// runTick's and checkTenantInputs' EVAL errors carry a TenantIOError (code, field path) as their cause
export { TenantIOError, validateTenantInputs, describeTenantIO } from '../ir/contract/tenant-io.js';
export type { TenantIOErrorCode, TenantIOCheckOptions } from '../ir/contract/tenant-io.js';
export { launchRows, planHeadline, planTotals } from './fleet/summary.js';
export type { InspectablePlan, LaunchRow, PlanTotals } from './fleet/summary.js';

export { importModelFile, importModelBytes } from './onnx/import.js';
export type { ImportOptions } from './onnx/import.js';
export { canonicalize, lowerForPlanner, CANONICAL_PASSES } from '../ir/passes/index.js';
export { planFleet } from './planner/index.js';
export type { Launch, LaunchKind, GemmProblem, GemmEntry, KernelOp, Segment, Ref, ArenaId } from '../ir/contract/launch.js';
export type { Plan, PlannedTenant, TenantIO, TenantInput, ArenaSizes, CostSummary, Precision, WeightBlob } from '../ir/contract/plan.js';
export { writePlanDir, readPlanDir, loadWeights } from '../codegen/index.js';
export type { LaunchPlan, WrittenPlan } from '../codegen/index.js';
export { loadPlan } from '../runtime/index.js';
export type { LoadedPlan } from '../runtime/index.js';
export { readNpy, writeNpy, decodeNpy, encodeNpy } from '../runtime/npy.js';

export { LoomError, isLoomError } from '../ir/errors.js';
export type { LoomErrorCode } from '../ir/errors.js';
export type { Graph } from '../ir/graph.js';
export type { Tensor } from '../ir/tensor.js';
export type { DType } from '../ir/dtype.js';
