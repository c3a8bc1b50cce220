// Residual adds in the GEMM epilogue (src/planner/lower-residual.ts): a Conv / Gemm / MatMul whose only use is
// Add(y, r), maybe then an activation, runs as one GEMM launch with C = act(A·B + bias + r). Checked on real
// residual nets (ResNet-18, MobileNetV3, a transformer encoder: two tenants each, their own weights) and on a
// hand-built graph holding the forms that must not fuse, against onnxruntime on the plan simulator and the CPU
// backend, fused and apart.
import { describe, expect, it } from 'vitest';
import type { Launch } from '../../ir/contract/launch.js';
import type { Plan } from '../../ir/contract/plan.js';
import { buildLaunchPlan, parseLaunchPlan } from '../../codegen/index.js';
import { fromNumbers } from '../../ir/tensor.js';
import { generateModel } from '../../models/index.js';
import { type AttrValue, encodeModel } from '../../src/onnx/write.js';
import { planFleet } from '../../src/planner/index.js';
import { expectLoomError } from '../support/errors.js';
import { randomF32 } from '../native/helpers.js';
import { cpuErrors } from './cpu-errors.js';
import { type TestTenant, checkFleet, tenantFromBytes } from './fleet-helpers.js';

const residualLaunches = (p: Plan): Launch[] =>
  p.launches.filter(
    (l) => (l.kind === 'gemm' && l.problem.residual === true) || (l.kind === 'gemm_grouped' && l.groups.some((g) => g.problem.residual === true)),
  );
const eltwiseLaunches = (p: Plan): number => p.launches.filter((l) => l.kind === 'kernel' && l.op.op === 'eltwise').length;

function expectAllBelow(errors: Record<string, number>, limit: number): void {
  for (const [id, e] of Object.entries(errors)) expect(e, `tenant ${id}`).toBeLessThan(limit);
}

const zoo = (kind: 'resnet18' | 'mobilenet' | 'encoder', opts: object): TestTenant[] =>
  [1, 2].map((seed) => tenantFromBytes(`${kind}-${seed}`, generateModel(kind, { seed: 70 + seed, ...opts } as never).bytes, 2));

// x [N,16]; each line one block; `fused` says whether its Add folds into the GEMM before it.
//   MatMul + bias, Add(·, x), Relu          fused (residual and activation)
//   Gemm(transB), Add(h1, ·)                 fused (the residual is the Add's first operand)
//   MatMul, Relu, Add(·, s2)                 not: the activation comes before the add
//   MatMul, Add(·, b) with b [1,16] an input not: a broadcast add
//   MatMul, Add(·, s4), the MatMul's output also a graph output: not (two uses)
function blocksModel(seed: number): Uint8Array {
  const w = (name: string, s: number, shape: number[]) =>
    [
      name,
      fromNumbers(
        'f32',
        shape,
        Array.from(
          randomF32(
            shape.reduce((a, b) => a * b, 1),
            seed * 10 + s,
          ),
        ),
      ),
    ] as const;
  const initializers = Object.fromEntries([
    w('W1', 1, [16, 16]),
    w('B1', 2, [16]),
    w('W2', 3, [16, 16]),
    w('C2', 4, [16]),
    w('W3', 5, [16, 16]),
    w('W4', 6, [16, 16]),
    w('W5', 7, [16, 16]),
  ]);
  const node = (op: string, inputs: string[], out: string, attrs?: Readonly<Record<string, AttrValue>>) => ({
    op,
    inputs,
    outputs: [out],
    name: out,
    ...(attrs ? { attrs } : {}),
  });
  return encodeModel({
    inputs: [
      { name: 'x', dtype: 'f32', shape: ['N', 16] },
      { name: 'b', dtype: 'f32', shape: [1, 16] },
    ],
    outputs: [
      { name: 's5', dtype: 'f32', shape: ['N', 16] },
      { name: 'm5', dtype: 'f32', shape: ['N', 16] },
    ],
    nodes: [
      node('MatMul', ['x', 'W1'], 'm1'),
      node('Add', ['m1', 'B1'], 'm1b'),
      node('Add', ['m1b', 'x'], 's1'),
      node('Relu', ['s1'], 'h1'),
      node('Gemm', ['h1', 'W2', 'C2'], 'g2', { transB: 1 }),
      node('Add', ['h1', 'g2'], 's2'),
      node('MatMul', ['s2', 'W3'], 'm3'),
      node('Relu', ['m3'], 'r3'),
      node('Add', ['r3', 's2'], 's3'),
      node('MatMul', ['s3', 'W4'], 'm4'),
      node('Add', ['m4', 'b'], 's4'),
      node('MatMul', ['s4', 'W5'], 'm5'),
      node('Add', ['m5', 's4'], 's5'),
    ],
    initializers,
  });
}

