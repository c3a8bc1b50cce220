// The planner: many tenants' canonical IR → one Plan of batched launches (see plan.ts, launch.ts).
export { planConcreteFleet, planFleet, planFleetDetailed } from './plan-fleet.js';
export type { BufferReport, DetailedPlan, PlannedTenantSpec, PlanOptions } from './plan-fleet.js';
export { H100_FP32, costModel } from './cost.js';
export type { CostModel } from './cost.js';
export { BRANCHINGS, BRANCH_MAX_LANES, BRANCH_TOLERANCE, branchingFrom } from './branches.js';
export type { Branching } from './branches.js';
export { CONV_KERNELS } from './lower-context.js';
export type { ConvKernel } from './lower-context.js';
export { concretizeTenant, rebuildWithInputs } from './concretize.js';
export type { ConcreteIO, ConcreteTenant } from './concretize.js';
export type * from '../../ir/contract/launch.js';
export type * from '../../ir/contract/plan.js';
