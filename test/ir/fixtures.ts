import { GraphBuilder } from '../../ir/builder.js';
import type { Graph } from '../../ir/graph.js';
import { type Tensor, fromNumbers } from '../../ir/tensor.js';

export const f32 = (shape: number[], values: number[]): Tensor => fromNumbers('f32', shape, values);

// y = Relu(x · wᵀ + b) with x: f32[N,3], w: f32[2,3], b: f32[2]; the hidden value is %h.
export function mlp(): Graph {
  const b = new GraphBuilder('mlp');
  const x = b.addInput('x', { dtype: 'f32', shape: ['N', 3] });
  const w = b.addConstant('w', f32([2, 3], [1, 2, 3, -1, 0, 1]));
  const bias = b.addConstant('b', f32([2], [0.5, -4]));
  const [h] = b.addNode('Gemm', 'gemm1', [x, w, bias], { alpha: 1, beta: 1, transA: false, transB: true, activation: null }, ['h']);
  const [y] = b.addNode('Relu', 'relu1', [h!], {}, ['y']);
  b.setOutputs([y!]);
  return b.build(['N']);
}

// x (1,2,3) · w + b by hand for the mlp above.
export function mlpExpected(x: number[][]): { h: number[]; y: number[] } {
  const w = [
    [1, 2, 3],
    [-1, 0, 1],
  ];
  const bias = [0.5, -4];
  const h = x.flatMap((row) => w.map((wr, j) => wr.reduce((s, wv, k) => s + wv * row[k]!, 0) + bias[j]!));
  return { h, y: h.map((v) => Math.max(0, v)) };
}
