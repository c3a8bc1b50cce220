import { fail } from '../errors.js';
import { defineOp, requireInput } from '../op.js';
import { type Dim, numel, shapeToString } from '../shape.js';
import type { Tensor, TensorType } from '../tensor.js';
import { addChannelBias, convKernel, convLikeInfer, f32Of, gemmNT, requireConvBias, requireConvOperands, tensorFromF32, transposeInto } from './la-kernels.js';
import { type Window, type WindowAttrs, listOfRank, readWindowAttrs, to3d, window3 } from './window.js';

export interface ConvTransposeAttrs extends WindowAttrs {
  readonly group: number;
  readonly outputPadding: readonly number[] | null;
  readonly outputShape: readonly number[] | null; // spatial sizes; when set, pads are derived from it
}

// Padding split of the ONNX spec (onnxruntime agrees): odd totals put the extra element at the tail
// for SAME_UPPER and at the head otherwise (NOTSET with output_shape, SAME_LOWER).
function splitPads(total: number, attrs: ConvTransposeAttrs): [number, number] {
  const half = Math.floor(total / 2);
  return attrs.autoPad === 'SAME_UPPER' ? [half, total - half] : [total - half, half];
}

export function convTransposeGeometry(
  attrs: ConvTransposeAttrs,
  x: TensorType,
  w: TensorType,
  b: TensorType | null,
  where: string,
): { window: Window; out: Dim[] } {
  const rank = x.shape.length - 2;
  const g = attrs.group;
  requireConvOperands(x, w, g, where);
  const [c, mg] = [x.shape[1]!, w.shape[1]!];
  if (typeof c === 'number' && typeof w.shape[0] === 'number' && c !== w.shape[0]) {
    fail('SHAPE', `${where}: X has ${c} channels but W ${shapeToString(w.shape)} expects ${w.shape[0]}`);
  }
  const m: Dim = typeof mg === 'number' ? mg * g : mg;
  requireConvBias(b, m, where);
  const kernel = convKernel(attrs.kernelShape, w.shape, where);
  if (kernel.length !== rank) fail('MODEL_INVALID', `${where}: kernel_shape has ${kernel.length} values; expected ${rank}`);
  const strides = listOfRank(attrs.strides, rank, 1, 'strides', where);
  const dilations = listOfRank(attrs.dilations, rank, 1, 'dilations', where);
  const outPad = listOfRank(attrs.outputPadding, rank, 0, 'output_padding', where);
  const pads = attrs.pads === null || attrs.autoPad !== 'NOTSET' ? new Array<number>(2 * rank).fill(0) : [...attrs.pads];
  if (pads.length !== 2 * rank) fail('MODEL_INVALID', `${where}: attribute pads has ${pads.length} values; expected ${2 * rank}`);
  let outShape = attrs.outputShape;
  if (outShape !== null && outShape.length === rank + 2) outShape = outShape.slice(2);
  if (outShape !== null && outShape.length !== rank) fail('MODEL_INVALID', `${where}: output_shape has ${outShape.length} values; expected ${rank}`);
  const padsBegin: number[] = [];
  const padsEnd: number[] = [];
  const outSpatial: number[] = [];
  for (let i = 0; i < rank; i++) {
    const xi = x.shape[i + 2]!;
    if (typeof xi !== 'number') fail('UNSUPPORTED_FEATURE', `${where}: symbolic spatial dim '${xi}' is not supported`);
    const full = strides[i]! * (xi - 1) + outPad[i]! + (kernel[i]! - 1) * dilations[i]! + 1;
    let out: number;
    let pb: number;
    let pe: number;
    if (outShape !== null || attrs.autoPad === 'SAME_UPPER' || attrs.autoPad === 'SAME_LOWER') {
      out = outShape !== null ? outShape[i]! : xi * strides[i]!;
      [pb, pe] = splitPads(Math.max(0, full - out), attrs);
    } else {
      [pb, pe] = [pads[i]!, pads[i + rank]!];
      out = full - pb - pe;
    }
    if (out < 1) fail('SHAPE', `${where}: output spatial dim ${i} would be ${out}`);
    padsBegin.push(pb);
    padsEnd.push(pe);
    outSpatial.push(out);
  }
  return { window: { kernel, strides, dilations, padsBegin, padsEnd, outSpatial }, out: [x.shape[0]!, m, ...outSpatial] };
}

