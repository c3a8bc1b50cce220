// PlanOptions.convKernel 'implicit': every f32 conv that would go through im2col (one group, not 1 x 1 / stride 1 /
// no padding) is one generated conv launch instead — no im2col, no GEMM — its filter reordered to [m, kh, kw, c],
// bias, residual add and activation fused. Checked on the zoo's ResNet-18, MobileNetV3 and SqueezeNet (two
// tenants each, their own weights) against onnxruntime on the plan simulator, the CPU backend and cuda-emu (the
// generated kernel compiled for the host), and that the default, bf16 plans and grouped convs keep im2col.
import { describe, expect, it } from 'vitest';
import type { Plan } from '../../ir/contract/plan.js';
import { generateModel } from '../../models/index.js';
import { planFleet } from '../../src/planner/index.js';
import { EMU_SKIP_REASON } from '../native/emu-env.js';
import { cpuErrors } from './cpu-errors.js';
import { type TestTenant, checkFleet, tenantFromBytes } from './fleet-helpers.js';

const count = (p: Plan, op: string): number => p.launches.filter((l) => l.kind === 'kernel' && l.op.op === op).length;
const gemmLaunches = (p: Plan): number => p.launches.filter((l) => l.kind !== 'kernel').length;

const zoo = (kind: 'resnet18' | 'mobilenet' | 'squeezenet', opts: object): TestTenant[] =>
  [1, 2].map((seed) => tenantFromBytes(`${kind}-${seed}`, generateModel(kind, { seed: 70 + seed, ...opts } as never).bytes, 2));

function expectAllBelow(errors: Record<string, number>, limit: number, what: string): void {
  for (const [id, e] of Object.entries(errors)) expect(e, `${what}: tenant ${id}`).toBeLessThan(limit);
}

describe('convolutions as generated implicit-GEMM kernels', () => {
  for (const [kind, opts] of [
    ['resnet18', { width: 8, resolution: 32, classes: 10 }],
    ['mobilenet', { resolution: 32, classes: 10, widthMult: 0.25 }],
    ['squeezenet', { resolution: 32, classes: 10 }],
  ] as const) {
    it(`${kind}: no im2col, a conv launch per conv shape, onnxruntime's values (simulator, CPU, cuda-emu)`, async () => {
      const ts = zoo(kind, opts);
      const inputs = ts.map((t) => t.input);
      const im2col = planFleet(inputs);
      const implicit = planFleet(inputs, { convKernel: 'implicit' });
      expect(count(im2col, 'im2col')).toBeGreaterThan(0);
      expect(count(implicit, 'im2col')).toBe(0);
      // at least a conv launch per im2col launch: an im2col launch may hold two geometries (ResNet's downsample and
      // strided 3 x 3 read the same input), a conv launch one
      expect(count(implicit, 'conv')).toBeGreaterThanOrEqual(count(im2col, 'im2col'));
      // each conv's GEMM went with its im2col; the 1 x 1 convs (and the classifier) stay GEMMs
      expect(gemmLaunches(implicit)).toBeLessThan(gemmLaunches(im2col));
      for (const l of implicit.launches) {
        if (l.kind !== 'kernel' || l.op.op !== 'conv') continue;
        expect(l.segments.length, "both tenants' images (2 each) in one launch").toBe(4);
        const filters = new Set(l.segments.map((s) => JSON.stringify(s.inputs[1]!.ref)));
        expect(filters.size, 'each tenant its own filter').toBe(2);
      }
      expectAllBelow(await checkFleet(implicit, ts), 1e-4, 'simulator');
      expectAllBelow(await cpuErrors(implicit, ts), 1e-4, 'cpu');
      if (EMU_SKIP_REASON === null) expectAllBelow(await cpuErrors(implicit, ts, 'cuda-emu'), 1e-4, 'cuda-emu');
    });
  }

  it("ResNet-18's residual adds and their ReLUs go into the conv kernel", () => {
    const inputs = zoo('resnet18', { width: 8, resolution: 32, classes: 10 }).map((t) => t.input);
    const implicit = planFleet(inputs, { convKernel: 'implicit' });
    const convs = implicit.launches.filter((l) => l.kind === 'kernel' && l.op.op === 'conv');
    const withResidual = convs.filter((l) => l.kind === 'kernel' && l.op.op === 'conv' && l.op.residual);
    expect(withResidual.length).toBeGreaterThan(0);
    for (const l of withResidual) if (l.kind === 'kernel' && l.op.op === 'conv') expect(l.op.activation?.kind).toBe('relu');
    expect(count(implicit, 'eltwise')).toBe(count(planFleet(inputs), 'eltwise'));
  });

  it('bf16 plans keep im2col and the GEMM', () => {
    const inputs = zoo('resnet18', { width: 8, resolution: 32, classes: 10 }).map((t) => t.input);
    const bf16 = planFleet(inputs, { precision: 'bf16', convKernel: 'implicit' });
    expect(count(bf16, 'conv')).toBe(0);
    expect(count(bf16, 'im2col')).toBeGreaterThan(0);
  });
});
