import { fail } from '../errors.js';
import { type AttrReader, type InferArg, defineOp, noAttrs, requireInput } from '../op.js';
import { type Dim, numel, shapeToString } from '../shape.js';
import type { Tensor, TensorType } from '../tensor.js';
import { makeTensor } from '../tensor.js';
import { f32Of, requireFloat, tensorFromF32 } from './la-kernels.js';
import { resizeOps } from './resize.js';
import { type Window, type WindowAttrs, readWindowAttrs, resolveWindow, to3d, window3 } from './window.js';

export interface PoolAttrs extends WindowAttrs {
  readonly kernelShape: readonly number[]; // required for pools
  readonly ceilMode: boolean;
}
export interface MaxPoolAttrs extends PoolAttrs {
  readonly storageOrder: 0 | 1; // layout of the optional Indices output
}
export interface AveragePoolAttrs extends PoolAttrs {
  readonly countIncludePad: boolean;
}

function readPoolAttrs(r: AttrReader): PoolAttrs {
  const w = readWindowAttrs(r);
  return { ...w, kernelShape: w.kernelShape ?? r.ints('kernel_shape'), ceilMode: r.int('ceil_mode', 0) !== 0 };
}

function spatialInput(x: TensorType, where: string): void {
  requireFloat(x, where, 'input X');
  if (x.shape.length < 3 || x.shape.length > 5) fail('UNSUPPORTED_FEATURE', `${where}: input X ${shapeToString(x.shape)} must have 1 to 3 spatial dims`);
}

export function poolWindow(attrs: PoolAttrs, x: TensorType, where: string): Window {
  spatialInput(x, where);
  return resolveWindow(attrs, x.shape.slice(2), attrs.kernelShape, attrs.ceilMode, where);
}

function poolInfer(attrs: PoolAttrs, inputs: ReadonlyArray<InferArg | null>, where: string, nOutputs: number) {
  const x = requireInput(inputs, 0, where, 'input X').type;
  const w = poolWindow(attrs, x, where);
  const shape: Dim[] = [x.shape[0]!, x.shape[1]!, ...w.outSpatial];
  const outs = [{ type: { dtype: x.dtype, shape } }];
  if (nOutputs > 1) outs.push({ type: { dtype: 'i64', shape } });
  return outs;
}

// One loop nest for both pools: max (with flat argmax indices) or average over the taps inside the input.
function poolEvaluate(kind: 'max' | 'avg', attrs: PoolAttrs, inputs: ReadonlyArray<Tensor | null>, where: string, nOutputs: number): Tensor[] {
  const X = requireInput(inputs, 0, where, 'input X');
  const win = poolWindow(attrs, X, where);
  const outSpatial = win.outSpatial as number[];
  const outShape = [X.shape[0]!, X.shape[1]!, ...outSpatial];
  const storageOrder = kind === 'max' ? (attrs as MaxPoolAttrs).storageOrder : 0;
  if (nOutputs > 1 && storageOrder === 1 && outSpatial.length !== 2) {
    fail('UNSUPPORTED_FEATURE', `${where}: storage_order 1 Indices are implemented for 2-D pooling only`);
  }
  const includePad = kind === 'avg' && (attrs as AveragePoolAttrs).countIncludePad;
  const { k, s, d, p } = window3(win);
  const [D, H, W] = to3d(X.shape.slice(2), 1);
  const [OD, OH, OW] = to3d(outSpatial, 1);
  const [ed, eh, ew] = to3d(win.padsEnd, 0);
  const planes = X.shape[0]! * X.shape[1]!;
  const x = f32Of(X);
  const out = new Float32Array(numel(outShape));
  const idx = nOutputs > 1 ? new BigInt64Array(out.length) : null;
  let o = 0;
  for (let pl = 0; pl < planes; pl++) {
    const base = pl * D * H * W;
    for (let od = 0; od < OD; od++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++, o++) {
          let best = -Infinity;
          let bestAt = -1;
          let sum = 0;
          let count = 0;
          let padCount = 0; // taps inside input + explicit padding (count_include_pad divisor)
          for (let kd = 0; kd < k[0]; kd++) {
            const id = od * s[0] - p[0] + kd * d[0];
            const dIn = id >= 0 && id < D;
            const dPad = id >= -p[0] && id < D + ed;
            for (let kh = 0; kh < k[1]; kh++) {
              const ih = oh * s[1] - p[1] + kh * d[1];
              const hIn = dIn && ih >= 0 && ih < H;
              const hPad = dPad && ih >= -p[1] && ih < H + eh;
              for (let kw = 0; kw < k[2]; kw++) {
                const iw = ow * s[2] - p[2] + kw * d[2];
                if (hPad && iw >= -p[2] && iw < W + ew) padCount++;
                if (!hIn || iw < 0 || iw >= W) continue;
                const at = (id * H + ih) * W + iw;
                const v = x[base + at]!;
                if (v > best || bestAt < 0) {
                  best = v;
                  bestAt = storageOrder === 1 ? ih + iw * H : at;
                }
                sum += v;
                count++;
              }
            }
          }
          if (kind === 'max') {
            out[o] = best;
            if (idx) idx[o] = BigInt(base + bestAt);
          } else {
            out[o] = sum / (includePad ? padCount : count);
          }
        }
      }
    }
  }
  const y = tensorFromF32(X.dtype, outShape, out);
  return idx ? [y, makeTensor('i64', outShape, idx)] : [y];
}

