import { describe, expect, it } from 'vitest';
import { decodeModel } from '../../src/onnx/decode.js';
import { importModelBytes } from '../../src/onnx/import.js';
import { onnx } from '../../src/onnx/proto.js';
import { type ModelSpec, encodeModel } from '../../src/onnx/write.js';
import { expectLoomError } from '../support/errors.js';
import { rng } from '../support/tensors.js';
import { randomTensor } from './helpers.js';

// Every bad model gives a LoomError with the right code and a message naming the culprit.

const addSpec: ModelSpec = {
  inputs: [{ name: 'x', dtype: 'f32', shape: [2, 3] }],
  outputs: [{ name: 'z', dtype: 'f32', shape: [2, 3] }],
  nodes: [
    { op: 'Add', name: 'add1', inputs: ['x', 'w'], outputs: ['y'] },
    { op: 'Relu', name: 'relu1', inputs: ['y'], outputs: ['z'] },
  ],
  initializers: { w: randomTensor([2, 3], 1) },
};

describe('undecodable bytes', () => {
  it('a valid model imports', () => {
    const g = importModelBytes(encodeModel(addSpec));
    expect(g.nodes.map((n) => n.op)).toEqual(['Add', 'Relu']);
    expect(g.inputs.map((i) => g.values.get(i)!.name)).toEqual(['x']);
  });

  it('truncated file', () => {
    const bytes = encodeModel(addSpec);
    // Cut inside the graph: the length prefixes point past the end.
    for (const cut of [bytes.length - 1, Math.floor(bytes.length / 2), 10]) {
      expectLoomError(() => importModelBytes(bytes.subarray(0, cut)), 'MODEL_DECODE', `(${cut})`, 'truncated');
    }
  });

  it('empty file', () => {
    expectLoomError(() => importModelBytes(new Uint8Array()), 'MODEL_DECODE', '0 bytes');
  });

  it('random bytes', () => {
    const r = rng(7);
    for (let k = 0; k < 50; k++) {
      const bytes = Uint8Array.from({ length: 16 + Math.floor(r() * 400) }, () => Math.floor(r() * 256));
      expectLoomError(() => importModelBytes(bytes), 'MODEL_DECODE');
    }
  });

  it('valid protobuf that is not a model', () => {
    const noGraph = onnx.ModelProto.encode({ irVersion: 8, producerName: 'x', opsetImport: [{ domain: '', version: 17 }] }).finish();
    expectLoomError(() => decodeModel(noGraph), 'MODEL_DECODE', 'not as an ONNX model', 'no graph');
    const noOpset = onnx.ModelProto.encode({ irVersion: 8, graph: { name: 'g', output: [{ name: 'y' }] } }).finish();
    expectLoomError(() => decodeModel(noOpset), 'MODEL_DECODE', 'no opset_import');
    const emptyGraph = onnx.ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph: { name: 'g' } }).finish();
    expectLoomError(() => decodeModel(emptyGraph), 'MODEL_DECODE', 'neither nodes nor outputs');
    // A different message type altogether.
    const tensor = onnx.TensorProto.encode({ name: 'w', dims: [2], dataType: 1, floatData: [1, 2] }).finish();
    expectLoomError(() => importModelBytes(tensor), 'MODEL_DECODE');
  });

  it('IR versions and opsets out of range', () => {
    expectLoomError(() => importModelBytes(encodeModel({ ...addSpec, irVersion: 11 })), 'UNSUPPORTED_FEATURE', 'IR version 11');
    expectLoomError(() => importModelBytes(encodeModel({ ...addSpec, irVersion: 2 })), 'UNSUPPORTED_FEATURE', 'IR version 2');
    expectLoomError(() => importModelBytes(encodeModel({ ...addSpec, opset: 8 })), 'UNSUPPORTED_FEATURE', 'opset 8');
    expectLoomError(() => importModelBytes(encodeModel({ ...addSpec, opset: 22 })), 'UNSUPPORTED_FEATURE', 'opset 22');
    for (const ir of [3, 10]) expect(importModelBytes(encodeModel({ ...addSpec, irVersion: ir })).nodes).toHaveLength(2);
  });
});

