import { heStd } from '../random.js';
import { type CommonOptions, type ZooModel, ZooGraph, batchDim, requirePositiveInt } from './graph.js';
import { conv2d, relu, scope } from './layers.js';

export interface SqueezeNetOptions extends CommonOptions {
  readonly resolution?: number; // default 224; 66 makes every ceil_mode MaxPool round up
  readonly classes?: number; // default 1000
  readonly headPool?: 'global' | 'average'; // GlobalAveragePool (torch's AdaptiveAvgPool2d(1)) or AveragePool over the final map
}

// Fire(squeeze, expand1x1, expand3x3) modules of torchvision squeezenet1_1, in order.
const FIRES: readonly (readonly [number, number, number] | 'pool')[] = [
  [16, 64, 64],
  [16, 64, 64],
  'pool',
  [32, 128, 128],
  [32, 128, 128],
  'pool',
  [48, 192, 192],
  [48, 192, 192],
  [64, 256, 256],
  [64, 256, 256],
];

function poolOut(size: number): number {
  return Math.ceil((size - 3) / 2) + 1; // 3x3/2 MaxPool, no pads, ceil_mode=1
}

// torchvision squeezenet1_1: Conv 3x3/2 + Relu, MaxPool 3x3/2 ceil_mode=1, Fire modules (squeeze Conv 1x1
// + Relu, then Concat of expand 1x1 and expand 3x3 Conv + Relu), classifier Conv 1x1 + Relu, average pool,
// Flatten. No BatchNorm. Input 'input' [N, 3, R, R], output 'output' [N, classes].
export function squeezenet(opts: SqueezeNetOptions): ZooModel {
  const R = requirePositiveInt('squeezenet', 'resolution', opts.resolution ?? 224);
  const C = requirePositiveInt('squeezenet', 'classes', opts.classes ?? 1000);
  const headPool = opts.headPool ?? 'global';
  const n = batchDim(opts);
  const g = new ZooGraph(opts.seed);

  let size = Math.floor((R - 3) / 2) + 1;
  let x = relu(g, 'features.1', conv2d(g, 'features.0', g.input('input'), { cin: 3, cout: 64, k: 3, stride: 2, std: heStd(27), bias: true }));
  const maxPool = (path: string, v: string): string => {
    size = poolOut(size);
    return g.op('MaxPool', `${scope(path)}/MaxPool`, [v], { ceil_mode: 1, dilations: [1, 1], kernel_shape: [3, 3], pads: [0, 0, 0, 0], strides: [2, 2] });
  };
  x = maxPool('features.2', x);
  let cin = 64;
  FIRES.forEach((f, i) => {
    const path = `features.${i + 3}`;
    if (f === 'pool') {
      x = maxPool(path, x);
      return;
    }
    const [sq, e1, e3] = f;
    const s = relu(g, `${path}.squeeze_activation`, conv2d(g, `${path}.squeeze`, x, { cin, cout: sq, k: 1, bias: true, std: heStd(cin) }));
    const a = relu(g, `${path}.expand1x1_activation`, conv2d(g, `${path}.expand1x1`, s, { cin: sq, cout: e1, k: 1, bias: true, std: heStd(sq) }));
    const b = relu(g, `${path}.expand3x3_activation`, conv2d(g, `${path}.expand3x3`, s, { cin: sq, cout: e3, k: 3, pad: 1, bias: true, std: heStd(sq * 9) }));
    x = g.op('Concat', `${scope(path)}/Concat`, [a, b], { axis: 1 });
    cin = e1 + e3;
  });
  // Dropout (classifier.0) disappears in an eval-mode export
  x = relu(g, 'classifier.2', conv2d(g, 'classifier.1', x, { cin, cout: C, k: 1, bias: true, std: heStd(cin) }));
  x =
    headPool === 'global'
      ? g.op('GlobalAveragePool', '/classifier/classifier.3/GlobalAveragePool', [x])
      : g.op('AveragePool', '/classifier/classifier.3/AveragePool', [x], {
          ceil_mode: 0,
          kernel_shape: [size, size],
          pads: [0, 0, 0, 0],
          strides: [size, size],
        });
  g.op('Flatten', '/Flatten', [x], { axis: 1 }, 'output');

  return g.finish({
    kind: 'squeezenet',
    name: opts.name ?? `squeezenet1_1_r${R}_c${C}_s${opts.seed}`,
    description: `SqueezeNet 1.1 (${R}x${R}, ${C} classes): fire modules with Concat, MaxPool ceil_mode=1, ${headPool === 'global' ? 'GlobalAveragePool' : `AveragePool ${size}x${size}`}`,
    seed: opts.seed,
    inputs: [{ name: 'input', dtype: 'f32', shape: [n, 3, R, R] }],
    outputs: [{ name: 'output', dtype: 'f32', shape: [n, C] }],
  });
}
