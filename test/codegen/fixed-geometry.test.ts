import { describe, expect, it } from 'vitest';
import { fixedGeometry } from '../../codegen/fixed-geometry.js';
import type { GeomSegment, Launch, PoolGeometry, Segment } from '../../ir/contract/launch.js';

type KernelLaunch = Extract<Launch, { kind: 'kernel' }>;

const G: PoolGeometry = {
  n: 1,
  c: 64,
  h: 56,
  w: 56,
  oh: 56,
  ow: 56,
  kh: 3,
  kw: 3,
  sh: 1,
  sw: 1,
  padTop: 1,
  padLeft: 1,
  padBottom: 1,
  padRight: 1,
  dh: 1,
  dw: 1,
};

function launch(op: 'pool' | 'depthwise' | 'im2col', geoms: readonly PoolGeometry[]): KernelLaunch {
  const segments: Segment[] = geoms.map(
    (geom, t): GeomSegment => ({
      tenant: t,
      geom,
      inputs: [{ ref: { arena: 'act', offset: 0 }, dtype: 'f32', strides: [] }],
      out: { arena: 'act', offset: 0 },
      outDType: 'f32',
    }),
  );
  const kernelOp = op === 'pool' ? { op, mode: 'max' as const, countIncludePad: false } : op === 'depthwise' ? { op, activation: null } : { op };
  return {
    kind: 'kernel',
    id: 0,
    kernel: 'k0',
    op: kernelOp,
    segments,
    info: { stage: 0, label: op, tenants: [], sources: [], flops: 0, bytes: 0, predictedUs: 0, ungroupedUs: 0 },
  } as KernelLaunch;
}

describe('geometry-fixed kernels (codegen/fixed-geometry.ts)', () => {
  it('fixes the geometry every segment shares, for pool, depthwise and im2col', () => {
    for (const op of ['pool', 'depthwise', 'im2col'] as const) expect(fixedGeometry(launch(op, [G, G, { ...G }]))).toEqual(G);
  });

  it('keeps the generic kernel where segments differ in any field', () => {
    expect(fixedGeometry(launch('pool', [G, { ...G, padBottom: 0 }]))).toBeNull();
    expect(fixedGeometry(launch('im2col', [G, { ...G, dw: 2 }]))).toBeNull();
  });

  it('keeps the generic kernel where an index would pass 32-bit math', () => {
    const big = { ...G, c: 512, h: 1024, w: 1024, oh: 1024, ow: 1024 }; // 512 Mi input elements per segment
    expect(fixedGeometry(launch('pool', [big]))).toBeNull();
    // im2col's items are C * KH * KW * OH * OW per segment: 64 * 9 * 3136 = 1.8 M, x 600 segments = 1.08 G > 2^30
    expect(fixedGeometry(launch('im2col', Array(600).fill(G)))).toBeNull();
    expect(fixedGeometry(launch('im2col', Array(500).fill(G)))).toEqual(G);
  });
});
