// batched vs branched, as the cost model predicts them (roofline and profile), for a few fleets
import path from 'node:path';
import { compileFleet } from '../src/fleet/compile.js';
import { prepareFleet } from '../bench/fleet-table/prepare.js';
import { FLEETS, type FleetSpec, type TenantGroup } from '../bench/fleet-table/specs.js';
import { readPlanDir } from '../codegen/index.js';
import { costModelFromProfile, readProfile } from '../src/calibrate/profile.js';
const zoo = FLEETS['zoo-mix']!.groups;
const g = (kind: string, count: number) => ({ ...zoo.find((x) => x.kind === kind)!, count }) as TenantGroup;
const specs: FleetSpec[] = [
  FLEETS['zoo-mix']!,
  { name: 'mn3', groups: [g('mobilenet', 3)] },
  { name: 'sq3', groups: [g('squeezenet', 3)] },
  { name: 'lstm3', groups: [g('lstm', 3)] },
  { name: 'mlp8', groups: [{ ...FLEETS['mlp-b1']!.groups[0]!, count: 8 }] },
  { name: 'lstm8', groups: [{ ...FLEETS['lstm']!.groups[0]!, count: 8 }] },
];
const prof = costModelFromProfile(readProfile('profiles/nvidia-h100-80gb-hbm3.json'));
for (const spec of specs) {
  const prep = await prepareFleet(spec, { work: '/tmp/bvb', precision: 'fp32', nvcc: 'off', branching: 'never', quietProgress: true });
  const row: string[] = [spec.name];
  for (const [name, cm] of [['roofline', undefined], ['profile', prof]] as const) {
    for (const b of ['never', 'auto'] as const) {
      const out = path.join('/tmp/bvb', spec.name, `${name}-${b}`);
      await compileFleet(path.join(prep.dir, 'manifest.json'), out, { branching: b, nvcc: 'off', ...(cm ? { costModel: cm } : {}) } as never);
      const c = readPlanDir(out).cost as any;
      const tick = (c.criticalPathUs ?? c.predictedTickUs - (c.tickIoUs ?? 0)) + (c.tickIoUs ?? 0);
      row.push(`${name}/${b}: ${tick.toFixed(1)}${c.branches ? ` (batchedUs ${c.branches.batchedUs.toFixed(1)})` : ''}`);
    }
  }
  console.log(row.join('  |  '));
}
