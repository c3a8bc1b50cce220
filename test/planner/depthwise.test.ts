// Depthwise convolutions (group = C_in = C_out) lower to one generated 'depthwise' kernel over every tenant's
// images and channels instead of im2col + a GEMM per (image, channel): hand-built convs (padding, stride,
// dilation, bias or none, 1-D) and MobileNetV3 copies, planned, run on the simulator and the CPU backend, and
// compared with onnxruntime.
import { describe, expect, it } from 'vitest';
import type { Launch } from '../../ir/contract/launch.js';
import type { Plan } from '../../ir/contract/plan.js';
import { fromNumbers } from '../../ir/tensor.js';
import { generateModel } from '../../models/index.js';
import { encodeModel } from '../../src/onnx/write.js';
import { planFleet } from '../../src/planner/index.js';
import { randomF32 } from '../native/helpers.js';
import { cpuErrors } from './cpu-errors.js';
import { type TestTenant, checkFleet, tenantFromBytes } from './fleet-helpers.js';

interface DwSpec {
  readonly c: number;
  readonly kernel: readonly number[]; // [kh, kw] or [k] (1-D)
  readonly spatial: readonly number[];
  readonly strides?: readonly number[];
  readonly pads?: readonly number[];
  readonly dilations?: readonly number[];
  readonly bias: boolean;
  readonly relu?: boolean;
}

function depthwiseModel(s: DwSpec, seed: number): Uint8Array {
  const kn = s.kernel.reduce((a, b) => a * b, 1);
  const initializers = {
    W: fromNumbers('f32', [s.c, 1, ...s.kernel], Array.from(randomF32(s.c * kn, seed))),
    ...(s.bias ? { B: fromNumbers('f32', [s.c], Array.from(randomF32(s.c, seed + 1))) } : {}),
  };
  const attrs = {
    group: s.c,
    kernel_shape: [...s.kernel],
    ...(s.strides ? { strides: [...s.strides] } : {}),
    ...(s.pads ? { pads: [...s.pads] } : {}),
    ...(s.dilations ? { dilations: [...s.dilations] } : {}),
  };
  const conv = { op: 'Conv', inputs: ['x', 'W', ...(s.bias ? ['B'] : [])], outputs: [s.relu ? 'z' : 'y'], name: 'dw', attrs };
  return encodeModel({
    inputs: [{ name: 'x', dtype: 'f32', shape: ['N', s.c, ...s.spatial] }],
    outputs: [{ name: 'y', dtype: 'f32', shape: ['N', s.c, ...s.spatial.map(() => '?')] }],
    nodes: s.relu ? [conv, { op: 'Relu', inputs: ['z'], outputs: ['y'], name: 'act' }] : [conv],
    initializers,
  });
}

const kernelLaunches = (plan: Plan, op: string): Array<Extract<Launch, { kind: 'kernel' }>> =>
  plan.launches.filter((l): l is Extract<Launch, { kind: 'kernel' }> => l.kind === 'kernel' && l.op.op === op);

function expectAllBelow(errors: Record<string, number>, limit: number): void {
  for (const [id, e] of Object.entries(errors)) expect(e, `tenant ${id}`).toBeLessThan(limit);
}

describe('depthwise convolution', () => {
  it('hand-built depthwise convs (pads, strides, dilations, bias or not, 1-D, fused ReLU) match onnxruntime', async () => {
    const specs: DwSpec[] = [
      { c: 8, kernel: [3, 3], spatial: [9, 7], pads: [1, 1, 1, 1], bias: true, relu: true },
      { c: 6, kernel: [5, 3], spatial: [11, 10], strides: [2, 1], pads: [2, 0, 1, 1], dilations: [1, 2], bias: false },
      { c: 4, kernel: [3], spatial: [17], strides: [2], pads: [1, 1], bias: true },
    ];
    const ts: TestTenant[] = specs.map((s, i) => tenantFromBytes(`dw-${i}`, depthwiseModel(s, 50 + i), 2));
    const plan = planFleet(ts.map((t) => t.input));
    expect(kernelLaunches(plan, 'im2col')).toHaveLength(0);
    expect(plan.launches.filter((l) => l.kind !== 'kernel')).toHaveLength(0);
    const dw = kernelLaunches(plan, 'depthwise');
    expect(dw.map((l) => l.segments.length).reduce((a, b) => a + b, 0)).toBe(3);
    expect(dw.some((l) => l.op.op === 'depthwise' && l.op.activation?.kind === 'relu')).toBe(true);
    expectAllBelow(await checkFleet(plan, ts), 1e-5);
    expectAllBelow(await cpuErrors(plan, ts), 1e-5);
  });

  it('two MobileNetV3 copies: every depthwise conv is one launch for both, no im2col for them; outputs match onnxruntime', async () => {
    const ts = [0, 1].map((i) =>
      tenantFromBytes(`mobilenet-${i}`, generateModel('mobilenet', { seed: 60 + i, resolution: 32, classes: 10, widthMult: 0.25 }).bytes, 2),
    );
    const g = ts[0]!.input.graph;
    const depthwiseConvs = g.nodes.filter((n) => n.op === 'Conv' && (n.attrs as { group: number }).group > 1).length;
    expect(depthwiseConvs).toBeGreaterThan(5);
    const plan = planFleet(ts.map((t) => t.input));
    const dw = kernelLaunches(plan, 'depthwise');
    expect(dw).toHaveLength(depthwiseConvs);
    for (const l of dw) expect(l.info.tenants).toEqual([0, 1]);
    // what remains of im2col serves the ordinary (group 1, k > 1) convs only: the stem
    expect(kernelLaunches(plan, 'im2col').length).toBeLessThanOrEqual(1);
    expectAllBelow(await checkFleet(plan, ts), 1e-4);
    expectAllBelow(await cpuErrors(plan, ts), 1e-4);
  });
});