function globalInfer(_a: unknown, inputs: ReadonlyArray<InferArg | null>, where: string) {
  const x = requireInput(inputs, 0, where, 'input X').type;
  spatialInput(x, where);
  return [{ type: { dtype: x.dtype, shape: [x.shape[0]!, x.shape[1]!, ...x.shape.slice(2).map(() => 1)] } }];
}

function globalEvaluate(kind: 'max' | 'avg', inputs: ReadonlyArray<Tensor | null>, where: string): Tensor[] {
  const X = requireInput(inputs, 0, where, 'input X');
  spatialInput(X, where);
  const planes = X.shape[0]! * X.shape[1]!;
  const size = numel(X.shape.slice(2));
  const x = f32Of(X);
  const out = new Float32Array(planes);
  for (let pl = 0; pl < planes; pl++) {
    let acc = kind === 'max' ? -Infinity : 0;
    for (let i = pl * size; i < (pl + 1) * size; i++) acc = kind === 'max' ? Math.max(acc, x[i]!) : acc + x[i]!;
    out[pl] = kind === 'max' ? acc : acc / size;
  }
  return [tensorFromF32(X.dtype, [X.shape[0]!, X.shape[1]!, ...X.shape.slice(2).map(() => 1)], out)];
}

function globalPoolOp(name: string, kind: 'max' | 'avg') {
  return defineOp({
    name,
    inputs: [1, 1],
    outputs: [1, 1],
    attrs: noAttrs,
    infer: globalInfer,
    evaluate: (_a, i, w) => globalEvaluate(kind, i, w),
  });
}

export const poolOps = {
  MaxPool: defineOp<MaxPoolAttrs>({
    name: 'MaxPool',
    inputs: [1, 1],
    outputs: [1, 2],
    attrs: (r) => {
      const storageOrder = r.int('storage_order', 0);
      if (storageOrder !== 0 && storageOrder !== 1) r.unsupported('storage_order', `${storageOrder} (expected 0 or 1)`);
      return { ...readPoolAttrs(r), storageOrder: storageOrder as 0 | 1 };
    },
    infer: poolInfer,
    evaluate: (a, i, w, n) => poolEvaluate('max', a, i, w, n),
  }),
  AveragePool: defineOp<AveragePoolAttrs>({
    name: 'AveragePool',
    inputs: [1, 1],
    outputs: [1, 1],
    attrs: (r) => ({ ...readPoolAttrs(r), countIncludePad: r.int('count_include_pad', 0) !== 0 }),
    infer: (a, i, w) => poolInfer(a, i, w, 1),
    evaluate: (a, i, w) => poolEvaluate('avg', a, i, w, 1),
  }),
  GlobalAveragePool: globalPoolOp('GlobalAveragePool', 'avg'),
  GlobalMaxPool: globalPoolOp('GlobalMaxPool', 'max'),
  ...resizeOps,
} as const;
