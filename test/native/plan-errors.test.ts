// A malformed or out-of-bounds plan is an EVAL error at create time, naming the launch and the field,
// never a crash; the addon reports what it was built with.
import { describe, expect, it } from 'vitest';
import { loadNativeAddon } from '../../runtime/native-addon.js';
import { ArenaBuilder, info } from './helpers.js';

function create(plan: unknown, weights = new Uint8Array(0)) {
  return () => loadNativeAddon().create(plan, weights, { backend: 'cpu', threads: 1 });
}

function gemmPlan(cOffset: number) {
  const b = new ArenaBuilder();
  const a = b.alloc('io', 'f32', 4);
  const w = b.alloc('weights', 'f32', 4);
  b.alloc('io', 'f32', 4);
  b.launches.push({
    kind: 'gemm',
    id: 7,
    dtype: 'f32',
    info: info('gemm 2x2x2'),
    problem: { m: 2, n: 2, k: 2, transA: false, transB: false, lda: 2, ldb: 2, ldc: 2, alpha: 1, beta: 1, bias: 'none', ldBias: 0, activation: null },
    entries: [{ tenant: 0, a: a.ref, b: w.ref, c: { arena: 'io', offset: cOffset }, bias: null }],
    strides: null,
  });
  return b.plan();
}

