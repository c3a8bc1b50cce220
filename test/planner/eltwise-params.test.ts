// Elementwise programs that differ only in constants share one launch (src/planner/eltwise-params.ts): the
// differing constants become per-segment params, the agreed ones stay baked in, and past ELT_MAX_PARAMS the
// planner falls back to one launch per program. Fleets of copies with different scalars are planned, run on
// the plan simulator and on the CPU backend, and compared tenant by tenant with onnxruntime.
import { describe, expect, it } from 'vitest';
import { formatParams } from '../../src/cli/inspect.js';
import { launchRows } from '../../src/fleet/summary.js';
import { ELT_MAX_PARAMS, type EltInstr, type KernelOp, type Launch, segmentOf } from '../../ir/contract/launch.js';
import type { Plan } from '../../ir/contract/plan.js';
import { constantsAbstracted, mergeConstants } from '../../src/planner/eltwise-params.js';
import { planFleet } from '../../src/planner/index.js';
import { bertCopies, chainFleet } from './const-fleets.js';
import { cpuErrors } from './cpu-errors.js';
import { checkFleet } from './fleet-helpers.js';

type EltwiseOp = Extract<KernelOp, { op: 'eltwise' }>;
const elt = (program: EltInstr[]): EltwiseOp => ({ op: 'eltwise', program, computeF32: true });
const scaleAdd = (a: number, b: number): EltwiseOp =>
  elt([{ op: 'in', i: 0 }, { op: 'const', v: a }, { op: 'mul' }, { op: 'const', v: b }, { op: 'add' }, { op: 'const', v: a }, { op: 'div' }]);

const kernels = (plan: Plan): Array<Extract<Launch, { kind: 'kernel' }>> => plan.launches.filter((l) => l.kind === 'kernel');
const eltwise = (plan: Plan) => kernels(plan).filter((l): l is typeof l & { op: EltwiseOp } => l.op.op === 'eltwise');
const withParams = (plan: Plan) => eltwise(plan).filter((l) => l.op.program.some((i) => i.op === 'param'));

function expectAllBelow(errors: Record<string, number>, limit: number): void {
  for (const [id, e] of Object.entries(errors)) expect(e, `tenant ${id}`).toBeLessThan(limit);
}

describe('mergeConstants', () => {
  it('keeps agreed constants, turns differing ones into params, one param per distinct column of values', () => {
    const m = mergeConstants([scaleAdd(2, 5), scaleAdd(3, 5), scaleAdd(4, 5)])!;
    expect(m.op.program).toEqual([
      { op: 'in', i: 0 },
      { op: 'param', i: 0 },
      { op: 'mul' },
      { op: 'const', v: 5 },
      { op: 'add' },
      { op: 'param', i: 0 }, // the same values as position 1 in every step: the same param
      { op: 'div' },
    ]);
    expect(m.params).toEqual([[2], [3], [4]]);
  });

  it('returns null when nothing differs, and when more than ELT_MAX_PARAMS constants differ', () => {
    expect(mergeConstants([scaleAdd(2, 5), scaleAdd(2, 5)])).toBeNull();
    const chain = (base: number): EltwiseOp =>
      elt([{ op: 'in', i: 0 }, ...Array.from({ length: ELT_MAX_PARAMS + 1 }, (_, k): EltInstr[] => [{ op: 'const', v: base + k }, { op: 'add' }]).flat()]);
    expect(mergeConstants([chain(0), chain(100)])).toBeNull();
    const fits = (base: number): EltwiseOp =>
      elt([{ op: 'in', i: 0 }, ...Array.from({ length: ELT_MAX_PARAMS }, (_, k): EltInstr[] => [{ op: 'const', v: base + k }, { op: 'add' }]).flat()]);
    expect(mergeConstants([fits(0), fits(100)])!.params[1]).toHaveLength(ELT_MAX_PARAMS);
  });

  it('tells -0 from 0, and refuses programs that differ in more than constants', () => {
    expect(mergeConstants([scaleAdd(0, 1), scaleAdd(-0, 1)])!.params).toEqual([[0], [-0]]);
    expect(() => mergeConstants([scaleAdd(2, 5), elt([{ op: 'in', i: 0 }])])).toThrow(/differ in more than their constants/);
  });

  it('keys programs by structure: equal whatever their constants, different for another structure', () => {
    expect(constantsAbstracted(scaleAdd(2, 5))).toBe(constantsAbstracted(scaleAdd(-7, 0.25)));
    expect(constantsAbstracted(scaleAdd(2, 5))).not.toBe(constantsAbstracted(elt([{ op: 'in', i: 0 }, { op: 'const', v: 2 }, { op: 'mul' }])));
  });
});

describe('fleets whose copies differ in scalar constants', () => {
  it('a chain of scalar ops: one launch for three tenants, the shared constant baked, the rest params', async () => {
    const ts = chainFleet(5);
    const plan = planFleet(ts.map((t) => t.input));
    expect(plan.launches).toHaveLength(1);
    const [l] = eltwise(plan);
    expect(l!.info.tenants).toEqual([0, 1, 2]);
    expect(l!.info.label).toMatch(/3 tenants, 4 params/);
    expect(l!.op.program.filter((i) => i.op === 'const')).toHaveLength(1);
    expect(l!.op.program.filter((i) => i.op === 'param')).toHaveLength(4);
    for (const s of l!.segments) expect(segmentOf(l!.op, s).params).toHaveLength(4);
    // what `loom inspect` shows of it (text and --json rows)
    expect(formatParams(plan)).toMatch(/^params {7}1 eltwise launch read per-tenant constants \(params\):\n {2}launch 0: chain5-0 \[[^\]]+\], chain5-1/);
    expect(launchRows(plan)[0]!.params!.map((p) => p.tenant)).toEqual(['chain5-0', 'chain5-1', 'chain5-2']);
    expect(launchRows(plan)[0]!.params![2]!.values).toEqual(segmentOf(l!.op, l!.segments[2]!).params);
    expectAllBelow(await checkFleet(plan, ts), 1e-5);
    expectAllBelow(await cpuErrors(plan, ts), 1e-5);
  });

  it(`past ${ELT_MAX_PARAMS} differing constants: one launch per tenant, no params`, async () => {
    const ts = chainFleet(ELT_MAX_PARAMS + 2);
    const plan = planFleet(ts.map((t) => t.input));
    expect(
      eltwise(plan)
        .map((l) => l.info.tenants.join(','))
        .sort(),
    ).toEqual(['0', '1', '2']);
    expect(withParams(plan)).toHaveLength(0);
    expectAllBelow(await checkFleet(plan, ts), 1e-5);
    expectAllBelow(await cpuErrors(plan, ts), 1e-5);
    const fits = chainFleet(ELT_MAX_PARAMS + 1); // 16 differ: still one launch
    expect(planFleet(fits.map((t) => t.input)).launches).toHaveLength(1);
  });

  it('three BERT exports with different scalars run in as many launches as one of them', async () => {
    const ts = bertCopies();
    const plan = planFleet(ts.map((t) => t.input));
    const alone = planFleet([ts[0]!.input]);
    expect(plan.launches.length).toBe(alone.launches.length);
    for (const l of eltwise(plan)) expect(l.info.tenants).toEqual([0, 1, 2]);
    // the attention scale, GELU's three constants and the mask value differ per copy
    expect(withParams(plan).length).toBeGreaterThanOrEqual(3);
    expectAllBelow(await checkFleet(plan, ts), 1e-4);
    expectAllBelow(await cpuErrors(plan, ts), 1e-4);
  });
});
