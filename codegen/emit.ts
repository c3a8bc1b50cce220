// `--emit launch|cuda`: the LaunchPlan JSON and the kernel source as strings, without writing a plan dir
// (kernels.cubin is null in the JSON: nothing was compiled).
import type { Plan } from '../ir/contract/plan.js';
import { buildLaunchPlan } from './build.js';
import { stableJson } from './json.js';

export function renderLaunchJson(plan: Plan): string {
  return stableJson(buildLaunchPlan(plan).plan);
}

export function renderKernelsCu(plan: Plan): string {
  return buildLaunchPlan(plan).source;
}