describe('native plan checks', () => {
  it('info() says which backends are built', () => {
    const i = loadNativeAddon().info();
    expect(i.backends[0]).toBe('cpu');
    expect(i.cuda).toBe(i.backends.includes('cuda'));
    expect(i.threads).toBeGreaterThan(0);
  });

  it('references outside an arena, writes into weights and bad fields are EVAL errors', () => {
    const ok = gemmPlan(64);
    expect(create(ok, new Uint8Array(16))).not.toThrow();
    expect(create(gemmPlan(100))).toThrow(
      expect.objectContaining({ code: 'EVAL', message: expect.stringMatching(/launch 7 \(gemm 2x2x2\): gemm C .*outside the io arena/) }),
    );
    const intoWeights = gemmPlan(64);
    (intoWeights.launches[0] as unknown as { entries: Array<{ c: unknown }> }).entries[0]!.c = { arena: 'weights', offset: 0 };
    expect(create(intoWeights)).toThrow(/writes into the read-only weights arena/);
    expect(create({ ...ok, launches: [{ ...ok.launches[0], kind: 'conv' }] })).toThrow(/launches\[0\]\.kind: unknown launch kind 'conv'/);
    expect(create({ ...ok, arenas: { weights: 16, act: 0 } })).toThrow(/arenas: missing field 'io'/);
    expect(create(ok, new Uint8Array(1000))).toThrow(/weights are 1000 bytes but the plan's weights arena is 16/);
    expect(loadNativeAddon().create.bind(null, ok, new Uint8Array(16), { backend: 'tpu' as never })).toThrow(/unknown backend 'tpu'/);
  });

  it('a residual GEMM needs a residual ref in every entry, inside its arena', () => {
    type G = { problem: { residual?: boolean }; entries: Array<{ residual?: unknown }> };
    const withResidual = (ref: unknown, flag = true) => {
      const p = gemmPlan(64);
      const l = p.launches[0] as unknown as G;
      l.problem.residual = flag;
      if (ref !== undefined) l.entries[0]!.residual = ref;
      return p;
    };
    expect(create(withResidual({ arena: 'io', offset: 32 }), new Uint8Array(16))).not.toThrow();
    expect(create(withResidual(undefined), new Uint8Array(16))).toThrow(/launch 7 \(gemm 2x2x2\): gemm entry residual does not match/);
    expect(create(withResidual({ arena: 'io', offset: 32 }, false), new Uint8Array(16))).toThrow(/gemm entry residual does not match/);
    expect(create(withResidual({ arena: 'io', offset: 80 }), new Uint8Array(16))).toThrow(/gemm residual .*outside the io arena/);
  });

  it('priority lanes must name lanes of the plan, once each', () => {
    const ok = { ...gemmPlan(64), lanes: 2, priorityLanes: [1] };
    expect(create(ok, new Uint8Array(16))).not.toThrow();
    expect(create({ ...ok, priorityLanes: [2] }, new Uint8Array(16))).toThrow(/priorityLanes names lane 2, outside 0\.\.1/);
    expect(create({ ...ok, priorityLanes: [0, 0] }, new Uint8Array(16))).toThrow(/priorityLanes names lane 0 twice/);
  });

  it('eltwise programs that misuse the stack or read missing inputs are rejected', () => {
    const b = new ArenaBuilder();
    const x = b.alloc('io', 'f32', 4);
    const o = b.alloc('io', 'f32', 4);
    const seg = { tenant: 0, shape: [4], inputs: [{ ref: x.ref, dtype: 'f32' as const, strides: [1] }], out: o.ref, outDType: 'f32' as const };
    b.launches.push({
      kind: 'kernel',
      id: 0,
      kernel: 'k',
      op: { op: 'eltwise', computeF32: true, program: [{ op: 'in', i: 0 }, { op: 'add' }] },
      segments: [seg],
      info: info('bad'),
    });
    expect(create(b.plan())).toThrow(/pops an empty stack/);
    b.launches[0] = {
      kind: 'kernel',
      id: 0,
      kernel: 'k',
      op: { op: 'eltwise', computeF32: true, program: [{ op: 'in', i: 1 }] },
      segments: [seg],
      info: info('bad'),
    };
    expect(create(b.plan())).toThrow(/reads input 1 of 1/);
    b.launches[0] = {
      kind: 'kernel',
      id: 0,
      kernel: 'k',
      op: { op: 'copy' },
      segments: [{ ...seg, shape: [4], inputs: [{ ...seg.inputs[0]!, strides: [-1] }] }],
      info: info('bad'),
    };
    expect(create(b.plan())).toThrow(/copy input reads\/writes bytes \[-12, 4\) outside the io arena/);
  });

  it('params: a program reading a param the segment lacks, too many params, params outside eltwise are rejected', () => {
    const b = new ArenaBuilder();
    const x = b.alloc('io', 'f32', 4);
    const o = b.alloc('io', 'f32', 4);
    const seg = { tenant: 0, shape: [4], inputs: [{ ref: x.ref, dtype: 'f32' as const, strides: [1] }], out: o.ref, outDType: 'f32' as const };
    const eltwise = (params: number[] | undefined, i: number) => ({
      kind: 'kernel' as const,
      id: 3,
      kernel: 'k',
      op: { op: 'eltwise' as const, computeF32: true, program: [{ op: 'in' as const, i: 0 }, { op: 'param' as const, i }, { op: 'mul' as const }] },
      segments: [{ ...seg, ...(params ? { params } : {}) }],
      info: info('scale'),
    });
    b.launches.push(eltwise([0.5, 2], 1));
    expect(create(b.plan())).not.toThrow();
    b.launches[0] = eltwise([0.5], 1);
    expect(create(b.plan())).toThrow(/launch 3 \(scale\): eltwise program reads param 1 of 1/);
    b.launches[0] = eltwise(undefined, 0);
    expect(create(b.plan())).toThrow(/reads param 0 of 0/);
    b.launches[0] = eltwise(
      Array.from({ length: 17 }, (_, k) => k),
      0,
    );
    expect(create(b.plan())).toThrow(/eltwise segment has 17 params, at most 16/);
    b.launches[0] = { ...eltwise(undefined, 0), op: { op: 'copy' }, segments: [{ ...seg, params: [1] }] } as never;
    expect(create(b.plan())).toThrow(/only eltwise segments carry params/);
    b.launches[0] = { ...eltwise(undefined, 0), segments: [{ ...seg, params: [1, 'x'] }] } as never;
    expect(create(b.plan())).toThrow(/segments\[0\]\.params\[1\]: expected a number/);
  });

  it('a closed handle rejects ticks', async () => {
    const addon = loadNativeAddon();
    const h = addon.create(gemmPlan(64), new Uint8Array(16), { backend: 'cpu', threads: 1 });
    addon.destroy(h);
    expect(() => addon.runTick(h, [], [], new Uint8Array(1))).toThrow(/the plan was closed/);
  });
});
