import { describe, expect, it } from 'vitest';
import type { Graph } from '../../ir/graph.js';
import { CANONICAL_PASSES, canonicalize } from '../../ir/passes/index.js';
import { checkPass, constantInput, expectSameOutputs, f32, i64, onnxModel, opsOf, randomF32, seeded } from './helpers.js';

describe('canonicalize', () => {
  it('lists its passes in order and reports each one', () => {
    expect(CANONICAL_PASSES.map((p) => p.name)).toEqual(['constant-fold', 'clean-after-fold', 'fold-batchnorm', 'fuse-epilogue', 'eliminate-dead-code']);
    const seen: string[] = [];
    const m = onnxModel({
      inputs: [{ name: 'x', dtype: 'f32', shape: [2] }],
      outputs: [{ name: 'y', dtype: 'f32', shape: [2] }],
      nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }],
    });
    canonicalize(m.graph, { verify: true, onPass: (name) => seen.push(name) });
    expect(seen).toEqual(CANONICAL_PASSES.map((p) => p.name));
  });

  it('turns an exported transformer-style MLP block into two fused MatMuls', async () => {
    // Identity and Dropout between layers, a transposed weight, a flatten computed from Shape, PyTorch's
    // exact GELU: everything but the two GEMMs and the reshape must go.
    const rand = seeded(31);
    const m = onnxModel({
      inputs: [{ name: 'x', dtype: 'f32', shape: ['N', 4, 8] }],
      outputs: [{ name: 'out', dtype: 'f32', shape: ['N', 24] }],
      nodes: [
        { op: 'Transpose', inputs: ['w1t'], outputs: ['w1'], attrs: { perm: [1, 0] } },
        { op: 'MatMul', inputs: ['x', 'w1'], outputs: ['m1'] },
        { op: 'Identity', inputs: ['m1'], outputs: ['m1i'] },
        { op: 'Add', inputs: ['b1', 'm1i'], outputs: ['h'] },
        { op: 'Div', inputs: ['h', 'sqrt2'], outputs: ['t1'] },
        { op: 'Erf', inputs: ['t1'], outputs: ['t2'] },
        { op: 'Add', inputs: ['t2', 'one'], outputs: ['t3'] },
        { op: 'Mul', inputs: ['h', 't3'], outputs: ['t4'] },
        { op: 'Mul', inputs: ['t4', 'half'], outputs: ['g'] },
        { op: 'Dropout', inputs: ['g'], outputs: ['gd'] },
        { op: 'MatMul', inputs: ['gd', 'w2'], outputs: ['m2'] },
        { op: 'Add', inputs: ['m2', 'b2'], outputs: ['o3'] },
        { op: 'Shape', inputs: ['o3'], outputs: ['s'] },
        { op: 'Gather', inputs: ['s', 'i0'], outputs: ['n'], attrs: { axis: 0 } },
        { op: 'Unsqueeze', inputs: ['n', 'ax0'], outputs: ['nu'] },
        { op: 'Concat', inputs: ['nu', 'minus1'], outputs: ['flat'], attrs: { axis: 0 } },
        { op: 'Reshape', inputs: ['o3', 'flat'], outputs: ['out'] },
      ],
      initializers: {
        w1t: randomF32(rand, [16, 8]),
        b1: randomF32(rand, [16]),
        w2: randomF32(rand, [16, 6]),
        b2: randomF32(rand, [6]),
        sqrt2: f32([], [1.4142135381698608]),
        one: f32([], [1]),
        half: f32([], [0.5]),
        i0: i64([], [0]),
        ax0: i64([1], [0]),
        minus1: i64([1], [-1]),
      },
    });
    const canon = await checkPass((g: Graph) => canonicalize(g, { verify: true }), m.graph, { model: m.bytes });
    expect(opsOf(canon)).toEqual(['MatMul', 'MatMul', 'Reshape']);
    const [mm1, mm2, reshape] = canon.nodes;
    expect((mm1!.attrs as { activation: unknown }).activation).toEqual({ kind: 'gelu_erf' });
    expect((mm2!.attrs as { activation: unknown }).activation).toBeNull();
    expect(mm1!.inputs.length).toBe(3);
    expect(mm2!.inputs.length).toBe(3);
    expect(constantInput(canon, mm1!, 1)!.shape).toEqual([8, 16]);
    expect(Array.from(constantInput(canon, reshape!, 1)!.data as BigInt64Array).map(Number)).toEqual([0, -1]);
    expect(canon.values.get(reshape!.outputs[0]!)!.type.shape).toEqual(['N', 24]);
    await expectSameOutputs(m.graph, canon, { model: m.bytes, batch: 4 });
  });
});
