import { heStd, unitStd } from '../random.js';
import { type CommonOptions, type ZooModel, ZooGraph, batchDim, requirePositiveInt } from './graph.js';
import { batchNorm, conv2d, linearGemm, relu, scope } from './layers.js';

export interface ResNetOptions extends CommonOptions {
  readonly width?: number; // channels of conv1 and stage 1 (stages are w, 2w, 4w, 8w); default 64
  readonly resolution?: number; // input height = width; default 224
  readonly classes?: number; // default 1000
}

// Residual branches end in a BN with gamma scaled by this, so each block adds ~(1 + 0.25) to E[x²]
// instead of doubling it: eight blocks stay within a few times the input scale.
const RESIDUAL_GAIN = 0.5;

// torchvision resnet18 as an eval-mode export without Conv+BN folding: every BatchNormalization is its own
// node. Input 'input' [N, 3, R, R], output 'output' [N, classes].
export function resnet18(opts: ResNetOptions): ZooModel {
  const w = requirePositiveInt('resnet18', 'width', opts.width ?? 64);
  const R = requirePositiveInt('resnet18', 'resolution', opts.resolution ?? 224);
  const C = requirePositiveInt('resnet18', 'classes', opts.classes ?? 1000);
  const n = batchDim(opts);
  const g = new ZooGraph(opts.seed);

  let x = conv2d(g, 'conv1', g.input('input'), { cin: 3, cout: w, k: 7, stride: 2, pad: 3, std: heStd(3 * 49) });
  x = relu(g, 'relu', batchNorm(g, 'bn1', x, w));
  x = g.op('MaxPool', '/maxpool/MaxPool', [x], { ceil_mode: 0, dilations: [1, 1], kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2] });

  let cin = w;
  for (let stage = 0; stage < 4; stage++) {
    const cout = w << stage;
    for (let b = 0; b < 2; b++) {
      const stride = stage > 0 && b === 0 ? 2 : 1;
      x = basicBlock(g, `layer${stage + 1}.${b}`, x, cin, cout, stride);
      cin = cout;
    }
  }

  x = g.op('GlobalAveragePool', '/avgpool/GlobalAveragePool', [x]);
  x = g.op('Flatten', '/Flatten', [x], { axis: 1 });
  linearGemm(g, 'fc', x, cin, C, unitStd(cin), 'output');

  const variant = w === 64 && R === 224 && C === 1000 ? '' : ` (width ${w}, ${R}x${R}, ${C} classes)`;
  return g.finish({
    kind: 'resnet18',
    name: opts.name ?? `resnet18_w${w}_r${R}_c${C}_s${opts.seed}`,
    description: `ResNet-18${variant}: Conv and BatchNormalization as separate nodes, 8 BasicBlocks, GlobalAveragePool, Gemm head`,
    seed: opts.seed,
    inputs: [{ name: 'input', dtype: 'f32', shape: [n, 3, R, R] }],
    outputs: [{ name: 'output', dtype: 'f32', shape: [n, C] }],
  });
}

function basicBlock(g: ZooGraph, path: string, x: string, cin: number, cout: number, stride: number): string {
  let y = conv2d(g, `${path}.conv1`, x, { cin, cout, k: 3, stride, pad: 1, std: heStd(cin * 9) });
  y = relu(g, `${path}.relu`, batchNorm(g, `${path}.bn1`, y, cout));
  y = conv2d(g, `${path}.conv2`, y, { cin: cout, cout, k: 3, pad: 1, std: unitStd(cout * 9) });
  y = batchNorm(g, `${path}.bn2`, y, cout, RESIDUAL_GAIN);
  let identity = x;
  if (stride !== 1 || cin !== cout) {
    identity = conv2d(g, `${path}.downsample.0`, x, { cin, cout, k: 1, stride, std: unitStd(cin) });
    identity = batchNorm(g, `${path}.downsample.1`, identity, cout);
  }
  const sum = g.op('Add', `${scope(path)}/Add`, [y, identity]);
  return relu(g, `${path}.relu_1`, sum);
}
