// ONNX semantics Loom must not get silently wrong (issue 14, defect 6): an initializer that shares a graph
// input's name is an overridable default (IR version >= 4), not a constant; a model without runtime inputs
// can never be called.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { importModelBytes } from '../../src/onnx/import.js';
import { type ModelSpec, encodeModel } from '../../src/onnx/write.js';
import { manifestFromFiles } from '../../src/fleet/manifest.js';
import { importTenantModel } from '../../src/fleet/tenants.js';
import { expectLoomError } from '../support/errors.js';
import { randomTensor } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'loom-semantics-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const addSpec: ModelSpec = {
  inputs: [{ name: 'x', dtype: 'f32', shape: [2, 3] }],
  outputs: [{ name: 'z', dtype: 'f32', shape: [2, 3] }],
  nodes: [{ op: 'Add', name: 'add1', inputs: ['x', 'w'], outputs: ['z'] }],
  initializers: { w: randomTensor([2, 3], 11) },
};

describe('an initializer with the name of a graph input', () => {
  it('IR version >= 4: an overridable default, refused with the input named and how to fix the model', () => {
    const spec: ModelSpec = { ...addSpec, inputs: [...addSpec.inputs, { name: 'w', dtype: 'f32', shape: [2, 3] }] };
    expectLoomError(() => importModelBytes(encodeModel(spec)), 'UNSUPPORTED_FEATURE', "graph input 'w'", 'initializer', 'default', 'graph.input');
  });

  it('several such inputs are counted', () => {
    const spec: ModelSpec = {
      ...addSpec,
      nodes: [
        { op: 'Add', name: 'add1', inputs: ['x', 'w'], outputs: ['y'] },
        { op: 'Mul', name: 'mul1', inputs: ['y', 'v'], outputs: ['z'] },
      ],
      initializers: { w: randomTensor([2, 3], 11), v: randomTensor([2, 3], 12) },
      inputs: [...addSpec.inputs, { name: 'w', dtype: 'f32', shape: [2, 3] }, { name: 'v', dtype: 'f32', shape: [2, 3] }],
    };
    expectLoomError(() => importModelBytes(encodeModel(spec)), 'UNSUPPORTED_FEATURE', "graph inputs 'w', 'v'");
  });

  it('IR version 3 (initializers must be listed as inputs): still constants', () => {
    const spec: ModelSpec = { ...addSpec, irVersion: 3, opset: 9, inputs: [...addSpec.inputs, { name: 'w', dtype: 'f32', shape: [2, 3] }] };
    const g = importModelBytes(encodeModel(spec));
    expect(g.inputs.map((i) => g.values.get(i)!.name)).toEqual(['x']);
  });
});

describe('a model with no runtime inputs', () => {
  const constSpec: ModelSpec = {
    inputs: [],
    outputs: [{ name: 'z', dtype: 'f32', shape: [2, 3] }],
    nodes: [{ op: 'Relu', name: 'relu1', inputs: ['w'], outputs: ['z'] }],
    initializers: { w: randomTensor([2, 3], 11) },
  };

  it('is refused as a tenant, naming it', () => {
    const file = join(tmp, 'const.onnx');
    writeFileSync(file, encodeModel(constSpec));
    const [t] = manifestFromFiles([file]).tenants;
    expectLoomError(() => importTenantModel(t!), 'MODEL_INVALID', "tenant 'const'", 'no runtime inputs');
  });

  it('IR version 3 with every input an initializer: refused too', () => {
    const file = join(tmp, 'const3.onnx');
    writeFileSync(file, encodeModel({ ...constSpec, irVersion: 3, opset: 9, inputs: [{ name: 'w', dtype: 'f32', shape: [2, 3] }] }));
    const [t] = manifestFromFiles([file]).tenants;
    expectLoomError(() => importTenantModel(t!), 'MODEL_INVALID', 'no runtime inputs');
  });
});
