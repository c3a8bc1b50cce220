// The bench's baselines, planned from the same tenants as the plan under test: time-only (one launch per
// tenant step, tenants one after another: planFleet grouping 'none') and space-only (each tenant planned
// alone, one plan per tenant). Written as ordinary plan directories under a scratch folder so the runtime
// loads them exactly as it loads the real plan.
import path from 'node:path';
import { type LaunchPlan, writePlanDir } from '../../codegen/index.js';
import { fail } from '../../ir/errors.js';
import type { Manifest } from '../fleet/manifest.js';
import { loadTenants } from '../fleet/tenants.js';
import { planFleet } from '../planner/index.js';
import type { PlannedTenant, TenantIO, TenantInput } from '../../ir/contract/plan.js';

export interface BaselineDirs {
  readonly timeOnly: string;
  readonly spaceOnly: ReadonlyArray<{ readonly tenant: string; readonly dir: string }>;
}

// `onStep(label)` reports each tenant import and plan write (a fleet of ResNets takes a while).
export async function writeBaselines(plan: LaunchPlan, manifest: Manifest, scratch: string, onStep: (label: string) => void = () => {}): Promise<BaselineDirs> {
  const tenants: TenantInput[] = loadTenants(manifest, (t) => onStep(`import ${t.id}`));
  checkSameTenants(plan.tenants, tenants, manifest.source);
  const precision = manifest.precision;
  onStep('plan time-only (one launch per tenant step)');
  const timeOnlyPlan = planFleet(tenants, { precision, grouping: 'none' });
  const timeOnly = path.join(scratch, 'time-only');
  await writePlanDir(timeOnlyPlan, timeOnly, { nvcc: 'off' });
  checkSameIO(plan.tenants, timeOnlyPlan.tenants, manifest.source);
  const spaceOnly: Array<{ tenant: string; dir: string }> = [];
  for (const [i, t] of tenants.entries()) {
    onStep(`plan space-only ${t.id}`);
    const alone = planFleet([t], { precision });
    const dir = path.join(scratch, 'space-only', String(i));
    await writePlanDir(alone, dir, { nvcc: 'off' });
    checkSameIO([plan.tenants[i]!], alone.tenants, manifest.source);
    spaceOnly.push({ tenant: t.id, dir });
  }
  return { timeOnly, spaceOnly };
}

function checkSameTenants(planned: readonly PlannedTenant[], tenants: readonly TenantInput[], source: string): void {
  const a = planned.map((t) => t.id).join(', ');
  const b = tenants.map((t) => t.id).join(', ');
  if (a !== b) fail('USAGE', `the manifest '${source}' does not describe this plan: its tenants are [${b}], the plan's are [${a}]`);
}

// The baselines must take and return exactly what the plan does, or the comparison is meaningless.
function checkSameIO(planned: readonly PlannedTenant[], replanned: readonly PlannedTenant[], source: string): void {
  const sig = (ios: readonly TenantIO[]) => ios.map((io) => `${io.name}:${io.dtype}[${io.shape.join(',')}]@${io.batchAxis}`).join(' ');
  planned.forEach((p, i) => {
    const r = replanned[i]!;
    for (const [what, x, y] of [
      ['inputs', sig(p.inputs), sig(r.inputs)],
      ['outputs', sig(p.outputs), sig(r.outputs)],
    ] as const) {
      if (x !== y)
        fail(
          'USAGE',
          `tenant '${p.id}': the model from '${source}' now has ${what} ${y}, the plan has ${x}; the model changed since \`loom compile\`, recompile the plan`,
        );
    }
  });
}
