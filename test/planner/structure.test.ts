// Plan structure: strided and grouped GEMM launches, alignment across tenants of different depth,
// determinism, the memory plan's liveness, and the planner's errors.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../ir/builder.js';
import { LoomError } from '../../ir/errors.js';
import { fromNumbers, tensorBytes } from '../../ir/tensor.js';
import { generateModel } from '../../models/index.js';
import { planFleet, planFleetDetailed } from '../../src/planner/index.js';
import type { Plan, TenantInput } from '../../ir/contract/plan.js';
import { checkFleet, tenantFromBytes } from './fleet-helpers.js';

const mlp = (id: string, seed: number, sizes: number[], maxBatch = 2) => tenantFromBytes(id, generateModel('mlp', { seed, sizes }).bytes, maxBatch);

// The whole plan as text, weights by content hash (their bytes are what a plan dir would hold).
function fingerprint(plan: Plan): string {
  const weights = plan.weights.map((w) => ({
    offset: w.offset,
    dtype: w.tensor.dtype,
    shape: w.tensor.shape,
    sha: createHash('sha256').update(tensorBytes(w.tensor)).digest('hex'),
  }));
  return JSON.stringify({ ...plan, weights });
}

function caught(f: () => unknown): LoomError {
  try {
    f();
  } catch (e) {
    if (e instanceof LoomError) return e;
    throw e;
  }
  throw new Error('expected a LoomError');
}

describe('GEMM grouping', () => {
  it('same-signature GEMMs of R tenants become one strided launch', () => {
    const ts = Array.from({ length: 5 }, (_, i) => mlp(`m${i}`, i + 1, [16, 32, 8]));
    const plan = planFleet(ts.map((t) => t.input));
    expect(plan.launches).toHaveLength(2);
    for (const l of plan.launches) {
      expect(l.kind).toBe('gemm');
      if (l.kind !== 'gemm') continue;
      expect(l.entries.map((e) => e.tenant)).toEqual([0, 1, 2, 3, 4]);
      expect(l.strides).not.toBeNull();
      // the strides describe every entry exactly
      l.entries.forEach((e, i) => {
        expect(e.b.offset).toBe(l.entries[0]!.b.offset + i * l.strides!.b);
        expect(e.c.offset).toBe(l.entries[0]!.c.offset + i * l.strides!.c);
      });
    }
  });

  it('on lanes, different GEMM shapes in one stage run side by side as separate launches', async () => {
    const ts = [mlp('a', 1, [16, 32, 8]), mlp('b', 2, [24, 32, 8]), mlp('c', 3, [16, 48, 8])];
    const plan = planFleet(
      ts.map((t) => t.input),
      { maxLanes: 4 },
    );
    const first = plan.launches.filter((l) => l.info.stage === 0);
    expect(first.map((l) => l.kind)).toEqual(['gemm', 'gemm', 'gemm']);
    expect(new Set(first.map((l) => l.lane)).size).toBe(3);
    for (const [id, e] of Object.entries(await checkFleet(plan, ts))) expect(e, id).toBeLessThanOrEqual(1e-4);
  });

  it('on one lane, different GEMM shapes in one stage become one grouped launch', async () => {
    const ts = [mlp('a', 1, [16, 32, 8]), mlp('b', 2, [24, 32, 8]), mlp('c', 3, [16, 48, 8])];
    const plan = planFleet(
      ts.map((t) => t.input),
      { maxLanes: 1 },
    );
    const first = plan.launches.filter((l) => l.info.stage === 0);
    expect(first).toHaveLength(1);
    expect(first[0]!.kind).toBe('gemm_grouped');
    if (first[0]!.kind === 'gemm_grouped') expect(first[0]!.groups).toHaveLength(3);
    for (const [id, e] of Object.entries(await checkFleet(plan, ts))) expect(e, id).toBeLessThanOrEqual(1e-4);
  });

  it('a shallower tenant waits for a deeper one so their last layers share a strided launch', () => {
    const ts = [mlp('short', 1, [16, 32, 32, 8]), mlp('long', 2, [16, 32, 32, 32, 8])];
    const plan = planFleet(ts.map((t) => t.input));
    const heads = plan.launches.filter((l) => l.kind === 'gemm' && l.problem.n === 8);
    expect(heads).toHaveLength(1);
    expect(heads[0]!.info.tenants).toEqual([0, 1]);
    expect(plan.launches).toHaveLength(4); // 7 GEMM steps
  });

  it('the cost model keeps GEMMs apart when one launch would be slower', () => {
    const ts = [mlp('a', 1, [16, 32, 8]), mlp('b', 2, [24, 32, 8])];
    const cost = { device: 'launch-free', peakFlops: 1e12, bandwidth: 1e12, launchUs: 0, groupedEfficiency: 0.5 };
    const plan = planFleet(
      ts.map((t) => t.input),
      { costModel: cost },
    );
    expect(plan.launches.filter((l) => l.info.stage === 0).map((l) => l.kind)).toEqual(['gemm', 'gemm']);
  });
});

