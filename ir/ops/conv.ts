import { fail } from '../errors.js';
import { defineOp, requireInput } from '../op.js';
import { type Dim, numel, shapeToString } from '../shape.js';
import type { Tensor, TensorType } from '../tensor.js';
import type { Activation } from './activation.js';
import { convTransposeOps } from './conv-transpose.js';
import {
  addChannelBias,
  applyActivationInPlace,
  convKernel,
  convLikeInfer,
  f32Of,
  gemmNT,
  requireConvBias,
  requireConvOperands,
  tensorFromF32,
} from './la-kernels.js';
import { type Window, type Window3, type WindowAttrs, readWindowAttrs, resolveWindow, to3d, window3 } from './window.js';

export interface ConvAttrs extends WindowAttrs {
  readonly group: number;
  readonly activation: Activation | null; // epilogue after the bias; set by the fusion pass, null from import
}

export interface ConvGeometry {
  readonly window: Window;
  readonly batch: Dim;
  readonly inChannels: Dim;
  readonly outChannels: Dim;
  readonly out: Dim[];
}

// Shape rule shared by infer and evaluate (and later planning): X [N,C,...], W [M,C/group,k...], B [M].
export function convGeometry(attrs: ConvAttrs, x: TensorType, w: TensorType, b: TensorType | null, where: string): ConvGeometry {
  const g = attrs.group;
  requireConvOperands(x, w, g, where);
  const kernel = convKernel(attrs.kernelShape, w.shape, where);
  const [n, c] = [x.shape[0]!, x.shape[1]!];
  const [m, cg] = [w.shape[0]!, w.shape[1]!];
  if (typeof c === 'number' && typeof cg === 'number' && c !== cg * g) {
    fail('SHAPE', `${where}: X has ${c} channels but W ${shapeToString(w.shape)} with group ${g} expects ${cg * g}`);
  }
  if (typeof m === 'number' && m % g !== 0) fail('SHAPE', `${where}: ${m} output channels are not divisible by group ${g}`);
  requireConvBias(b, m, where);
  const window = resolveWindow(attrs, x.shape.slice(2), kernel, false, where);
  return { window, batch: n, inChannels: c, outChannels: m, out: [n, m, ...window.outSpatial] };
}

// colT[p * Kg + ((c*KD + kd)*KH + kh)*KW + kw] = x[c, od*sd - pd + kd*dd, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw] (0 in padding):
// one row per output pixel, laid out like a row of W, so the GEMM reads both along k.
function im2colT(
  x: Float32Array,
  xOff: number,
  cg: number,
  inDims: readonly [number, number, number],
  outDims: readonly [number, number, number],
  w: Window3,
  colT: Float32Array,
): void {
  const [D, H, W] = inDims;
  const [OD, OH, OW] = outDims;
  const [KD, KH, KW] = w.k;
  const [sd, sh, sw] = w.s;
  const [dd, dh, dw] = w.d;
  const [pd, ph, pw] = w.p;
  let idx = 0;
  for (let od = 0; od < OD; od++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const iw0 = ow * sw - pw;
        for (let c = 0; c < cg; c++) {
          const xc = xOff + c * D * H * W;
          for (let kd = 0; kd < KD; kd++) {
            const id = od * sd - pd + kd * dd;
            if (id < 0 || id >= D) {
              for (let t = 0; t < KH * KW; t++) colT[idx++] = 0;
              continue;
            }
            for (let kh = 0; kh < KH; kh++) {
              const ih = oh * sh - ph + kh * dh;
              if (ih < 0 || ih >= H) {
                for (let t = 0; t < KW; t++) colT[idx++] = 0;
                continue;
              }
              const row = xc + (id * H + ih) * W;
              for (let kw = 0; kw < KW; kw++) {
                const iw = iw0 + kw * dw;
                colT[idx++] = iw >= 0 && iw < W ? x[row + iw]! : 0;
              }
            }
          }
        }
      }
    }
  }
}

function convEvaluate(attrs: ConvAttrs, inputs: ReadonlyArray<Tensor | null>, where: string): Tensor[] {
  const X = requireInput(inputs, 0, where, 'input X');
  const Wt = requireInput(inputs, 1, where, 'input W');
  const B = inputs[2] ?? null;
  const geo = convGeometry(attrs, X, Wt, B, where);
  const outShape = geo.out as number[];
  const [n, c] = [X.shape[0]!, X.shape[1]!];
  const m = Wt.shape[0]!;
  const g = attrs.group;
  const cg = c / g;
  const mg = m / g;
  const inDims = to3d(X.shape.slice(2), 1);
  const outDims = to3d(outShape.slice(2), 1);
  const w3 = window3(geo.window);
  const kg = cg * w3.k[0] * w3.k[1] * w3.k[2];
  const pIn = inDims[0] * inDims[1] * inDims[2];
  const pOut = outDims[0] * outDims[1] * outDims[2];
  const x = f32Of(X);
  const w = f32Of(Wt);
  const out = new Float32Array(numel(outShape));
  const colT = new Float32Array(pOut * kg);
  for (let b = 0; b < n; b++) {
    for (let gi = 0; gi < g; gi++) {
      im2colT(x, (b * c + gi * cg) * pIn, cg, inDims, outDims, w3, colT);
      gemmNT(mg, pOut, kg, w, gi * mg * kg, colT, 0, out, (b * m + gi * mg) * pOut, pOut);
    }
  }
  if (B) addChannelBias(out, f32Of(B), n, m, pOut);
  applyActivationInPlace(attrs.activation, out);
  return [tensorFromF32(X.dtype, outShape, out)];
}

export const convOps = {
  Conv: defineOp<ConvAttrs>({
    name: 'Conv',
    inputs: [2, 3],
    outputs: [1, 1],
    attrs: (r) => ({ ...readWindowAttrs(r), group: r.int('group', 1), activation: null }),
    infer: convLikeInfer(convGeometry),
    evaluate: convEvaluate,
  }),
  ...convTransposeOps,
} as const;
