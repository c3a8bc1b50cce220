// codegen/: Plan → LaunchPlan directory (plan.json, weights.bin, kernels.cu, cubin) and back.
export { FORMAT_NAME, FORMAT_VERSION, PLAN_FILE, WEIGHTS_FILE, KERNELS_FILE } from './format.js';
export type { LaunchPlan, WrittenPlan, WritePlanOptions, KernelGrid, KernelsTable, WeightsTable, WeightBlobInfo } from './format.js';
export { writePlanDir } from './write.js';
export { readPlanDir, loadWeights, parseLaunchPlan } from './read.js';
export { renderLaunchJson, renderKernelsCu } from './emit.js';
export { buildLaunchPlan } from './build.js';
