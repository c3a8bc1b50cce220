// A request's tensors checked against its tenant's I/O table before the request may join a batch: the
// shared check (ir/contract/tenant-io.ts: names, dtypes, shapes with 1..maxBatch rows, element counts,
// optionally finite values) in the protocol's words ("model"). A failure is a 400 with the check's
// message; nothing else is touched.
import type { Tensor } from '../../ir/tensor.js';
import type { PlannedTenant } from '../../ir/contract/plan.js';
import { TenantIOError, validateTenantInputs } from '../../ir/contract/tenant-io.js';
import { refuse } from './errors.js';

export { describeTenantIO, firstNonFinite } from '../../ir/contract/tenant-io.js';

export interface ValidateOptions {
  readonly checkFinite?: boolean;
}

// Returns the request's row count (1 for a tenant whose inputs have no batch axis).
export function validateRequest(tenant: PlannedTenant, inputs: Readonly<Record<string, Tensor>>, opts: ValidateOptions = {}): number {
  try {
    return validateTenantInputs(tenant, inputs, { noun: 'model', checkFinite: opts.checkFinite === true }) ?? 1;
  } catch (e) {
    if (e instanceof TenantIOError) refuse(400, e.message);
    throw e;
  }
}

// A tenant can batch several requests into one tick only when every input and output has a batch axis.
export function isBatchable(tenant: PlannedTenant): boolean {
  return [...tenant.inputs, ...tenant.outputs].every((io) => io.batchAxis !== null);
}
