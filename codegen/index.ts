// codegen/: Plan → LaunchPlan directory (plan.json, weights.bin, kernels.cu, cubin) and back.
export { FORMAT_NAME, FORMAT_VERSION, PLAN_FILE, WEIGHTS_FILE, KERNELS_FILE } from '../ir/contract/launch-plan.js';
export type { LaunchPlan, KernelGrid, KernelsTable, WeightsTable, WeightBlobInfo } from '../ir/contract/launch-plan.js';
export type { WrittenPlan, WritePlanOptions, PreviousWeights, WeightsReuse } from './format.js';
export { writePlanDir, writeWeights, writeKernels, writeLaunchJson } from './write.js';
export { planFromLaunchPlan } from './plan-from-launch.js';
export { readPlanDir, loadWeights, loadWeightsAsync, parseLaunchPlan, streamWeights, type WeightsSink } from './read.js';
export { renderLaunchJson, renderKernelsCu } from './emit.js';
export { buildLaunchPlan } from './build.js';
export type { BuiltPlan } from './build.js';
