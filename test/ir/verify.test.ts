import { describe, expect, it } from 'vitest';
import type { Graph, Node, Value, ValueId } from '../../ir/graph.js';
import { verifyGraph } from '../../ir/verify.js';
import { f32, mlp } from './fixtures.js';

function verifyError(g: Graph): string {
  try {
    verifyGraph(g);
  } catch (e) {
    expect((e as { code?: string }).code).toBe('VERIFY');
    return (e as Error).message;
  }
  throw new Error('verifyGraph accepted a broken graph');
}

const idOf = (g: Graph, name: string): ValueId => [...g.values.values()].find((v) => v.name === name)!.id;

function withValue(g: Graph, name: string, change: (v: Value) => Value): Graph {
  const values = new Map(g.values);
  const id = idOf(g, name);
  values.set(id, change(g.values.get(id)!));
  return { ...g, values };
}

describe('verifyGraph', () => {
  it('accepts a graph built by GraphBuilder', () => {
    expect(() => verifyGraph(mlp())).not.toThrow();
  });

  it('catches use before definition', () => {
    const g = mlp();
    const msg = verifyError({ ...g, nodes: [g.nodes[1]!, g.nodes[0]!] });
    expect(msg).toMatch(/node 'relu1' \(Relu\): input 0 %h is used before it is defined/);
  });

  it('catches a value defined twice', () => {
    const g = mlp();
    const relu = g.nodes[1]!;
    const dup = { ...relu, outputs: [idOf(g, 'h')] } as unknown as Node;
    const msg = verifyError({ ...g, nodes: [g.nodes[0]!, dup] });
    expect(msg).toMatch(/%h is defined more than once \(again as output of node 'relu1' \(Relu\)\)/);
    expect(msg).toMatch(/%y is never defined/);
  });

  it('catches a dangling graph output', () => {
    const g = mlp();
    expect(verifyError({ ...g, outputs: [99 as ValueId] })).toMatch(/graph output 0 is value #99, which is not in the value table/);
    expect(verifyError({ ...g, nodes: [g.nodes[0]!] })).toMatch(/graph output 0 %y is never defined/);
  });

  it('catches a constant whose tensor disagrees with its type', () => {
    const g = mlp();
    const constants = new Map(g.constants);
    constants.set(idOf(g, 'b'), f32([3], [1, 2, 3]));
    expect(verifyError({ ...g, constants })).toMatch(/constant %b holds f32\[3\] but its value type is f32\[2\]/);
  });

  it('catches a stored type the shape rule disagrees with', () => {
    const g = withValue(mlp(), 'h', (v) => ({ ...v, type: { dtype: 'f32', shape: ['N', 7] } }));
    expect(verifyError(g)).toMatch(/node 'gemm1' \(Gemm\): output 0 %h is stored as f32\[N,7\] but the shape rule gives f32\[N,2\]/);
  });

  it('catches unknown symbols, duplicate names, bad ops and arities', () => {
    expect(verifyError({ ...mlp(), symbols: [] })).toMatch(/%x: f32\[N,3\] uses symbol 'N', which is not among the graph's symbols/);
    expect(verifyError(withValue(mlp(), 'h', (v) => ({ ...v, name: 'x' })))).toMatch(/value name %x is used twice/);
    const g = mlp();
    const bogus = { ...g.nodes[1]!, op: 'Bogus' } as unknown as Node;
    expect(verifyError({ ...g, nodes: [g.nodes[0]!, bogus] })).toMatch(/node 'relu1' \(Bogus\): op 'Bogus' is not registered/);
    const twoIn = { ...g.nodes[1]!, inputs: [idOf(g, 'h'), idOf(g, 'x')] } as unknown as Node;
    expect(verifyError({ ...g, nodes: [g.nodes[0]!, twoIn] })).toMatch(/node 'relu1' \(Relu\): has 2 inputs; the op takes 1/);
  });

  it('reports the shape rule failing on stored types', () => {
    const g = withValue(mlp(), 'x', (v) => ({ ...v, type: { dtype: 'f32', shape: ['N', 4] } }));
    expect(verifyError(g)).toMatch(/node 'gemm1' \(Gemm\): shape rule fails on the stored input types: .*inner dimensions differ/);
  });
});