describe('plan properties', () => {
  const fleet = (): TenantInput[] => [
    mlp('m0', 1, [16, 32, 8]).input,
    mlp('m1', 2, [16, 32, 8]).input,
    tenantFromBytes('enc', generateModel('encoder', { seed: 3, layers: 1, hidden: 32, heads: 2, ffn: 64, seq: 8, vocabSize: 50, maxPositions: 16 }).bytes, 2)
      .input,
    tenantFromBytes('sq', generateModel('squeezenet', { seed: 4, resolution: 32, classes: 10 }).bytes, 2).input,
  ];

  it('is deterministic: the same inputs give an identical plan', () => {
    const a = fingerprint(planFleet(fleet()));
    const b = fingerprint(planFleet(fleet()));
    expect(b.length).toBeGreaterThan(1000);
    expect(b).toBe(a);
  });

  it('never lets two simultaneously live activations overlap, and reuse saves bytes', () => {
    const { plan, buffers } = planFleetDetailed(fleet());
    const act = buffers.filter((b) => b.arena === 'act' && b.firstStage >= 0);
    expect(act.length).toBeGreaterThan(10);
    for (let i = 0; i < act.length; i++) {
      for (let j = i + 1; j < act.length; j++) {
        const [x, y] = [act[i]!, act[j]!];
        const live = x.firstStage <= y.lastStage && y.firstStage <= x.lastStage;
        const overlap = x.offset < y.offset + y.bytes && y.offset < x.offset + x.bytes;
        if (live && overlap) throw new Error(`${x.name} [${x.firstStage},${x.lastStage}] and ${y.name} [${y.firstStage},${y.lastStage}] share bytes`);
      }
      expect(act[i]!.offset + act[i]!.bytes).toBeLessThanOrEqual(plan.arenas.act);
    }
    expect(plan.arenas.act).toBeLessThan(plan.arenas.actWithoutReuse);
    // weights are 256-byte aligned and inside the arena; io slots are sized at maxBatch
    for (const w of plan.weights) {
      expect(w.offset % 256).toBe(0);
      expect(w.offset + w.tensor.data.byteLength).toBeLessThanOrEqual(plan.arenas.weights);
    }
    const m0 = plan.tenants[0]!;
    expect(m0.inputs[0]).toMatchObject({ name: 'input', shape: [2, 16], batchAxis: 0, bytes: 2 * 16 * 4 });
    expect(m0.outputs[0]).toMatchObject({ name: 'output', shape: [2, 8], batchAxis: 0 });
    // launch stages never decrease
    plan.launches.forEach((l, i) => i > 0 && expect(l.info.stage).toBeGreaterThanOrEqual(plan.launches[i - 1]!.info.stage));
  });
});

describe('planner errors', () => {
  it('an op the planner cannot lower names tenant, node and op', () => {
    const b = new GraphBuilder('lp');
    const x = b.addInput('x', { dtype: 'f32', shape: ['N', 4] });
    const [y] = b.addNode('LpNormalization', 'norm1', [x], { axis: -1, p: 2 } as never, ['y']);
    b.setOutputs([y!]);
    const g = b.build(['N']);
    const e = caught(() => planFleet([{ id: 'lp-tenant', model: 'lp.onnx', graph: g, maxBatch: 2, sloMs: null }]));
    expect(e.code).toBe('UNSUPPORTED_OP');
    expect(e.message).toMatch(/lp-tenant/);
    expect(e.message).toMatch(/norm1/);
    expect(e.message).toMatch(/LpNormalization/);
  });

  it('a fixed-batch model whose outputs do not carry the rows asks for maxBatch 1', () => {
    const b = new GraphBuilder('fixed');
    const x = b.addInput('x', { dtype: 'f32', shape: [1, 8] });
    const shape = b.addConstant('shape', fromNumbers('i64', [3], [1, 2, 4]));
    const [y] = b.addNode('Reshape', 'reshape', [x, shape], { allowzero: false } as never, ['y']);
    b.setOutputs([y!]);
    const g = b.build();
    const e = caught(() => planFleet([{ id: 'fixed-tenant', model: 'fixed.onnx', graph: g, maxBatch: 4, sloMs: null }]));
    expect(e.code).toBe('UNSUPPORTED_FEATURE');
    expect(e.message).toMatch(/fixed-tenant/);
    expect(e.message).toMatch(/maxBatch 1/);
    // with maxBatch 1 the same model plans
    const plan = planFleet([{ id: 'fixed-tenant', model: 'fixed.onnx', graph: g, maxBatch: 1, sloMs: null }]);
    expect(plan.tenants[0]!.outputs[0]!.shape).toEqual([1, 2, 4]);
  });

  it('a fixed-batch model that batches gets batchAxis 0 at maxBatch rows', () => {
    const b = new GraphBuilder('fixed-ok');
    const x = b.addInput('x', { dtype: 'f32', shape: [1, 8] });
    const [y] = b.addNode('Relu', 'relu', [x], {} as never, ['y']);
    b.setOutputs([y!]);
    const plan = planFleet([{ id: 't', model: 't.onnx', graph: b.build(), maxBatch: 4, sloMs: null }]);
    expect(plan.tenants[0]!.inputs[0]).toMatchObject({ shape: [4, 8], batchAxis: 0 });
    expect(plan.tenants[0]!.outputs[0]).toMatchObject({ shape: [4, 8], batchAxis: 0 });
  });

  it('rejects duplicate tenant ids', () => {
    const t = mlp('same', 1, [4, 4]).input;
    expect(caught(() => planFleet([t, t])).code).toBe('USAGE');
  });
});
