import { fail } from '../../ir/errors.js';
import { type CommonOptions, type ZooModel, ZooGraph, batchDim, requirePositiveInt } from './graph.js';
import { batchNorm, conv2d, linearGemm, relu, scope } from './layers.js';
import { gaussMoments, hardSigmoidFn, hardSwishFn, reluFn } from './moments.js';

export interface MobileNetOptions extends CommonOptions {
  readonly resolution?: number; // default 224
  readonly classes?: number; // default 1000
  readonly widthMult?: number; // torchvision width_mult; default 1.0
  // How squeeze-excitation pools: 'global' (default) GlobalAveragePool as torchvision exports it; 'mean'
  // ReduceMean over the spatial axes with keepdims, as timm's `x.mean((2, 3), keepdim=True)` exports.
  readonly sePool?: 'global' | 'mean';
}

type Act = 'RE' | 'HS';

// torchvision mobilenet_v3_small bneck table: kernel, expanded, out, squeeze-excite, activation, stride.
const SMALL: readonly (readonly [number, number, number, boolean, Act, number])[] = [
  [3, 16, 16, true, 'RE', 2],
  [3, 72, 24, false, 'RE', 2],
  [3, 88, 24, false, 'RE', 1],
  [5, 96, 40, true, 'HS', 2],
  [5, 240, 40, true, 'HS', 1],
  [5, 240, 40, true, 'HS', 1],
  [5, 120, 48, true, 'HS', 1],
  [5, 144, 48, true, 'HS', 1],
  [5, 288, 96, true, 'HS', 2],
  [5, 576, 96, true, 'HS', 1],
  [5, 576, 96, true, 'HS', 1],
];

// Every conv/Gemm weight has unit gain (std √(1/fanIn): E[y²] = E[x²]) and every BatchNorm's running
// variance is the E[x²] the generator tracks at that point, so each BN re-normalizes to ~1 whatever the
// HardSwish and squeeze-excitation gates did upstream. Residual branches end in a BN with gamma scaled by:
const RESIDUAL_GAIN = 0.5;

const ACT_FN: Record<Act, (z: number) => number> = { RE: reluFn, HS: hardSwishFn };

function makeDivisible(v: number): number {
  let n = Math.max(8, Math.floor((v + 4) / 8) * 8);
  if (n < 0.9 * v) n += 8;
  return n;
}

// MobileNetV3-Small as torchvision builds it and torch exports it at opset 17: Conv + BatchNormalization +
// HardSwish/Relu, depthwise convs (group = channels), squeeze-excitation (GlobalAveragePool → Conv → Relu →
// Conv → HardSigmoid(alpha=1/6) → Mul), residual Adds, GlobalAveragePool → Flatten → Gemm → HardSwish → Gemm.
export function mobilenet(opts: MobileNetOptions): ZooModel {
  const R = requirePositiveInt('mobilenet', 'resolution', opts.resolution ?? 224);
  const C = requirePositiveInt('mobilenet', 'classes', opts.classes ?? 1000);
  const wm = opts.widthMult ?? 1;
  if (!(wm > 0 && wm <= 4)) fail('USAGE', `model zoo: mobilenet option 'widthMult' must be in (0, 4], got ${wm}`);
  const ch = (c: number): number => makeDivisible(c * wm);
  const n = batchDim(opts);
  const g = new ZooGraph(opts.seed);

  let cin = ch(16);
  // ms: the mean square the generator expects of x (the input image is ~N(0, 1))
  let [x, ms] = convBnAct(g, 'features.0', g.input('input'), 1, 3, cin, 3, 2, 1, 'HS');
  SMALL.forEach(([k, e, o, se, act, s], i) => {
    const exp = ch(e);
    const out = ch(o);
    const path = `features.${i + 1}.block`;
    let y = x;
    let yms = ms;
    let j = 0;
    if (exp !== cin) [y, yms] = convBnAct(g, `${path}.${j++}`, y, yms, cin, exp, 1, 1, 0, act);
    [y, yms] = convBnAct(g, `${path}.${j++}`, y, yms, exp, exp, k, s, (k - 1) / 2, act, exp);
    if (se) [y, yms] = squeezeExcite(g, `${path}.${j++}`, y, yms, act, exp, makeDivisible(exp / 4), opts.sePool ?? 'global');
    const residual = s === 1 && cin === out;
    y = conv2d(g, `${path}.${j}.0`, y, { cin: exp, cout: out, k: 1, std: Math.sqrt(1 / exp) });
    const gain = residual ? RESIDUAL_GAIN : 1;
    y = batchNorm(g, `${path}.${j}.1`, y, out, gain, Math.sqrt(yms));
    x = residual ? g.op('Add', `${scope(`features.${i + 1}`)}/Add`, [y, x]) : y;
    ms = residual ? ms + gain * gain : 1;
    cin = out;
  });
  const lastConv = 6 * cin;
  [x, ms] = convBnAct(g, `features.${SMALL.length + 1}`, x, ms, cin, lastConv, 1, 1, 0, 'HS');
  x = g.op('GlobalAveragePool', '/avgpool/GlobalAveragePool', [x]);
  x = g.op('Flatten', '/Flatten', [x], { axis: 1 });
  const pooledMs = gaussMoments(hardSwishFn, 1).mean ** 2 + 0.1; // spatial means of BN-normalized HardSwish
  const lastChannel = makeDivisible(1024 * wm);
  x = linearGemm(g, 'classifier.0', x, lastConv, lastChannel, Math.sqrt(1 / (lastConv * pooledMs)));
  x = g.op('HardSwish', '/classifier/classifier.1/HardSwish', [x]);
  linearGemm(g, 'classifier.3', x, lastChannel, C, Math.sqrt(1 / (lastChannel * gaussMoments(hardSwishFn, 1).ms)), 'output');

  return g.finish({
    kind: 'mobilenet',
    name: opts.name ?? `mobilenet_v3_small_w${wm}_r${R}_c${C}_s${opts.seed}`,
    description: `MobileNetV3-Small (width ${wm}, ${R}x${R}, ${C} classes): depthwise convs, HardSwish, squeeze-excitation with HardSigmoid`,
    seed: opts.seed,
    inputs: [{ name: 'input', dtype: 'f32', shape: [n, 3, R, R] }],
    outputs: [{ name: 'output', dtype: 'f32', shape: [n, C] }],
  });
}