describe('invalid graphs', () => {
  it('unknown op', () => {
    const spec: ModelSpec = { ...addSpec, nodes: [addSpec.nodes[0]!, { op: 'NonMaxSuppression', name: 'nms', inputs: ['y'], outputs: ['z'] }] };
    expectLoomError(
      () => importModelBytes(encodeModel(spec)),
      'UNSUPPORTED_OP',
      "node 'nms' uses op 'NonMaxSuppression' (opset 17), which Loom does not support",
    );
  });

  it('op of another domain', () => {
    const spec: ModelSpec = { ...addSpec, nodes: [addSpec.nodes[0]!, { op: 'FusedGelu', name: 'fg', domain: 'com.microsoft', inputs: ['y'], outputs: ['z'] }] };
    expectLoomError(() => importModelBytes(encodeModel(spec)), 'UNSUPPORTED_OP', "'fg'", "'FusedGelu'", "'com.microsoft'");
  });

  it('several unknown ops are listed together', () => {
    const spec: ModelSpec = {
      ...addSpec,
      nodes: [
        { op: 'Foo', name: 'f1', inputs: ['x'], outputs: ['y'] },
        { op: 'Bar', name: 'b1', inputs: ['y'], outputs: ['z'] },
      ],
    };
    expectLoomError(() => importModelBytes(encodeModel(spec)), 'UNSUPPORTED_OP', "'Foo'", "'Bar'", '1 more');
  });

  it('missing initializer', () => {
    const spec: ModelSpec = { ...addSpec, initializers: {} };
    expectLoomError(() => importModelBytes(encodeModel(spec)), 'MODEL_INVALID', "node 'add1' (Add)", "'w'", 'missing initializer');
  });

  it('cycle', () => {
    const spec: ModelSpec = {
      ...addSpec,
      nodes: [
        { op: 'Add', name: 'a', inputs: ['x', 'c'], outputs: ['b'] },
        { op: 'Relu', name: 'r', inputs: ['b'], outputs: ['c'] },
        { op: 'Relu', name: 'out', inputs: ['c'], outputs: ['z'] },
      ],
    };
    expectLoomError(() => importModelBytes(encodeModel(spec)), 'MODEL_INVALID', 'cycle', "node 'a'", "node 'r'");
  });

  it('value produced twice', () => {
    const spec: ModelSpec = {
      ...addSpec,
      nodes: [
        { op: 'Relu', name: 'r1', inputs: ['x'], outputs: ['z'] },
        { op: 'Relu', name: 'r2', inputs: ['x'], outputs: ['z'] },
      ],
    };
    expectLoomError(() => importModelBytes(encodeModel(spec)), 'MODEL_INVALID', "'z'", "'r1'", "'r2'");
  });

  it('shape mismatch: Add of [2,3] and [4]', () => {
    const spec: ModelSpec = { ...addSpec, initializers: { w: randomTensor([4], 2) } };
    expectLoomError(() => importModelBytes(encodeModel(spec)), 'SHAPE', "node 'add1' (Add)", '[2,3]', '[4]');
  });

  it('declared output shape that disagrees with the inferred one', () => {
    const spec: ModelSpec = { ...addSpec, outputs: [{ name: 'z', dtype: 'f32', shape: [2, 4] }] };
    expectLoomError(() => importModelBytes(encodeModel(spec)), 'SHAPE', "graph output 'z'", '[2,4]', '[2,3]');
    const rank: ModelSpec = { ...addSpec, outputs: [{ name: 'z', dtype: 'f32', shape: [6] }] };
    expectLoomError(() => importModelBytes(encodeModel(rank)), 'SHAPE', "graph output 'z'");
    const dtype: ModelSpec = { ...addSpec, outputs: [{ name: 'z', dtype: 'i64', shape: [2, 3] }] };
    expectLoomError(() => importModelBytes(encodeModel(dtype)), 'SHAPE', "graph output 'z'", 'i64', 'f32');
  });

  it('output never produced', () => {
    const spec: ModelSpec = { ...addSpec, outputs: [{ name: 'nope', dtype: 'f32', shape: [2, 3] }] };
    expectLoomError(() => importModelBytes(encodeModel(spec)), 'MODEL_INVALID', "graph output 'nope'");
  });

  it('initializer whose data does not fit its shape', () => {
    const bytes = encodeModel(addSpec);
    const m = onnx.ModelProto.decode(bytes);
    m.graph!.initializer![0]!.dims = [3, 3];
    expectLoomError(() => importModelBytes(onnx.ModelProto.encode(m).finish()), 'MODEL_INVALID', "initializer 'w'", '24 bytes', '36');
    m.graph!.initializer![0]!.dims = [2, 3];
    m.graph!.initializer![0]!.rawData = new Uint8Array();
    m.graph!.initializer![0]!.floatData = [1, 2, 3];
    expectLoomError(() => importModelBytes(onnx.ModelProto.encode(m).finish()), 'MODEL_INVALID', "initializer 'w'", 'float_data has 3 values');
    m.graph!.initializer![0]!.dims = [1 << 20, 1 << 20];
    expectLoomError(() => importModelBytes(onnx.ModelProto.encode(m).finish()), 'MODEL_INVALID', "initializer 'w'", 'limit');
  });

  it('unsupported element type names the tensor', () => {
    const m = onnx.ModelProto.decode(encodeModel(addSpec));
    m.graph!.initializer![0]!.dataType = 17; // FLOAT8E4M3FN (IR 9)
    expectLoomError(() => importModelBytes(onnx.ModelProto.encode(m).finish()), 'UNSUPPORTED_FEATURE', "initializer 'w'", 'FLOAT8E4M3FN');
  });
});
