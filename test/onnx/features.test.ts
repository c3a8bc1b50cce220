import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeTensor, toNumbers } from '../../ir/tensor.js';
import { importModelBytes, importModelFile } from '../../src/onnx/import.js';
import { onnx } from '../../src/onnx/proto.js';
import { type ModelSpec, encodeModel } from '../../src/onnx/write.js';
import { expectLoomError } from '../support/errors.js';
import { ORT_DEFAULTS, runOrtOutputs } from '../support/ort.js';
import { expectClose } from '../support/tensors.js';
import { evaluateGraph, randomTensor, valueNamed } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'loom-onnx-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const w = randomTensor([2, 3], 11);
const addSpec: ModelSpec = {
  inputs: [{ name: 'x', dtype: 'f32', shape: [2, 3] }],
  outputs: [{ name: 'z', dtype: 'f32', shape: [2, 3] }],
  nodes: [{ op: 'Add', name: 'add1', inputs: ['x', 'w'], outputs: ['z'] }],
  initializers: { w },
};

// Moves initializer `name` of a model into `file` at `offset`; returns the new model bytes.
function externalize(bytes: Uint8Array, name: string, location: string, offset: number): { model: Uint8Array; data: Uint8Array } {
  const m = onnx.ModelProto.decode(bytes);
  const t = m.graph!.initializer!.find((i) => i.name === name)!;
  const raw = Uint8Array.from(t.rawData!);
  const data = new Uint8Array(offset + raw.length);
  data.set(raw, offset);
  t.rawData = new Uint8Array();
  t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
  t.externalData = [
    { key: 'location', value: location },
    { key: 'offset', value: String(offset) },
    { key: 'length', value: String(raw.length) },
  ];
  return { model: onnx.ModelProto.encode(m).finish(), data };
}

describe('external data', () => {
  it('reads weights from a side file next to the model', async () => {
    const dir = mkdtempSync(join(tmp, 'ext-'));
    const { model, data } = externalize(encodeModel(addSpec), 'w', 'weights.bin', 16);
    writeFileSync(join(dir, 'model.onnx'), model);
    writeFileSync(join(dir, 'weights.bin'), data);
    const g = importModelFile(join(dir, 'model.onnx'));
    expect(g.name).toBe('model');
    expect(Array.from(toNumbers(g.constants.get(valueNamed(g, 'w'))!))).toEqual(Array.from(toNumbers(w)));
    const x = randomTensor([2, 3], 12);
    const [z] = evaluateGraph(g, { x });
    expectClose(z!, (await runOrtOutputs(encodeModel(addSpec), { x }, ORT_DEFAULTS))[0]!);
  });

  it('missing file, range past the end, escaping location, no base folder', () => {
    const dir = mkdtempSync(join(tmp, 'ext-'));
    const { model, data } = externalize(encodeModel(addSpec), 'w', 'weights.bin', 16);
    writeFileSync(join(dir, 'model.onnx'), model);
    expectLoomError(() => importModelFile(join(dir, 'model.onnx')), 'EXTERNAL_DATA', "initializer 'w'", 'weights.bin');
    writeFileSync(join(dir, 'weights.bin'), data.subarray(0, 30));
    expectLoomError(() => importModelFile(join(dir, 'model.onnx')), 'EXTERNAL_DATA', "initializer 'w'", 'weights.bin', 'past the end');
    expectLoomError(() => importModelBytes(model), 'EXTERNAL_DATA', "initializer 'w'", 'baseDir');
    const escaping = externalize(encodeModel(addSpec), 'w', '../weights.bin', 0);
    writeFileSync(join(dir, 'escape.onnx'), escaping.model);
    expectLoomError(() => importModelFile(join(dir, 'escape.onnx')), 'EXTERNAL_DATA', "initializer 'w'", 'outside');
  });

  it('a missing model file is an IO error', () => {
    expectLoomError(() => importModelFile(join(tmp, 'nope.onnx')), 'IO', 'nope.onnx');
  });
});

