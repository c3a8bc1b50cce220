import { describe, expect, it } from 'vitest';
import type { ValueId } from '../../ir/graph.js';
import type { RawAttr } from '../../ir/op.js';
import { type Tensor, makeTensor, toNumbers } from '../../ir/tensor.js';
import { importModelBytes } from '../../src/onnx/import.js';
import { type NodeForm, normalizeLegacy } from '../../src/onnx/legacy.js';
import { type AttrValue, type ModelSpec, encodeModel } from '../../src/onnx/write.js';
import { expectLoomError } from '../support/errors.js';
import { ORT_DEFAULTS, runOrtOutputs } from '../support/ort.js';
import { expectClose } from '../support/tensors.js';
import { evaluateGraph, randomTensor } from './helpers.js';

// Older-opset forms import into the modern input forms and compute what onnxruntime computes on the
// original model.

function unary(
  opset: number,
  op: string,
  attrs: Record<string, AttrValue>,
  inShape: number[],
  outShapes: number[][],
  extra: Partial<ModelSpec> = {},
): ModelSpec {
  return {
    opset,
    inputs: [{ name: 'x', dtype: 'f32', shape: inShape }],
    outputs: outShapes.map((s, i) => ({ name: `y${i}`, dtype: 'f32', shape: s })),
    nodes: [{ op, name: 'n', inputs: ['x'], outputs: outShapes.map((_, i) => `y${i}`), attrs }],
    ...extra,
  };
}

async function checkAgainstOrt(spec: ModelSpec, seed = 5): Promise<ReturnType<typeof importModelBytes>> {
  const bytes = encodeModel(spec);
  const g = importModelBytes(bytes);
  const shape = spec.inputs[0]!.shape as number[];
  const x = randomTensor(shape, seed);
  const expected = await runOrtOutputs(bytes, { x }, ORT_DEFAULTS);
  const actual = evaluateGraph(g, { x });
  expect(actual).toHaveLength(expected.length);
  actual.forEach((a, i) => {
    expect(a.shape).toEqual(spec.outputs[i]!.shape);
    expectClose(a, expected[i]!);
  });
  return g;
}

function constInputs(g: ReturnType<typeof importModelBytes>, nodeIndex = 0): (number[] | null)[] {
  return g.nodes[nodeIndex]!.inputs.map((v) => {
    if (v === null) return null;
    const c = g.constants.get(v);
    return c ? Array.from(toNumbers(c)) : [];
  });
}

