// Minimized cases from the plan-directory fuzz (plan-fuzz.test.ts) that the JS validator (codegen/validate.ts,
// extents.ts) let through and only the native validator refused (an EVAL at load instead of PLAN_INVALID at
// read): each single mutation of a small compiled plan must now be PLAN_INVALID with a message naming it.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLaunchPlan, writePlanDir } from '../../codegen/index.js';
import { isLoomError } from '../../ir/errors.js';
import { generateModel } from '../../models/index.js';
import { planFleet } from '../../src/planner/index.js';
import { tenantFromBytes } from '../planner/fleet-helpers.js';

let text = '';
let dir = '';

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'loom-planfuzz-reg-'));
  const tenants = [
    tenantFromBytes('mlp', generateModel('mlp', { seed: 3, sizes: [8, 12, 4] }).bytes, 2),
    tenantFromBytes(
      'enc',
      generateModel('encoder', { seed: 6, layers: 1, hidden: 8, heads: 2, ffn: 16, seq: 4, vocabSize: 10, maxPositions: 8 } as never).bytes,
      1,
    ),
  ];
  await writePlanDir(planFleet(tenants.map((t) => t.input)), dir, { nvcc: 'off' });
  text = readFileSync(path.join(dir, 'plan.json'), 'utf8');
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// biome-ignore lint/suspicious/noExplicitAny: surgery on parsed JSON
type J = Record<string, any>;

function refused(mutate: (plan: J) => void): string {
  const plan = JSON.parse(text) as J;
  mutate(plan);
  try {
    parseLaunchPlan(JSON.stringify(plan));
  } catch (e) {
    expect(isLoomError(e) && e.code).toBe('PLAN_INVALID');
    return (e as Error).message;
  }
  throw new Error('the mutated plan was accepted');
}

const kernel = (plan: J, op: string): J => {
  const l = (plan.launches as J[]).find((x) => x.kind === 'kernel' && x.op.op === op);
  if (!l) throw new Error(`the test plan has no '${op}' launch`);
  return l;
};

describe('plan fuzz regressions: refused at read with PLAN_INVALID', () => {
  it('the unmutated plan reads', () => {
    expect(() => parseLaunchPlan(text)).not.toThrow();
  });

  it("a layernorm input's strides are checked like an eltwise input's (rank and span)", () => {
    expect(refused((p) => (kernel(p, 'layernorm').segments[0].inputs[0].strides = [8, 1, 1]))).toMatch(
      /'layernorm' segment 0: input 0 strides \[8, 1, 1\] do not fit shape/,
    );
    expect(refused((p) => kernel(p, 'layernorm').segments[0].inputs[0].strides.splice(1, 1))).toMatch(/input 0 strides \[\d+\] do not fit shape/);
    expect(refused((p) => (kernel(p, 'layernorm').segments[0].inputs[0].strides[0] = 2 ** 40))).toMatch(
      /'layernorm' segment 0 input 0: bytes \[\d+, \d+\) fall outside arena/,
    );
  });

  it('a kernel output in the weights arena', () => {
    expect(refused((p) => (kernel(p, 'copy').segments[0].out.arena = 'weights'))).toMatch(/'copy' segment 0 out: writes into the read-only weights arena/);
  });

  it("a tenant's I/O slot outside the io arena", () => {
    expect(refused((p) => (p.tenants[1].outputs[0].ref.arena = 'act'))).toMatch(/a tenant's I\/O slot must lie in arena 'io', not 'act'/);
  });

  it("a gather whose output dtype differs in size from the data's", () => {
    expect(refused((p) => (kernel(p, 'gather').segments[0].inputs[0].dtype = 'f16'))).toMatch(/gather output dtype f32 differs in size from the data's f16/);
  });
});