describe('weights and constants', () => {
  it('Constant nodes become graph constants', async () => {
    const spec: ModelSpec = {
      opset: 13,
      inputs: [{ name: 'x', dtype: 'f32', shape: [2, 3] }],
      outputs: [{ name: 'z', dtype: 'f32', shape: [3, 2] }],
      nodes: [
        { op: 'Constant', name: 'cw', inputs: [], outputs: ['w'], attrs: { value: w } },
        { op: 'Constant', name: 'cs', inputs: [], outputs: ['s'], attrs: { value_float: { float: 0.5 } } },
        { op: 'Constant', name: 'cshape', inputs: [], outputs: ['shape'], attrs: { value_ints: [3, 2] } },
        { op: 'Add', name: 'add', inputs: ['x', 'w'], outputs: ['y'] },
        { op: 'Mul', name: 'mul', inputs: ['y', 's'], outputs: ['y2'] },
        { op: 'Reshape', name: 'reshape', inputs: ['y2', 'shape'], outputs: ['z'] },
      ],
    };
    const g = importModelBytes(encodeModel(spec));
    expect(g.nodes.map((n) => n.op)).toEqual(['Add', 'Mul', 'Reshape']);
    expect(g.constants.size).toBe(3);
    expect(g.constants.get(valueNamed(g, 's'))!.shape).toEqual([]);
    expect(g.constants.get(valueNamed(g, 'shape'))!.dtype).toBe('i64');
    expect(g.values.get(g.outputs[0]!)!.type.shape).toEqual([3, 2]);
    const x = randomTensor([2, 3], 3);
    expectClose(evaluateGraph(g, { x })[0]!, (await runOrtOutputs(encodeModel(spec), { x }, ORT_DEFAULTS))[0]!);
  });

  it('initializers listed as graph inputs stay constants', () => {
    const spec: ModelSpec = { ...addSpec, irVersion: 3, opset: 9, inputs: [...addSpec.inputs, { name: 'w', dtype: 'f32', shape: [2, 3] }] };
    const g = importModelBytes(encodeModel(spec));
    expect(g.inputs.map((i) => g.values.get(i)!.name)).toEqual(['x']);
    expect(g.constants.has(valueNamed(g, 'w'))).toBe(true);
  });

  it('decodes the typed data fields', () => {
    const m = onnx.ModelProto.decode(encodeModel(addSpec));
    const extra = [
      { name: 'h', dims: [2], dataType: 10, int32Data: [0x3c00, 0xc000] }, // f16 1, -2
      { name: 'l', dims: [2], dataType: 7, int64Data: [-5, 2 ** 53] },
      { name: 'd', dims: [3], dataType: 11, doubleData: [0.25, -1, 1e300] },
      { name: 'b', dims: [3], dataType: 9, int32Data: [1, 0, 1] },
      { name: 'f', dims: [2], dataType: 1, floatData: [1.5, -2] },
      { name: 'e', dims: [0, 4], dataType: 1 },
    ];
    m.graph!.initializer!.push(...extra.map((e) => onnx.TensorProto.create(e)));
    m.graph!.output!.push(...extra.map((e) => ({ name: e.name })));
    const g = importModelBytes(onnx.ModelProto.encode(m).finish());
    const c = (n: string) => g.constants.get(valueNamed(g, n))!;
    expect(Array.from(toNumbers(c('h')))).toEqual([1, -2]);
    expect(Array.from(c('l').data as BigInt64Array)).toEqual([-5n, 2n ** 53n]);
    expect(Array.from(toNumbers(c('d')))).toEqual([0.25, -1, 1e300]);
    expect(c('b').dtype).toBe('bool');
    expect(Array.from(toNumbers(c('b')))).toEqual([1, 0, 1]);
    expect(Array.from(toNumbers(c('f')))).toEqual([1.5, -2]);
    expect(c('e').shape).toEqual([0, 4]);
  });

  it('raw data at odd offsets is copied, not viewed', () => {
    const t = makeTensor('f64', [3], Float64Array.from([1.25, -7, 3e-8]));
    const spec: ModelSpec = { ...addSpec, name: 'g1', initializers: { w, d: t }, outputs: [...addSpec.outputs, { name: 'd', dtype: 'f64', shape: [3] }] };
    const g = importModelBytes(encodeModel(spec));
    const d = g.constants.get(valueNamed(g, 'd'))!;
    expect(d.data.byteOffset % 8).toBe(0);
    expect(Array.from(d.data as Float64Array)).toEqual([1.25, -7, 3e-8]);
  });
});

