// Shape sub-graphs that exporters emit (TorchScript above all) must leave Reshape/Expand targets
// statically known, with the batch symbol 'N' and its static multiples ('N*16') as the only unknowns.
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../ir/builder.js';
import type { ValueId } from '../../ir/graph.js';
import { interpret } from '../../ir/interpret.js';
import { parseGraph } from '../../ir/parse.js';
import { printGraph } from '../../ir/print.js';
import { scaledSymbol, splitSymbolic } from '../../ir/shape.js';
import { fromNumbers, toNumbers } from '../../ir/tensor.js';
import { verifyGraph } from '../../ir/verify.js';
import { inferOp, typeArg } from '../support/one-node.js';
import { i64, i64s } from '../support/tensors.js';

describe('scaled batch symbols', () => {
  it('have one canonical spelling', () => {
    expect(scaledSymbol('N', 16)).toBe('N*16');
    expect(scaledSymbol('N', 1)).toBe('N');
    expect(scaledSymbol('N', 0)).toBe(0);
    expect(scaledSymbol('N*4', 4)).toBe('N*16');
    expect(splitSymbolic('N*16')).toEqual({ sym: 'N', k: 16 });
    expect(splitSymbolic('N')).toEqual({ sym: 'N', k: 1 });
  });
});

describe('elementwise dims rules', () => {
  const dims = (op: 'Equal' | 'Less' | 'Greater' | 'LessOrEqual' | 'GreaterOrEqual', a: (number | string)[], b: (number | string)[]) =>
    inferOp(op, [typeArg('i64', [a.length], a), typeArg('i64', [b.length], b)])[0]!.dims;

  it('Equal decides a symbol against numbers it can never be', () => {
    expect(dims('Equal', ['N', 16], [-1, -1])).toEqual([0, 0]);
    expect(dims('Equal', ['N', 16], [0])).toEqual([0, 0]);
    expect(dims('Equal', [-1], ['N'])).toEqual([0]);
    expect(dims('Equal', ['N*16'], [15])).toEqual([0]); // N*16 >= 16
    expect(dims('Equal', ['N'], [1])).toBeUndefined(); // the batch may be 1
    expect(dims('Equal', ['N'], ['M'])).toBeUndefined();
    expect(dims('Equal', ['N', 'N*2'], ['N', 'N'])).toEqual([1, 0]);
  });

  it('order comparisons use that a symbol is at least its factor', () => {
    expect(dims('Less', ['N'], [0])).toEqual([0]);
    expect(dims('Less', [0], ['N'])).toEqual([1]);
    expect(dims('GreaterOrEqual', ['N'], [0])).toEqual([1]);
    expect(dims('Greater', ['N*2'], ['N'])).toEqual([1]);
    expect(dims('LessOrEqual', ['N'], [3])).toBeUndefined();
  });

  it('Mul/Div scale a symbol by whole numbers only', () => {
    const arith = (op: 'Mul' | 'Div', a: (number | string)[], b: (number | string)[]) =>
      inferOp(op, [typeArg('i64', [a.length], a), typeArg('i64', [b.length], b)])[0]!.dims;
    expect(arith('Mul', ['N', 2], [16])).toEqual(['N*16', 32]);
    expect(arith('Mul', [16], ['N*2'])).toEqual(['N*32']);
    expect(arith('Mul', ['N'], [0])).toEqual([0]);
    expect(arith('Mul', ['N'], ['N'])).toBeUndefined();
    expect(arith('Div', ['N*16'], [4])).toEqual(['N*4']);
    expect(arith('Div', ['N*16'], [16])).toEqual(['N']);
    expect(arith('Div', ['N*16'], [32])).toBeUndefined();
    expect(arith('Div', ['N'], [2])).toBeUndefined();
  });

  it('Where picks per element once the condition is known', () => {
    const c = dims('Equal', ['N', 16], [-1, -1])!;
    const w = inferOp('Where', [typeArg('bool', [2], c), typeArg('i64', [2], [1, 1]), typeArg('i64', [2], ['N', 16])])[0]!;
    expect(w.dims).toEqual(['N', 16]);
  });
});

describe('layout rules with scaled symbols', () => {
  const X = { dtype: 'f32', shape: ['N', 16] } as const;

  it('Flatten and Reshape merge and split the batch dim', () => {
    expect(inferOp('Flatten', [{ type: X }], { axis: 2 })[0]!.type.shape).toEqual(['N*16', 1]);
    const reshape = (shape: (number | string)[], target: (number | string)[]) =>
      inferOp('Reshape', [{ type: { dtype: 'f32', shape } }, { type: { dtype: 'i64', shape: [target.length] }, dims: target }])[0]!.type.shape;
    expect(reshape(['N', 1, 1, 16, 1], [-1])).toEqual(['N*16']);
    expect(reshape(['N*16'], ['N', 1, 1, 16])).toEqual(['N', 1, 1, 16]);
    expect(reshape(['N*16', 1], [-1, 4])).toEqual(['N*4', 4]);
    expect(reshape(['N*16'], [-1, 16])).toEqual(['N', 16]);
    expect(() => reshape(['N*16'], ['N', 15])).toThrow(/cannot reshape/);
  });

  it('Tile of a symbolic dim scales it', () => {
    const t = inferOp('Tile', [{ type: X }, { type: { dtype: 'i64', shape: [2] }, value: i64([3, 1]) }])[0]!;
    expect(t.type.shape).toEqual(['N*3', 16]);
  });
});

