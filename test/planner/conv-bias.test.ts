// An f32 conv through im2col adds its bias as one more row of its GEMM's k (src/planner/lower-gemm.ts biasAsRow):
// W gains the bias as a last column, the columns a row of ones (written by the im2col launch itself: its op's
// `ones`), and the GEMM has no bias left for an epilogue kernel. Checked on ResNet-18 and MobileNetV3 exports of the zoo (two
// tenants each, their own weights) against onnxruntime on the plan simulator and the CPU backend, with and
// without (PlanOptions.convBiasInGemm: false), and that bf16 plans and convs without im2col keep the epilogue bias.
import { describe, expect, it } from 'vitest';
import type { Launch } from '../../ir/contract/launch.js';
import type { Plan } from '../../ir/contract/plan.js';
import { generateModel } from '../../models/index.js';
import { planFleet } from '../../src/planner/index.js';
import { cpuErrors } from './cpu-errors.js';
import { type TestTenant, checkFleet, tenantFromBytes } from './fleet-helpers.js';

type GemmLaunch = Extract<Launch, { kind: 'gemm' }>;
const gemms = (p: Plan): GemmLaunch[] => p.launches.filter((l): l is GemmLaunch => l.kind === 'gemm');
const fills = (p: Plan): number => p.launches.filter((l) => l.kind === 'kernel' && l.op.op === 'fill').length;
const im2cols = (p: Plan): number => p.launches.filter((l) => l.kind === 'kernel' && l.op.op === 'im2col').length;
const onesRows = (p: Plan): number => p.launches.filter((l) => l.kind === 'kernel' && l.op.op === 'im2col' && l.op.ones === true).length;

const zoo = (kind: 'resnet18' | 'mobilenet', opts: object): TestTenant[] =>
  [1, 2].map((seed) => tenantFromBytes(`${kind}-${seed}`, generateModel(kind, { seed: 90 + seed, ...opts } as never).bytes, 2));

function expectAllBelow(errors: Record<string, number>, limit: number): void {
  for (const [id, e] of Object.entries(errors)) expect(e, `tenant ${id}`).toBeLessThan(limit);
}

describe('a conv bias as a row of the GEMM', () => {
  for (const [kind, opts] of [
    ['resnet18', { width: 8, resolution: 32, classes: 10 }],
    ['mobilenet', { resolution: 32, classes: 10, widthMult: 0.25 }],
  ] as const) {
    it(`${kind}: every im2col conv's GEMM has k + 1 and no bias, its im2col writes the ones; onnxruntime's values either way`, async () => {
      const ts = zoo(kind, opts);
      const folded = planFleet(ts.map((t) => t.input));
      const apart = planFleet(
        ts.map((t) => t.input),
        { convBiasInGemm: false },
      );
      expect(im2cols(folded)).toBeGreaterThan(0);
      expect(onesRows(folded)).toBe(im2cols(folded)); // each im2col launch writes its ones row
      expect(onesRows(apart)).toBe(0);
      expect(fills(folded), 'no launch of its own for the ones').toBe(fills(apart));
      expect(folded.launches.length).toBe(apart.launches.length);
      expect(gemms(folded).filter((g) => g.problem.bias === 'col').length).toBeLessThan(gemms(apart).filter((g) => g.problem.bias === 'col').length);
      // the stem conv (3 channels, 3 x 3 or 7 x 7 window) takes k + 1 in one and k in the other
      const stemK = (p: Plan) => gemms(p)[0]!.problem.k;
      expect(stemK(folded)).toBe(stemK(apart) + 1);
      expect(gemms(folded)[0]!.problem.bias).toBe('none');
      expect(gemms(apart)[0]!.problem.bias).toBe('col');
      for (const plan of [folded, apart]) expectAllBelow(await checkFleet(plan, ts), 1e-4);
      expectAllBelow(await cpuErrors(folded, ts), 1e-4);
    });
  }

  it('keeps the epilogue bias in bf16 plans (a bf16 bias row would round the bias)', () => {
    const ts = zoo('resnet18', { width: 8, resolution: 32, classes: 10 });
    const bf16 = planFleet(
      ts.map((t) => t.input),
      { precision: 'bf16' },
    );
    expect(gemms(bf16)[0]!.problem.bias).toBe('col');
    expect(onesRows(bf16)).toBe(0);
    expect(fills(bf16)).toBe(
      fills(
        planFleet(
          ts.map((t) => t.input),
          { precision: 'bf16', convBiasInGemm: false },
        ),
      ),
    );
  });
});
