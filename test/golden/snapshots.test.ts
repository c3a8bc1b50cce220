// Golden snapshots of what the first stages produce for the small zoo fleets of tools/plan-fleets.ts: the
// canonical IR text of a fleet's first tenant (its siblings are the same model with other seeds) and a compact
// summary of the Plan. A change to a pass or to the planner shows up here as a reviewable diff; when the change
// is meant, update with `npx vitest run test/golden/snapshots.test.ts -u` and review the diff in the commit.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { printGraph } from '../../ir/print.js';
import type { Plan } from '../../ir/contract/plan.js';
import { writeHashFleet } from '../../tools/plan-fleets.js';
import { compileFleet } from '../../src/fleet/compile.js';

const FLEETS = ['mlp', 'lstm', 'encoder', 'mobilenet', 'squeezenet', 'resnet18'];
const root = mkdtempSync(path.join(tmpdir(), 'loom-snapshots-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const shape = (s: readonly number[]) => `[${s.join(',')}]`;

// One line per launch (stage, kind, label, tenants), then the arenas and counts: not plan.json's every field.
function planSummaryText(plan: Plan): string {
  const lines = [
    `precision ${plan.precision}; ${plan.tenants.length} tenants; ${plan.launches.length} launches in ${plan.stages} stages; ${plan.weights.length} weight blobs`,
  ];
  const a = plan.arenas;
  lines.push(`arenas: weights ${a.weights} B, act ${a.act} B (${a.actWithoutReuse} B without reuse), io ${a.io} B`);
  for (const t of plan.tenants) {
    const io = (list: typeof t.inputs) => list.map((x) => `${x.name}: ${x.dtype}${shape(x.shape)}`).join(', ');
    lines.push(`tenant ${t.id}: maxBatch ${t.maxBatch}, ${t.layers} layers; in ${io(t.inputs)}; out ${io(t.outputs)}`);
  }
  lines.push('launches (stage kind: label [tenants]):');
  for (const l of plan.launches) {
    const what = l.kind === 'kernel' ? `kernel ${l.op.op}` : l.kind;
    lines.push(`  ${String(l.info.stage).padStart(3)} ${what}: ${l.info.label} [${l.info.tenants.join(',')}]`);
  }
  return `${lines.join('\n')}\n`;
}

describe('golden snapshots: canonical IR and plan summary of the zoo fleets', () => {
  for (const fleet of FLEETS) {
    it(`fleet ${fleet}`, async () => {
      const dir = path.join(root, fleet);
      const r = await compileFleet(writeHashFleet(fleet, dir), path.join(dir, 'out'), { emit: 'plan' });
      await expect(printGraph(r.tenants[0]!.graph)).toMatchFileSnapshot(`__snapshots__/${fleet}.ir`);
      await expect(planSummaryText(r.plan!)).toMatchFileSnapshot(`__snapshots__/${fleet}.plan.txt`);
    });
  }
});