// The TorchScript shape sub-graphs of Hugging Face BERT (hf_bert_tiny.onnx), rebuilt op for op.
describe('TorchScript patterns through GraphBuilder', () => {
  const c = (b: GraphBuilder, name: string, v: number[] | number): ValueId => b.addConstant(name, Array.isArray(v) ? i64(v) : i64s(v));

  it('Expand to Where(Equal(shape, ConstantOfShape*-1), ones, shape) is static', () => {
    const b = new GraphBuilder('g');
    const ids = b.addInput('ids', { dtype: 'i64', shape: ['N', 16] });
    const [s] = b.addNode('Shape', 's', [ids], { start: 0, end: null }, ['s']);
    const [n] = b.addNode('Gather', 'g0', [s!, c(b, 'k0', 0)], { axis: 0 }, ['n']);
    const [len] = b.addNode('Gather', 'g1', [s!, c(b, 'k1', 1)], { axis: 0 }, ['len']);
    const [n1] = b.addNode('Unsqueeze', 'u0', [n!, c(b, 'a0', [0])], {}, ['n1']);
    const [l1] = b.addNode('Unsqueeze', 'u1', [len!, c(b, 'a1', [0])], {}, ['l1']);
    const [cat] = b.addNode('Concat', 'cat', [n1!, l1!], { axis: 0 }, ['cat']);
    const [shape] = b.addNode('Reshape', 'r', [cat!, c(b, 'm1', [-1])], { allowzero: false }, ['shape']);
    const [ss] = b.addNode('Shape', 's2', [shape!], { start: 0, end: null }, ['ss']);
    const [ones] = b.addNode('ConstantOfShape', 'cos', [ss!], { dtype: 'i64', value: 1 }, ['ones']);
    expect(b.dimsOf(ones!)).toEqual([1, 1]);
    const [neg] = b.addNode('Mul', 'mul', [ones!, c(b, 'minus', -1)], {}, ['neg']);
    expect(b.dimsOf(neg!)).toEqual([-1, -1]);
    const [eq] = b.addNode('Equal', 'eq', [shape!, neg!], {}, ['eq']);
    expect(b.dimsOf(eq!)).toEqual([0, 0]);
    const [target] = b.addNode('Where', 'w', [eq!, ones!, shape!], {}, ['target']);
    expect(b.dimsOf(target!)).toEqual(['N', 16]);
    const [pos] = b.addNode(
      'Slice',
      'sl',
      [
        b.addConstant(
          'buf',
          fromNumbers(
            'i64',
            [1, 64],
            Array.from({ length: 64 }, (_, i) => i),
          ),
        ),
        c(b, 'st', [0]),
        l1!,
        c(b, 'ax', [1]),
      ],
      {},
      ['pos'],
    );
    const [e] = b.addNode('Expand', 'ex', [pos!, target!], {}, ['e']);
    expect(b.value(e!).type.shape).toEqual(['N', 16]);
  });

  it('advanced indexing x[b, kv] (Flatten + Gather of b*S+kv + Reshape) types, verifies, prints and runs', () => {
    const b = new GraphBuilder('g');
    const mask = b.addInput('mask', { dtype: 'f32', shape: ['N', 16] });
    const [s] = b.addNode('Shape', 's', [mask], { start: 0, end: null }, ['s']);
    const [n] = b.addNode('Gather', 'g0', [s!, c(b, 'k0', 0)], { axis: 0 }, ['n']);
    const [len] = b.addNode('Gather', 'g1', [s!, c(b, 'k1', 1)], { axis: 0 }, ['len']);
    const [bi] = b.addNode('Range', 'rb', [c(b, 'z0', 0), n!, c(b, 'one0', 1)], {}, ['bi']);
    const [kv] = b.addNode('Range', 'rk', [c(b, 'z1', 0), len!, c(b, 'one1', 1)], {}, ['kv']);
    const [bi4] = b.addNode('Unsqueeze', 'ub', [bi!, c(b, 'ab', [1, 2, 3])], {}, ['bi4']);
    const [kv4] = b.addNode('Unsqueeze', 'uk', [kv!, c(b, 'ak', [0, 1, 2])], {}, ['kv4']);
    const [flat] = b.addNode('Flatten', 'f', [mask], { axis: 2 }, ['flat']);
    expect(b.value(flat!).type.shape).toEqual(['N*16', 1]);
    const [stride] = b.addNode('Mul', 'm', [bi4!, len!], {}, ['stride']);
    const [idx] = b.addNode('Add', 'a', [kv4!, stride!], {}, ['idx']);
    expect(b.value(idx!).type.shape).toEqual(['N', 1, 1, 16]);
    const [gathered] = b.addNode('Gather', 'g', [flat!, idx!], { axis: 0 }, ['gathered']);
    const [vec] = b.addNode('Reshape', 'r0', [gathered!, c(b, 'm1', [-1])], { allowzero: false }, ['vec']);
    expect(b.value(vec!).type.shape).toEqual(['N*16']);
    const [is] = b.addNode('Shape', 'si', [idx!], { start: 0, end: null }, ['is']);
    const [out] = b.addNode('Reshape', 'r1', [vec!, is!], { allowzero: false }, ['out']);
    expect(b.value(out!).type.shape).toEqual(['N', 1, 1, 16]);
    b.setOutputs([out!]);
    const g = b.build(['N']);
    verifyGraph(g);
    const text = printGraph(g);
    expect(text).toContain('f32["N*16",1]');
    verifyGraph(parseGraph(text));

    const x = fromNumbers(
      'f32',
      [3, 16],
      Array.from({ length: 48 }, (_, i) => i),
    );
    const y = interpret(g, { mask: x }).out!;
    expect(y.shape).toEqual([3, 1, 1, 16]);
    expect(Array.from(toNumbers(y))).toEqual(Array.from(toNumbers(x)));
  });
});
