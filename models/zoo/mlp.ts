import { fail } from '../../ir/errors.js';
import { heStd, unitStd } from '../random.js';
import { type CommonOptions, type ZooModel, ZooGraph, batchDim, requirePositiveInt } from './graph.js';
import { gelu, linearGemm, linearMatMul, relu } from './layers.js';

export interface MlpOptions extends CommonOptions {
  readonly sizes?: readonly number[]; // layer widths, input first; default [784, 512, 512, 10]
  readonly activation?: 'gelu' | 'relu'; // default 'gelu' (the Erf pattern torch writes)
  readonly linear?: 'gemm' | 'matmul'; // Gemm(transB=1) as torch writes for 2-D input, or MatMul + Add(bias, ·)
}

// A plain multilayer perceptron: Linear → act → … → Linear. Input 'input' [N, sizes[0]], output 'output'.
export function mlp(opts: MlpOptions): ZooModel {
  const sizes = opts.sizes ?? [784, 512, 512, 10];
  const activation = opts.activation ?? 'gelu';
  const linear = opts.linear ?? 'gemm';
  if (sizes.length < 2) fail('USAGE', `model zoo: mlp option 'sizes' needs at least 2 widths, got [${sizes.join(', ')}]`);
  sizes.forEach((s, i) => requirePositiveInt('mlp', `sizes[${i}]`, s));
  const n = batchDim(opts);
  const g = new ZooGraph(opts.seed);
  let x = g.input('input');
  const layers = sizes.length - 1;
  for (let i = 0; i < layers; i++) {
    const last = i === layers - 1;
    // He init where an activation follows; unit gain for the final logits layer
    const std = last ? unitStd(sizes[i]!) : heStd(sizes[i]!);
    const path = `layers.${2 * i}`;
    const out = last ? 'output' : undefined;
    x = linear === 'gemm' ? linearGemm(g, path, x, sizes[i]!, sizes[i + 1]!, std, out) : linearMatMul(g, path, x, sizes[i]!, sizes[i + 1]!, std, out);
    if (!last) {
      const actPath = `layers.${2 * i + 1}`;
      x = activation === 'gelu' ? gelu(g, actPath, x) : relu(g, actPath, x);
    }
  }
  return g.finish({
    kind: 'mlp',
    name: opts.name ?? `mlp_${sizes.join('x')}_${activation}_s${opts.seed}`,
    description: `MLP ${sizes.join('-')} with ${activation === 'gelu' ? 'Erf-GELU' : 'ReLU'}, ${linear === 'gemm' ? 'Gemm(transB=1)' : 'MatMul+Add'} layers`,
    seed: opts.seed,
    inputs: [{ name: 'input', dtype: 'f32', shape: [n, sizes[0]!] }],
    outputs: [{ name: 'output', dtype: 'f32', shape: [n, sizes[sizes.length - 1]!] }],
  });
}
