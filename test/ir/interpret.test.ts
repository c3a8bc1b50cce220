import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../ir/builder.js';
import type { Graph, Value, ValueId } from '../../ir/graph.js';
import { interpret, interpretAll } from '../../ir/interpret.js';
import { fromNumbers, toNumbers } from '../../ir/tensor.js';
import { expectLoomError } from '../support/errors.js';
import { f32, mlp, mlpExpected } from './fixtures.js';

describe('interpret', () => {
  const rows = [
    [1, 2, 3],
    [-2, 0.5, -1],
  ];
  const x = f32([2, 3], rows.flat());

  it('computes a Gemm + Relu graph by hand values', () => {
    const out = interpret(mlp(), { x });
    expect(Object.keys(out)).toEqual(['y']);
    expect(out.y!.dtype).toBe('f32');
    expect(out.y!.shape).toEqual([2, 2]);
    expect(Array.from(toNumbers(out.y!))).toEqual(mlpExpected(rows).y);
    // row 0: [14.5, -2] → relu [14.5, 0]; row 1: [-3.5, -3] → [0, 0]
    expect(mlpExpected(rows).y).toEqual([14.5, 0, 0, 0]);
  });

  it('binds the batch symbol to any size', () => {
    const one = interpret(mlp(), { x: f32([1, 3], [0, 0, 1]) });
    expect(Array.from(toNumbers(one.y!))).toEqual([3.5, 0]);
  });

  it('returns intermediates when asked', () => {
    const all = interpretAll(mlp(), { x });
    expect(Object.keys(all).sort()).toEqual(['h', 'x', 'y']);
    expect(Array.from(toNumbers(all.h!))).toEqual(mlpExpected(rows).h);
    const kept = interpret(mlp(), { x }, { keep: ['h'] });
    expect(Object.keys(kept).sort()).toEqual(['h', 'y']);
    expectLoomError(() => interpret(mlp(), { x }, { keep: ['nope'] }), 'USAGE', /no value named 'nope'/);
  });

  it('frees intermediates but still serves a value used by several nodes', () => {
    const b = new GraphBuilder('fanout');
    const a = b.addInput('a', { dtype: 'f32', shape: [2] });
    const [r] = b.addNode('Relu', 'r', [a], {}, ['r']);
    const [s1] = b.addNode('Add', 's1', [r!, r!], {}, ['s1']);
    const [s2] = b.addNode('Add', 's2', [s1!, r!], {}, ['s2']);
    b.setOutputs([s2!, r!]);
    const out = interpret(b.build(), { a: f32([2], [-1, 2]) });
    expect(Array.from(toNumbers(out.s2!))).toEqual([0, 6]);
    expect(Array.from(toNumbers(out.r!))).toEqual([0, 2]);
  });

  it('validates inputs', () => {
    const g = mlp();
    expectLoomError(() => interpret(g, {}), 'EVAL', /input %x \(f32\[N,3\]\) is missing/);
    expectLoomError(() => interpret(g, { x, z: x }), 'EVAL', /input 'z' is not an input/);
    expectLoomError(() => interpret(g, { x: fromNumbers('f64', [2, 3], rows.flat()) }), 'EVAL', /input %x: expected f32\[N,3\], got f64\[2,3\]/);
    expectLoomError(() => interpret(g, { x: f32([6], rows.flat()) }), 'EVAL', /input %x: expected f32\[N,3\], got f32\[6\]/);
    expectLoomError(() => interpret(g, { x: f32([3, 2], rows.flat()) }), 'EVAL', /input %x: expected f32\[N,3\], got f32\[3,2\] \(dim 1\)/);
    const bad = { dtype: 'f32' as const, shape: [2, 3], data: new Float64Array(6) };
    expectLoomError(() => interpret(g, { x: bad }), 'EVAL', /malformed data/);
  });

  it('binds a symbol consistently across inputs', () => {
    const b = new GraphBuilder('two');
    const p = b.addInput('p', { dtype: 'f32', shape: ['N', 2] });
    const q = b.addInput('q', { dtype: 'f32', shape: ['N', 2] });
    const [s] = b.addNode('Add', 'add', [p, q], {}, ['s']);
    b.setOutputs([s!]);
    const g = b.build(['N']);
    const ok = interpret(g, { p: f32([1, 2], [1, 2]), q: f32([1, 2], [3, 4]) });
    expect(Array.from(toNumbers(ok.s!))).toEqual([4, 6]);
    expectLoomError(
      () => interpret(g, { p: f32([1, 2], [1, 2]), q: f32([2, 2], [1, 2, 3, 4]) }),
      'EVAL',
      /input %q: expected f32\[N,2\], got f32\[2,2\] \(dim 0: N is 1 from input %p\)/,
    );
  });

  it('catches a produced tensor that disagrees with the declared type', () => {
    const g = mlp();
    const h = [...g.values.values()].find((v) => v.name === 'h')!;
    const values = new Map<ValueId, Value>(g.values);
    values.set(h.id, { ...h, type: { dtype: 'f32', shape: ['N', 5] } });
    const broken: Graph = { ...g, values };
    expectLoomError(() => interpret(broken, { x }), 'VERIFY', /node 'gemm1' \(Gemm\): output 0 %h: expected f32\[N,5\], got f32\[2,2\]/);
  });
});
