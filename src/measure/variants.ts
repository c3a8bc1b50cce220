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

export type SpaceOnlyDirs = BaselineDirs['spaceOnly'];

export interface BaselineOptions {
  // 'off' (default): the baselines' kernels compile at load (NVRTC, once per plan); 'auto': nvcc writes a cubin
  // at plan time when the toolkit is there, cached by source, so a hundred same-architecture plans compile once.
  readonly nvcc?: 'auto' | 'off';
  readonly onStep?: (label: string) => void; // each tenant import and plan write (a fleet of ResNets takes a while)
}

export async function writeBaselines(plan: LaunchPlan, manifest: Manifest, scratch: string, opts: BaselineOptions = {}): Promise<BaselineDirs> {
  const onStep = opts.onStep ?? (() => {});
  const tenants = baselineTenants(plan, manifest, onStep);
  onStep('plan time-only (one launch per tenant step)');
  const timeOnlyPlan = planFleet(tenants, { precision: manifest.precision, grouping: 'none' });
  const timeOnly = path.join(scratch, 'time-only');
  await writePlanDir(timeOnlyPlan, timeOnly, { nvcc: opts.nvcc ?? 'off' });
  checkSameIO(plan.tenants, timeOnlyPlan.tenants, manifest.source);
  return { timeOnly, spaceOnly: await planSpaceOnly(plan, manifest, tenants, path.join(scratch, 'space-only'), opts) };
}

// Only the space-only baseline: one plan per tenant, in <dir>/<tenant index>/ (the fleet table's column).
export async function writeSpaceOnly(plan: LaunchPlan, manifest: Manifest, dir: string, opts: BaselineOptions = {}): Promise<SpaceOnlyDirs> {
  return planSpaceOnly(plan, manifest, baselineTenants(plan, manifest, opts.onStep ?? (() => {})), dir, opts);
}

function baselineTenants(plan: LaunchPlan, manifest: Manifest, onStep: (label: string) => void): TenantInput[] {
  const tenants: TenantInput[] = loadTenants(manifest, (t) => onStep(`import ${t.id}`));
  checkSameTenants(plan.tenants, tenants, manifest.source);
  return tenants;
}

async function planSpaceOnly(
  plan: LaunchPlan,
  manifest: Manifest,
  tenants: readonly TenantInput[],
  dir: string,
  opts: BaselineOptions,
): Promise<SpaceOnlyDirs> {
  const spaceOnly: Array<{ tenant: string; dir: string }> = [];
  for (const [i, t] of tenants.entries()) {
    opts.onStep?.(`plan space-only ${t.id}`);
    const alone = planFleet([t], { precision: manifest.precision });
    const out = path.join(dir, String(i));
    await writePlanDir(alone, out, { nvcc: opts.nvcc ?? 'off' });
    checkSameIO([plan.tenants[i]!], alone.tenants, manifest.source);
    spaceOnly.push({ tenant: t.id, dir: out });
  }
  return spaceOnly;
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