describe('graph structure', () => {
  it('nodes out of order are sorted', () => {
    const spec: ModelSpec = {
      ...addSpec,
      nodes: [
        { op: 'Relu', name: 'last', inputs: ['y2'], outputs: ['z'] },
        { op: 'Neg', name: 'mid', inputs: ['y'], outputs: ['y2'] },
        { op: 'Add', name: 'first', inputs: ['x', 'w'], outputs: ['y'] },
      ],
    };
    const g = importModelBytes(encodeModel(spec));
    expect(g.nodes.map((n) => n.name)).toEqual(['first', 'mid', 'last']);
  });

  it('optional outputs left out and a graph output that is a graph input', () => {
    const spec: ModelSpec = {
      inputs: [{ name: 'x', dtype: 'f32', shape: [2, 3] }],
      outputs: [
        { name: 'y', dtype: 'f32', shape: [2, 3] },
        { name: 'x', dtype: 'f32', shape: [2, 3] },
      ],
      nodes: [{ op: 'Dropout', name: 'drop', inputs: ['x'], outputs: ['y', ''] }],
    };
    const g = importModelBytes(encodeModel(spec));
    expect(g.nodes[0]!.outputs).toHaveLength(1);
    expect(g.outputs[1]).toBe(g.inputs[0]);
  });

  it('reads IR 10 models with fields newer than the IR 8 schema', () => {
    // NodeProto.metadata_props (field 9) and GraphProto.metadata_props (field 16) were added in IR 10.
    const bytes = encodeModel({ ...addSpec, irVersion: 10, opset: 21 });
    const m = onnx.ModelProto.decode(bytes);
    const entry = onnx.StringStringEntryProto.encode({ key: 'k', value: 'v' }).finish();
    const node = cat(onnx.NodeProto.encode(m.graph!.node![0]!).finish(), field(9, entry));
    const graphNoNodes = onnx.GraphProto.encode({ ...m.graph!, node: [] }).finish();
    const graph = cat(graphNoNodes, field(1, node), field(16, entry));
    const model = cat(onnx.ModelProto.encode({ ...m, graph: null }).finish(), field(7, graph));
    const g = importModelBytes(model);
    expect(g.nodes.map((n) => n.op)).toEqual(['Add']);
    expect(g.constants.size).toBe(1);
  });
});

describe('symbolic dims', () => {
  const spec: ModelSpec = {
    inputs: [{ name: 'x', dtype: 'f32', shape: ['batch', 'len', 3] }],
    outputs: [{ name: 'y', dtype: 'f32', shape: ['batch', 'len', 3] }],
    nodes: [{ op: 'Relu', name: 'r', inputs: ['x'], outputs: ['y'] }],
  };

  it('more than one unbound symbol is an error listing each', () => {
    expectLoomError(() => importModelBytes(encodeModel(spec)), 'SHAPE', "input 'x' axis 0: 'batch'", "input 'x' axis 1: 'len'", '--dim');
  });

  it('binding all but one leaves the batch dim as N', () => {
    const g = importModelBytes(encodeModel(spec), { dims: { len: 5 } });
    expect(g.symbols).toEqual(['N']);
    expect(g.values.get(g.inputs[0]!)!.type.shape).toEqual(['N', 5, 3]);
    expect(g.values.get(g.outputs[0]!)!.type.shape).toEqual(['N', 5, 3]);
    const all = importModelBytes(encodeModel(spec), { dims: { len: 5, batch: 2 } });
    expect(all.symbols).toEqual([]);
    expect(all.values.get(all.outputs[0]!)!.type.shape).toEqual([2, 5, 3]);
  });

  it('anonymous dims are symbols too, bindable by input:axis', () => {
    const anon: ModelSpec = { ...spec, inputs: [{ name: 'x', dtype: 'f32', shape: ['', '', 3] }] };
    expectLoomError(() => importModelBytes(encodeModel(anon)), 'SHAPE', "input 'x' axis 0: unnamed (bind as 'x:0')", 'x:1');
    const g = importModelBytes(encodeModel(anon), { dims: { 'x:1': 7 } });
    expect(g.values.get(g.inputs[0]!)!.type.shape).toEqual(['N', 7, 3]);
  });

  it('bad sizes are usage errors', () => {
    expectLoomError(() => importModelBytes(encodeModel(spec), { dims: { len: 0 } }), 'USAGE', "'len'");
  });
});

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

function field(num: number, payload: Uint8Array): Uint8Array {
  return Uint8Array.from([...varint((num << 3) | 2), ...varint(payload.length), ...payload]);
}

function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
