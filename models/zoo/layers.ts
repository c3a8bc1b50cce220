import { makeTensor } from '../../ir/tensor.js';
import type { ZooGraph } from './graph.js';

// Building blocks written in the op forms PyTorch's TorchScript exporter emits at opset 17. `path` is the
// module path as torch names parameters ('layer1.0.conv1'); node names use torch's scope form
// ('/layer1/layer1.0/conv1/Conv': a Sequential's numbered child repeats its parent's name).

export function scope(path: string): string {
  const levels: string[] = [];
  for (const p of path.split('.')) {
    const prev = levels[levels.length - 1];
    levels.push(/^\d+$/.test(p) && prev !== undefined ? `${prev}.${p}` : p);
  }
  return `/${levels.join('/')}`;
}

export interface ConvOptions {
  readonly cin: number;
  readonly cout: number;
  readonly k: number;
  readonly stride?: number;
  readonly pad?: number;
  readonly group?: number;
  readonly bias?: boolean;
  readonly std: number; // weight init std (He for conv→ReLU, unit gain otherwise)
}

export function conv2d(g: ZooGraph, path: string, x: string, o: ConvOptions): string {
  const group = o.group ?? 1;
  const fanIn = (o.cin / group) * o.k * o.k;
  const w = g.param(`${path}.weight`, [o.cout, o.cin / group, o.k, o.k], g.rng.normalArray(o.cout * fanIn, o.std));
  const inputs = [x, w];
  if (o.bias === true) inputs.push(g.param(`${path}.bias`, [o.cout], g.rng.normalArray(o.cout, 0.05)));
  const s = o.stride ?? 1;
  const p = o.pad ?? 0;
  return g.op('Conv', `${scope(path)}/Conv`, inputs, {
    dilations: [1, 1],
    group,
    kernel_shape: [o.k, o.k],
    pads: [p, p, p, p],
    strides: [s, s],
  });
}

// Eval-mode BatchNormalization kept as its own node (no Conv folding) so Loom's BN folding is exercised.
// Running stats are near (0, inputRms²), the scale the generator expects at this point, so the BN roughly
// normalizes like a trained one would; `gain` scales gamma (residual branches use < 1 so a deep net's
// activations neither explode nor vanish).
export function batchNorm(g: ZooGraph, path: string, x: string, c: number, gain = 1, inputRms = 1): string {
  const r = g.rng;
  const gamma = new Float32Array(c);
  const beta = new Float32Array(c);
  const mean = new Float32Array(c);
  const vari = new Float32Array(c);
  for (let i = 0; i < c; i++) {
    gamma[i] = gain * (1 + 0.1 * r.normal());
    beta[i] = 0.1 * r.normal();
    mean[i] = 0.1 * inputRms * r.normal();
    vari[i] = inputRms * inputRms * r.uniform(0.7, 1.3);
  }
  const inputs = [
    g.param(`${path}.weight`, [c], gamma),
    g.param(`${path}.bias`, [c], beta),
    g.buffer(`${path}.running_mean`, makeTensor('f32', [c], mean)),
    g.buffer(`${path}.running_var`, makeTensor('f32', [c], vari)),
  ];
  return g.op('BatchNormalization', `${scope(path)}/BatchNormalization`, [x, ...inputs], { epsilon: 1e-5, momentum: { float: 0.9 } });
}

export function relu(g: ZooGraph, path: string, x: string): string {
  return g.op('Relu', `${scope(path)}/Relu`, [x]);
}

// The exact-erf GELU as torch.nn.functional.gelu(approximate='none') exports at opset < 20:
// Div(x, √2) → Erf → Add(1) → Mul(x) → Mul(0.5).
export function gelu(g: ZooGraph, path: string, x: string): string {
  const s = scope(path);
  const div = g.op('Div', `${s}/Div`, [x, g.constF32(`${s}/Constant`, [1.4142135381698608])]);
  const erf = g.op('Erf', `${s}/Erf`, [div]);
  const add = g.op('Add', `${s}/Add`, [erf, g.constF32(`${s}/Constant_1`, [1])]);
  const mul = g.op('Mul', `${s}/Mul`, [x, add]);
  return g.op('Mul', `${s}/Mul_1`, [mul, g.constF32(`${s}/Constant_2`, [0.5])]);
}

// nn.Linear on a 2-D input: Gemm with the [out, in] weight and transB=1.
export function linearGemm(g: ZooGraph, path: string, x: string, fin: number, fout: number, std: number, output?: string): string {
  const w = g.param(`${path}.weight`, [fout, fin], g.rng.normalArray(fout * fin, std));
  const b = g.param(`${path}.bias`, [fout], g.rng.uniformArray(fout, -1 / Math.sqrt(fin), 1 / Math.sqrt(fin)));
  return g.op('Gemm', `${scope(path)}/Gemm`, [x, w, b], { alpha: { float: 1 }, beta: { float: 1 }, transB: 1 }, output);
}

// nn.Linear on a rank ≥ 3 input: MatMul with the weight stored pre-transposed [in, out], then Add with the
// bias as the FIRST operand (that is the order torch writes).
export function linearMatMul(g: ZooGraph, path: string, x: string, fin: number, fout: number, std: number, output?: string): string {
  const s = scope(path);
  const w = g.param(`onnx::MatMul_${path}`, [fin, fout], g.rng.normalArray(fin * fout, std));
  const b = g.param(`${path}.bias`, [fout], g.rng.uniformArray(fout, -1 / Math.sqrt(fin), 1 / Math.sqrt(fin)));
  const mm = g.op('MatMul', `${s}/MatMul`, [x, w]);
  return g.op('Add', `${s}/Add`, [b, mm], {}, output);
}

export function layerNorm(g: ZooGraph, path: string, x: string, c: number, eps: number, output?: string): string {
  const gamma = new Float32Array(c);
  const beta = new Float32Array(c);
  for (let i = 0; i < c; i++) {
    gamma[i] = 1 + 0.1 * g.rng.normal();
    beta[i] = 0.1 * g.rng.normal();
  }
  const w = g.param(`${path}.weight`, [c], gamma);
  const b = g.param(`${path}.bias`, [c], beta);
  return g.op('LayerNormalization', `${scope(path)}/LayerNormalization`, [x, w, b], { axis: -1, epsilon: { float: eps } }, output);
}
