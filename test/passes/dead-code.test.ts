import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../ir/builder.js';
import type { Graph } from '../../ir/graph.js';
import { eliminateDeadCode } from '../../ir/passes/dead-code.js';
import { verifyGraph } from '../../ir/verify.js';
import { checkPass, f32, onnxModel, opsOf } from './helpers.js';

const outputNames = (g: Graph): string[] => g.outputs.map((o) => g.values.get(o)!.name);

describe('eliminateDeadCode', () => {
  it('drops dead branches, unused constants, Identity and Dropout, keeping output names', async () => {
    const m = onnxModel({
      inputs: [{ name: 'x', dtype: 'f32', shape: ['N', 4] }],
      outputs: [{ name: 'y', dtype: 'f32', shape: ['N', 4] }],
      nodes: [
        { op: 'Identity', inputs: ['x'], outputs: ['x1'] },
        { op: 'Add', inputs: ['x1', 'b'], outputs: ['a'] },
        { op: 'Dropout', inputs: ['a'], outputs: ['d'] },
        { op: 'Sigmoid', inputs: ['a'], outputs: ['dead1'] },
        { op: 'Mul', inputs: ['dead1', 'unused'], outputs: ['dead2'] },
        { op: 'Identity', inputs: ['d'], outputs: ['y'] },
      ],
      initializers: { b: f32([4], [1, 2, 3, 4]), unused: f32([4], [5, 6, 7, 8]) },
    });
    const g = await checkPass(eliminateDeadCode, m.graph, { model: m.bytes });
    expect(opsOf(g)).toEqual(['Add']);
    expect(outputNames(g)).toEqual(['y']);
    expect([...g.constants.keys()].map((id) => g.values.get(id)!.name)).toEqual(['b']);
    expect([...g.values.values()].map((v) => v.name).sort()).toEqual(['b', 'x', 'y']);
  });

  it('keeps an Identity where an output is a graph input or repeats another output', async () => {
    const b = new GraphBuilder('copies');
    const x = b.addInput('x', { dtype: 'f32', shape: [2] });
    const [passthrough] = b.addNode('Identity', 'id0', [x], {}, ['out_x']);
    const [r] = b.addNode('Relu', 'relu', [x], {}, ['r']);
    const [y1] = b.addNode('Identity', 'id1', [r!], {}, ['y1']);
    const [y2] = b.addNode('Identity', 'id2', [r!], {}, ['y2']);
    b.setOutputs([passthrough!, y1!, y2!]);
    const before = b.build();
    verifyGraph(before);
    const g = await checkPass(eliminateDeadCode, before);
    expect(outputNames(g)).toEqual(['out_x', 'y1', 'y2']);
    expect(opsOf(g).sort()).toEqual(['Identity', 'Identity', 'Relu']);
  });

  it('keeps a Dropout whose mask is used', async () => {
    const m = onnxModel({
      inputs: [{ name: 'x', dtype: 'f32', shape: [2, 3] }],
      outputs: [
        { name: 'y', dtype: 'f32', shape: [2, 3] },
        { name: 'mask', dtype: 'bool', shape: [2, 3] },
      ],
      nodes: [{ op: 'Dropout', inputs: ['x'], outputs: ['y', 'mask'] }],
    });
    const g = await checkPass(eliminateDeadCode, m.graph, { model: m.bytes });
    expect(opsOf(g)).toEqual(['Dropout']);
  });
});