describe('legacy attribute forms', () => {
  it('Slice < 10: starts/ends/axes attrs become inputs', async () => {
    const g = await checkAgainstOrt(unary(9, 'Slice', { starts: [1, -3], ends: [3, 2 ** 62], axes: [0, 1] }, [3, 5], [[2, 3]]));
    expect(g.nodes[0]!.op).toBe('Slice');
    expect(constInputs(g)).toEqual([[], [1, -3], [3, 2 ** 62], [0, 1]]);
  });

  it('Squeeze/Unsqueeze < 13: axes attr becomes an input', async () => {
    const sq = await checkAgainstOrt(unary(11, 'Squeeze', { axes: [1] }, [3, 1, 4], [[3, 4]]));
    expect(constInputs(sq)).toEqual([[], [1]]);
    const un = await checkAgainstOrt(unary(11, 'Unsqueeze', { axes: [0, -1] }, [3, 4], [[1, 3, 4, 1]]));
    expect(constInputs(un)).toEqual([[], [0, -1]]);
    await checkAgainstOrt(unary(9, 'Squeeze', {}, [1, 3, 1], [[3]]));
  });

  it('Clip < 11: min/max attrs become inputs', async () => {
    const g = await checkAgainstOrt(unary(9, 'Clip', { min: { float: -0.5 }, max: { float: 0.75 } }, [4, 5], [[4, 5]]));
    expect(constInputs(g)).toEqual([[], [-0.5], [0.75]]);
    const onlyMax = await checkAgainstOrt(unary(9, 'Clip', { max: { float: 0.25 } }, [4, 5], [[4, 5]]));
    expect(constInputs(onlyMax)).toEqual([[], null, [0.25]]);
  });

  it('Pad < 11: pads/value attrs become inputs', async () => {
    const g = await checkAgainstOrt(unary(10, 'Pad', { pads: [0, 1, 2, 0], value: { float: 1.5 } }, [2, 3], [[4, 4]]));
    expect(constInputs(g)).toEqual([[], [0, 1, 2, 0], [1.5]]);
    await checkAgainstOrt(unary(10, 'Pad', { pads: [1, 1, 1, 1], mode: 'edge' }, [2, 3], [[4, 5]]));
  });

  it('Split < 13: split attr becomes an input', async () => {
    const g = await checkAgainstOrt(
      unary(
        11,
        'Split',
        { axis: 1, split: [1, 3] },
        [2, 4],
        [
          [2, 1],
          [2, 3],
        ],
      ),
    );
    expect(constInputs(g)).toEqual([[], [1, 3]]);
    await checkAgainstOrt(
      unary(
        11,
        'Split',
        { axis: 0 },
        [4, 2],
        [
          [2, 2],
          [2, 2],
        ],
      ),
    );
  });

  it('Split 18: num_outputs becomes split sizes, the last chunk smaller', async () => {
    const g = await checkAgainstOrt(
      unary(
        18,
        'Split',
        { axis: 1, num_outputs: 3 },
        [2, 7],
        [
          [2, 3],
          [2, 3],
          [2, 1],
        ],
      ),
    );
    expect(constInputs(g)).toEqual([[], [3, 3, 1]]);
  });

  it('Dropout < 12: ratio attr becomes an input, and Dropout is identity at inference', async () => {
    const g = await checkAgainstOrt(unary(10, 'Dropout', { ratio: { float: 0.3 } }, [2, 3], [[2, 3]]));
    expect(constInputs(g)[1]![0]).toBeCloseTo(0.3, 6);
  });

  it('Reduce ops before 18 (ReduceSum before 13): axes attr becomes an input', async () => {
    const mean = await checkAgainstOrt(unary(13, 'ReduceMean', { axes: [1], keepdims: 0 }, [3, 4, 2], [[3, 2]]));
    expect(constInputs(mean)).toEqual([[], [1]]);
    const sum = await checkAgainstOrt(unary(11, 'ReduceSum', { axes: [0, -1] }, [3, 4, 2], [[1, 4, 1]]));
    expect(constInputs(sum)).toEqual([[], [0, -1]]);
    const all = await checkAgainstOrt(unary(17, 'ReduceMax', { keepdims: 0 }, [3, 4], [[]]));
    expect(constInputs(all)).toEqual([[]]);
    await checkAgainstOrt(unary(13, 'ReduceL2', { axes: [1] }, [3, 4], [[3, 1]]));
  });

  it('Upsample-9 and Resize-10 import as Resize and compute like onnxruntime', async () => {
    for (const [op, opset] of [
      ['Upsample', 9],
      ['Resize', 10],
    ] as const) {
      for (const mode of ['nearest', 'linear']) {
        const spec = unary(opset, op, { mode }, [1, 2, 3, 4], [[1, 2, 6, 6]], {
          initializers: { scales: makeTensor('f32', [4], Float32Array.from([1, 1, 2, 1.5])) },
        });
        const g = await checkAgainstOrt({ ...spec, nodes: [{ ...spec.nodes[0]!, inputs: ['x', 'scales'] }] });
        expect(g.nodes[0]!.op).toBe('Resize');
      }
    }
  });

  it('BatchNormalization: old attrs are dropped, spatial=0 refused', () => {
    const bn = (attrs: Record<string, RawAttr>) =>
      normalizeLegacy({ op: 'BatchNormalization', inputs: [], attrs: new Map(Object.entries(attrs)), opset: 9, outputs: 1 }, fakeCtx());
    const out = bn({ spatial: { kind: 'int', value: 1 }, epsilon: { kind: 'float', value: 1e-3 }, is_test: { kind: 'int', value: 1 } });
    expect([...out.attrs.keys()]).toEqual(['epsilon']);
    expectLoomError(() => bn({ spatial: { kind: 'int', value: 0 } }), 'UNSUPPORTED_FEATURE', 'spatial');
  });
});