function activation(g: ZooGraph, path: string, x: string, act: Act): string {
  switch (act) {
    case 'RE':
      return relu(g, path, x);
    case 'HS':
      return g.op('HardSwish', `${scope(path)}/HardSwish`, [x]);
    default: {
      const never: never = act;
      return never;
    }
  }
}

// Conv2dNormActivation: <path>.0 Conv (no bias), <path>.1 BatchNorm, <path>.2 activation. Takes and
// returns the expected mean square of the activation.
function convBnAct(
  g: ZooGraph,
  path: string,
  x: string,
  xms: number,
  cin: number,
  cout: number,
  k: number,
  stride: number,
  pad: number,
  act: Act,
  group = 1,
): [string, number] {
  const fanIn = (cin / group) * k * k;
  let y = conv2d(g, `${path}.0`, x, { cin, cout, k, stride, pad, group, std: Math.sqrt(1 / fanIn) });
  y = batchNorm(g, `${path}.1`, y, cout, 1, Math.sqrt(xms));
  return [activation(g, `${path}.2`, y, act), gaussMoments(ACT_FN[act], 1).ms];
}

// torchvision SqueezeExcitation: GlobalAveragePool → fc1 (Conv 1x1) → Relu → fc2 → HardSigmoid(1/6, 0.5) → Mul.
function squeezeExcite(g: ZooGraph, path: string, x: string, xms: number, act: Act, c: number, squeeze: number, pool: 'global' | 'mean'): [string, number] {
  const s = scope(path);
  // x is a BN-normalized activation: its spatial means are about E[act(z)], z ~ N(0, 1), plus per-channel spread
  const pooledMs = gaussMoments(ACT_FN[act], 1).mean ** 2 + 0.1;
  let y =
    pool === 'global'
      ? g.op('GlobalAveragePool', `${s}/avgpool/GlobalAveragePool`, [x])
      : g.op('ReduceMean', `${s}/ReduceMean`, [x], { axes: [2, 3], keepdims: 1 });
  y = conv2d(g, `${path}.fc1`, y, { cin: c, cout: squeeze, k: 1, bias: true, std: Math.sqrt(2 / (c * pooledMs)) });
  y = relu(g, `${path}.activation`, y);
  // fc2 pre-activations ~N(0, 1.5²): gates spread over (0, 1) rather than all sitting at 0.5
  y = conv2d(g, `${path}.fc2`, y, { cin: squeeze, cout: c, k: 1, bias: true, std: 1.5 * Math.sqrt(1 / squeeze) });
  y = g.op('HardSigmoid', `${s}/scale_activation/HardSigmoid`, [y], { alpha: { float: 1 / 6 }, beta: { float: 0.5 } });
  const gate = gaussMoments(hardSigmoidFn, 1.5);
  return [g.op('Mul', `${s}/Mul`, [y, x]), gate.ms * xms];
}
