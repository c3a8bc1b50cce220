// LaunchPlan → Plan: plan.json carries everything the planner produced except the weights' bytes, and
// weights.bin carries those at the offsets plan.json lists, so the two give the Plan back exactly. This is
// what lets a compile restart after the launch stage (`loom compile --from launch`).
import { byteSize, viewArray } from '../ir/dtype.js';
import { fail } from '../ir/errors.js';
import type { LaunchPlan } from '../ir/contract/launch-plan.js';
import type { Plan, WeightBlob } from '../ir/contract/plan.js';

export function planFromLaunchPlan(lp: LaunchPlan, weights: Uint8Array): Plan {
  if (weights.byteLength !== lp.weights.bytes) fail('PLAN_INVALID', `weights: ${weights.byteLength} bytes, plan.json expects ${lp.weights.bytes}`);
  const blobs = lp.weights.blobs.map((b): WeightBlob => {
    const size = byteSize(b.dtype);
    const length = b.bytes / size;
    const at = weights.byteOffset + b.offset;
    // a view where the element alignment allows it (weights can be GB); a copy otherwise
    const buffer = at % size === 0 ? weights.buffer : weights.slice(b.offset, b.offset + b.bytes).buffer;
    const data = viewArray(b.dtype, buffer, at % size === 0 ? at : 0, length);
    return { offset: b.offset, tensor: { dtype: b.dtype, shape: [...b.shape], data } };
  });
  return {
    precision: lp.precision,
    tenants: lp.tenants,
    launches: lp.launches,
    stages: lp.stages,
    ...(lp.lanes !== undefined ? { lanes: lp.lanes } : {}),
    ...(lp.priorityLanes !== undefined ? { priorityLanes: lp.priorityLanes } : {}),
    arenas: lp.arenas,
    weights: blobs,
    cost: lp.cost,
  };
}