// A context that records constants instead of building a graph.
function fakeCtx(types: Record<number, number[]> = {}) {
  const consts: Tensor[] = [];
  return {
    consts,
    where: "node 'n' (Op)",
    name: 'n',
    typeOf: (id: ValueId) => ({ dtype: 'f32' as const, shape: types[id] ?? [1] }),
    constantOf: (id: ValueId) => (id >= 100 ? consts[id - 100] : undefined),
    addConstant: (_: string, t: Tensor) => (consts.push(t), (99 + consts.length) as ValueId),
  };
}

describe('Upsample and Resize-10 become Resize-11 with the same results in onnxruntime', () => {
  const cases: { name: string; mode: string; scales: number[]; shape: number[] }[] = [
    { name: 'nearest up', mode: 'nearest', scales: [1, 1, 2, 3], shape: [1, 2, 3, 4] },
    { name: 'nearest fractional up', mode: 'nearest', scales: [1, 1, 1.5, 2.5], shape: [1, 1, 5, 3] },
    { name: 'nearest down', mode: 'nearest', scales: [1, 1, 0.5, 0.6], shape: [1, 1, 6, 5] },
    { name: 'linear up', mode: 'linear', scales: [1, 1, 2, 1.5], shape: [1, 2, 3, 4] },
  ];
  for (const c of cases) {
    for (const [op, opset] of [
      ['Upsample', 9],
      ['Resize', 10],
    ] as const) {
      it(`${op}-${opset} ${c.name}`, async () => {
        const scales = makeTensor('f32', [4], Float32Array.from(c.scales));
        if (op === 'Upsample' && c.scales.some((s) => s < 1)) {
          const ctx = fakeCtx();
          const form: NodeForm = { op, inputs: [0 as ValueId, ctx.addConstant('s', scales)], attrs: new Map(), opset, outputs: 1 };
          expectLoomError(() => normalizeLegacy(form, ctx), 'MODEL_INVALID', 'Upsample scales must be >= 1');
          return;
        }
        const outShape = c.shape.map((d, i) => Math.floor(d * c.scales[i]!));
        const old: ModelSpec = {
          opset,
          inputs: [{ name: 'x', dtype: 'f32', shape: c.shape }],
          outputs: [{ name: 'y', dtype: 'f32', shape: outShape }],
          nodes: [{ op, name: 'n', inputs: ['x', 'scales'], outputs: ['y'], attrs: { mode: c.mode } }],
          initializers: { scales },
        };
        const ctx = fakeCtx({ 0: c.shape });
        const sid = ctx.addConstant('scales', scales);
        const form: NodeForm = { op, inputs: [0 as ValueId, sid], attrs: new Map([['mode', { kind: 'string', value: c.mode }]]), opset, outputs: 1 };
        const modern = normalizeLegacy(form, ctx);
        expect(modern.op).toBe('Resize');
        expect(modern.inputs).toEqual([0, null, sid]);
        const attrs: Record<string, AttrValue> = {};
        for (const [k, a] of modern.attrs) if (a.kind !== 'graph') attrs[k] = a.value as AttrValue;
        const now: ModelSpec = {
          ...old,
          opset: 11,
          nodes: [{ op: 'Resize', name: 'n', inputs: ['x', 'roi', 'scales'], outputs: ['y'], attrs }],
          initializers: { scales, roi: makeTensor('f32', [0]) },
        };
        const x = randomTensor(c.shape, 9);
        const [a] = await runOrtOutputs(encodeModel(old), { x }, ORT_DEFAULTS);
        const [b] = await runOrtOutputs(encodeModel(now), { x }, ORT_DEFAULTS);
        expect(Array.from(toNumbers(b!))).toEqual(Array.from(toNumbers(a!)));
      });
    }
  }

  it('nearest with scales mixing up- and downsampling is refused', () => {
    const ctx = fakeCtx();
    const sid = ctx.addConstant('s', makeTensor('f32', [4], Float32Array.from([1, 1, 2, 0.5])));
    const form: NodeForm = { op: 'Resize', inputs: [0 as ValueId, sid], attrs: new Map(), opset: 10, outputs: 1 };
    expectLoomError(() => normalizeLegacy(form, ctx), 'UNSUPPORTED_FEATURE', "node 'n'", 'downsamples');
  });
});