describe('residual adds in the GEMM epilogue', () => {
  for (const [kind, opts, adds] of [
    ['resnet18', { width: 8, resolution: 32, classes: 10 }, 8],
    ['mobilenet', { resolution: 32, classes: 10, widthMult: 0.25 }, 7],
    ['encoder', { layers: 2, hidden: 32, heads: 2, ffn: 64, seq: 8, vocabSize: 64, maxPositions: 16 }, 4],
  ] as const) {
    it(`${kind}: each residual add is folded into a GEMM serving both tenants; onnxruntime's values, fused or apart`, async () => {
      const ts = zoo(kind, opts);
      const fused = planFleet(ts.map((t) => t.input));
      const apart = planFleet(
        ts.map((t) => t.input),
        { residualEpilogue: false },
      );
      const res = residualLaunches(fused);
      expect(res).toHaveLength(adds);
      for (const l of res) expect(l.info.tenants).toEqual([0, 1]);
      expect(residualLaunches(apart)).toHaveLength(0);
      expect(eltwiseLaunches(apart) - eltwiseLaunches(fused)).toBe(adds);
      // one launch fewer per add: a ResNet downsample conv (whose output the add also reads) is lowered before the
      // block's last conv, which takes the add, so it still shares a launch with the block's first conv
      expect(apart.launches.length - fused.launches.length).toBe(adds);
      for (const plan of [fused, apart]) expectAllBelow(await checkFleet(plan, ts), 1e-4);
      expectAllBelow(await cpuErrors(fused, ts), 1e-4);
    });
  }

  it('folds only the adds it may: not after an activation, not a broadcast, not a GEMM output read twice', async () => {
    const ts = [1, 2].map((seed) => tenantFromBytes(`blocks-${seed}`, blocksModel(seed), 3));
    const plan = planFleet(ts.map((t) => t.input));
    const res = residualLaunches(plan);
    expect(res).toHaveLength(2); // the MatMul + Relu block and the Gemm block, each over both tenants
    const problems = res.map((l) => (l.kind === 'gemm' ? l.problem : null));
    expect(problems.map((p) => p?.activation?.kind ?? null)).toEqual(['relu', null]);
    expect(problems.map((p) => p?.bias)).toEqual(['row', 'row']);
    for (const l of res) if (l.kind === 'gemm') for (const e of l.entries) expect(e.residual).toBeDefined();
    expectAllBelow(await checkFleet(plan, ts), 1e-5);
    expectAllBelow(await checkFleet(plan, ts, () => 1), 1e-5); // a tick of one row per tenant (rowsUnit)
    expectAllBelow(await cpuErrors(plan, ts), 1e-5);
    const bf16 = planFleet(
      ts.map((t) => t.input),
      { precision: 'bf16' },
    );
    expect(residualLaunches(bf16)).toHaveLength(2); // C and the residual stay f32 whatever the operands are
    expectAllBelow(await checkFleet(bf16, ts), 2e-2);
  });

  it('a plan whose residual flag and entries disagree is refused, naming the launch', () => {
    const ts = [tenantFromBytes('blocks-1', blocksModel(1), 1)];
    const lp = buildLaunchPlan(planFleet(ts.map((t) => t.input))).plan;
    expect(() => parseLaunchPlan(JSON.stringify(lp))).not.toThrow();
    const i = lp.launches.findIndex((l) => l.kind === 'gemm' && l.problem.residual === true);
    expect(i).toBeGreaterThanOrEqual(0);
    const strip = structuredClone(lp) as unknown as { launches: Array<{ entries: Array<{ residual?: unknown }> }> };
    delete strip.launches[i]!.entries[0]!.residual;
    expectLoomError(() => parseLaunchPlan(JSON.stringify(strip)), 'PLAN_INVALID', `launch ${i}`, 'residual');
    const off = structuredClone(lp) as unknown as { launches: Array<{ problem: { residual?: boolean } }> };
    off.launches[i]!.problem.residual = false;
    expectLoomError(() => parseLaunchPlan(JSON.stringify(off)), 'PLAN_INVALID', 'residual');
  });
});