// Per image and group: cols[(m,kd,kh,kw), p] = sum_c W[c, m, kd,kh,kw] * x[c, p] as one GEMM, then
// each column is scattered (added) into the output window it came from.
function evaluate(attrs: ConvTransposeAttrs, inputs: ReadonlyArray<Tensor | null>, where: string): Tensor[] {
  const X = requireInput(inputs, 0, where, 'input X');
  const Wt = requireInput(inputs, 1, where, 'input W');
  const B = inputs[2] ?? null;
  const geo = convTransposeGeometry(attrs, X, Wt, B, where);
  const outShape = geo.out as number[];
  const [n, c] = [X.shape[0]!, X.shape[1]!];
  const g = attrs.group;
  const cg = c / g;
  const mg = Wt.shape[1]!;
  const m = mg * g;
  const w3 = window3(geo.window);
  const [KD, KH, KW] = w3.k;
  const [sd, sh, sw] = w3.s;
  const [dd, dh, dw] = w3.d;
  const [pd, ph, pw] = w3.p;
  const [D, H, W] = to3d(X.shape.slice(2), 1);
  const [OD, OH, OW] = to3d(outShape.slice(2), 1);
  const kk = KD * KH * KW;
  const pIn = D * H * W;
  const pOut = OD * OH * OW;
  const x = f32Of(X);
  const w = f32Of(Wt);
  // W[g] is [cg, mg*kk]; its transpose has rows (m, kd, kh, kw) contiguous in c.
  const wT = new Float32Array(g * mg * kk * cg);
  for (let gi = 0; gi < g; gi++) transposeInto(w, gi * cg * mg * kk, cg, mg * kk, wT, gi * mg * kk * cg);
  const xT = new Float32Array(pIn * cg);
  const cols = new Float32Array(mg * kk * pIn);
  const out = new Float32Array(numel(outShape));
  for (let b = 0; b < n; b++) {
    for (let gi = 0; gi < g; gi++) {
      transposeInto(x, (b * c + gi * cg) * pIn, cg, pIn, xT, 0);
      gemmNT(mg * kk, pIn, cg, wT, gi * mg * kk * cg, xT, 0, cols, 0, pIn);
      for (let mi = 0; mi < mg; mi++) {
        const oBase = (b * m + gi * mg + mi) * pOut;
        for (let kd = 0; kd < KD; kd++) {
          for (let kh = 0; kh < KH; kh++) {
            for (let kw = 0; kw < KW; kw++) {
              let ci = (((mi * KD + kd) * KH + kh) * KW + kw) * pIn;
              for (let id = 0; id < D; id++) {
                const od = id * sd - pd + kd * dd;
                if (od < 0 || od >= OD) {
                  ci += H * W;
                  continue;
                }
                for (let ih = 0; ih < H; ih++) {
                  const oh = ih * sh - ph + kh * dh;
                  if (oh < 0 || oh >= OH) {
                    ci += W;
                    continue;
                  }
                  const row = oBase + (od * OH + oh) * OW;
                  for (let iw = 0; iw < W; iw++, ci++) {
                    const ow = iw * sw - pw + kw * dw;
                    if (ow >= 0 && ow < OW) out[row + ow] = out[row + ow]! + cols[ci]!;
                  }
                }
              }
            }
          }
        }
      }
    }
  }
  if (B) addChannelBias(out, f32Of(B), n, m, pOut);
  return [tensorFromF32(X.dtype, outShape, out)];
}

export const convTransposeOps = {
  ConvTranspose: defineOp<ConvTransposeAttrs>({
    name: 'ConvTranspose',
    inputs: [2, 3],
    outputs: [1, 1],
    attrs: (r) => ({
      ...readWindowAttrs(r),
      group: r.int('group', 1),
      outputPadding: r.has('output_padding') ? [...r.ints('output_padding')] : null,
      outputShape: r.has('output_shape') ? [...r.ints('output_shape')] : null,
    }),
    infer: convLikeInfer(convTransposeGeometry),
    evaluate,
  }),
} as const;
