import { fail } from '../errors.js';
import { type AttrReader, type InferArg, defineOp, requireInput } from '../op.js';
import { type Dim, normalizeAxis, numel, shapeToString } from '../shape.js';
import { type Tensor, toNumbers } from '../tensor.js';
import { f32Of, requireFloat, tensorFromF32 } from './la-kernels.js';

// Resize (opset 11+ input form: X, roi, scales, sizes) in nearest and (multi)linear modes. Both are
// separable, so evaluation resizes one axis at a time; coordinates are computed in float32 like
// onnxruntime. Known gap: with inexact scales (0.6, 1.3) a coordinate that is a .5 tie in real
// arithmetic can round the other way than onnxruntime under round_prefer_* modes.

export type ResizeMode = 'nearest' | 'linear';
export type CoordinateMode = 'half_pixel' | 'half_pixel_symmetric' | 'asymmetric' | 'align_corners' | 'pytorch_half_pixel' | 'tf_half_pixel_for_nn';
export type NearestMode = 'round_prefer_floor' | 'round_prefer_ceil' | 'floor' | 'ceil';
export type AspectPolicy = 'stretch' | 'not_larger' | 'not_smaller';

export interface ResizeAttrs {
  readonly mode: ResizeMode;
  readonly coordinateTransformationMode: CoordinateMode;
  readonly nearestMode: NearestMode;
  readonly axes: readonly number[] | null; // opset 18: scales/sizes cover only these axes
  readonly keepAspectRatioPolicy: AspectPolicy;
}

function oneOf<T extends string>(r: AttrReader, name: string, dflt: T, allowed: readonly T[]): T {
  const v = r.string(name, dflt);
  if (!(allowed as readonly string[]).includes(v)) r.unsupported(name, `'${v}' (implemented: ${allowed.join(', ')})`);
  return v as T;
}

function readResizeAttrs(r: AttrReader): ResizeAttrs {
  if (r.int('antialias', 0) !== 0) r.unsupported('antialias', '1 (only antialias=0 is implemented)');
  return {
    mode: oneOf<ResizeMode>(r, 'mode', 'nearest', ['nearest', 'linear']),
    coordinateTransformationMode: oneOf<CoordinateMode>(r, 'coordinate_transformation_mode', 'half_pixel', [
      'half_pixel',
      'half_pixel_symmetric',
      'asymmetric',
      'align_corners',
      'pytorch_half_pixel',
      'tf_half_pixel_for_nn',
    ]),
    nearestMode: oneOf<NearestMode>(r, 'nearest_mode', 'round_prefer_floor', ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil']),
    axes: r.has('axes') ? [...r.ints('axes')] : null,
    keepAspectRatioPolicy: oneOf<AspectPolicy>(r, 'keep_aspect_ratio_policy', 'stretch', ['stretch', 'not_larger', 'not_smaller']),
  };
}

export interface ResizePlan {
  readonly out: Dim[];
  readonly scales: number[]; // per axis of X, used by the coordinate transform
}

// Output shape and per-axis scales from either scales or sizes (exactly one must be given).
export function resizePlan(attrs: ResizeAttrs, x: readonly Dim[], scales: readonly number[] | null, sizes: readonly Dim[] | null, where: string): ResizePlan {
  const rank = x.length;
  const axes = attrs.axes === null ? x.map((_, i) => i) : attrs.axes.map((a) => normalizeAxis(a, rank, where));
  const out: Dim[] = [...x];
  const sc = new Array<number>(rank).fill(1);
  if ((scales === null) === (sizes === null)) fail('MODEL_INVALID', `${where}: exactly one of inputs scales and sizes must be given`);
  const given = (scales ?? sizes)!;
  if (given.length !== axes.length) fail('SHAPE', `${where}: ${scales ? 'scales' : 'sizes'} has ${given.length} values; expected ${axes.length}`);
  if (scales) {
    axes.forEach((a, i) => {
      const s = scales[i]!;
      if (!(s > 0)) fail('MODEL_INVALID', `${where}: scale ${s} for axis ${a} must be > 0`);
      const d = x[a]!;
      if (typeof d === 'number')
        out[a] = Math.floor(Math.fround(d * Math.fround(s))); // float32 product, like onnxruntime
      else if (s !== 1) fail('UNSUPPORTED_FEATURE', `${where}: scale ${s} on symbolic dim '${d}' is not supported`);
      sc[a] = s;
    });
    return { out, scales: sc };
  }
  const sz = sizes!;
  if (attrs.keepAspectRatioPolicy !== 'stretch') {
    let scale = attrs.keepAspectRatioPolicy === 'not_larger' ? Infinity : 0;
    axes.forEach((a, i) => {
      const [d, s] = [x[a]!, sz[i]!];
      if (typeof d !== 'number' || typeof s !== 'number') fail('UNSUPPORTED_FEATURE', `${where}: keep_aspect_ratio_policy needs static sizes and input dims`);
      scale = attrs.keepAspectRatioPolicy === 'not_larger' ? Math.min(scale, s / d) : Math.max(scale, s / d);
    });
    axes.forEach((a) => {
      out[a] = Math.round(scale * (x[a] as number));
      sc[a] = scale;
    });
    return { out, scales: sc };
  }
  axes.forEach((a, i) => {
    const [d, s] = [x[a]!, sz[i]!];
    out[a] = s;
    if (typeof d === 'number' && typeof s === 'number') sc[a] = Math.fround(s / d);
    else if (d !== s) fail('UNSUPPORTED_FEATURE', `${where}: resizing symbolic dim '${d}' to ${s} is not supported`);
  });
  return { out, scales: sc };
}

// An empty scales/sizes tensor (opset 11-12 placeholders) counts as absent.
function present(a: InferArg | null | undefined): a is InferArg {
  return !!a && !(a.type.shape.length === 1 && a.type.shape[0] === 0);
}

function infer(attrs: ResizeAttrs, inputs: ReadonlyArray<InferArg | null>, where: string) {
  const x = requireInput(inputs, 0, where, 'input X').type;
  requireFloat(x, where, 'input X');
  let scales: number[] | null = null;
  let sizes: readonly Dim[] | null = null;
  const sa = inputs[2];
  if (present(sa)) {
    if (!sa.value) fail('UNSUPPORTED_FEATURE', `${where}: input scales must be a constant (its values decide the output shape)`);
    scales = Array.from(toNumbers(sa.value));
  }
  const za = inputs[3];
  if (present(za)) {
    sizes = za.dims ?? (za.value ? Array.from(toNumbers(za.value)) : null);
    if (sizes === null) fail('UNSUPPORTED_FEATURE', `${where}: input sizes must have known contents (constant or computed from shapes)`);
  }
  return [{ type: { dtype: x.dtype, shape: resizePlan(attrs, x.shape, scales, sizes, where).out } }];
}

function sourceCoordinate(mode: CoordinateMode, o: number, scale: number, inSize: number, outSize: number): number {
  const f = Math.fround;
  switch (mode) {
    case 'half_pixel':
      return f(f(f(o + 0.5) / scale) - 0.5);
    case 'half_pixel_symmetric': {
      const adjustment = f(outSize / f(scale * inSize));
      const center = f(inSize / 2);
      const offset = f(center * f(1 - adjustment));
      return f(offset + f(f(f(o + 0.5) / scale) - 0.5));
    }
    case 'asymmetric':
      return f(o / scale);
    case 'align_corners':
      return outSize === 1 ? 0 : f(f(o * (inSize - 1)) / (outSize - 1));
    case 'pytorch_half_pixel':
      return outSize > 1 ? f(f(f(o + 0.5) / scale) - 0.5) : 0;
    case 'tf_half_pixel_for_nn':
      return f(f(o + 0.5) / scale);
    default: {
      const never: never = mode;
      throw new Error(`unknown coordinate mode ${String(never)}`);
    }
  }
}

function roundNearest(mode: NearestMode, v: number): number {
  switch (mode) {
    case 'round_prefer_floor':
      return v === Math.trunc(v) + 0.5 ? Math.trunc(v) : Math.sign(v) * Math.round(Math.abs(v));
    case 'round_prefer_ceil':
      return Math.sign(v) * Math.round(Math.abs(v)); // C round(): halves away from zero
    case 'floor':
      return Math.floor(v);
    case 'ceil':
      return Math.ceil(v);
    default: {
      const never: never = mode;
      throw new Error(`unknown nearest mode ${String(never)}`);
    }
  }
}

// Resizes `src` (shape dims) along one axis: each output index reads lo/hi with weights (1-w, w).
function resizeAxis(src: Float32Array, dims: number[], axis: number, lo: Int32Array, hi: Int32Array, wt: Float32Array): Float32Array {
  const outer = numel(dims.slice(0, axis));
  const inner = numel(dims.slice(axis + 1));
  const inA = dims[axis]!;
  const outA = lo.length;
  const dst = new Float32Array(outer * outA * inner);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < outA; j++) {
      const a = (o * inA + lo[j]!) * inner;
      const b = (o * inA + hi[j]!) * inner;
      const w = wt[j]!;
      const d = (o * outA + j) * inner;
      if (w === 0) dst.set(src.subarray(a, a + inner), d);
      else for (let t = 0; t < inner; t++) dst[d + t] = src[a + t]! * (1 - w) + src[b + t]! * w;
    }
  }
  dims[axis] = outA;
  return dst;
}

function evaluate(attrs: ResizeAttrs, inputs: ReadonlyArray<Tensor | null>, where: string): Tensor[] {
  const X = requireInput(inputs, 0, where, 'input X');
  const s = inputs[2];
  const z = inputs[3];
  const scales = s && s.data.length > 0 ? Array.from(toNumbers(s)) : null;
  const sizes = z && z.data.length > 0 ? Array.from(toNumbers(z)) : null;
  const plan = resizePlan(attrs, X.shape, scales, sizes, where);
  const outShape = plan.out as number[];
  const dims = [...X.shape];
  let data = f32Of(X);
  const sameShape = dims.every((d, i) => d === outShape[i]);
  for (let axis = 0; axis < dims.length; axis++) {
    const inSize = dims[axis]!;
    const outSize = outShape[axis]!;
    // onnxruntime copies when no size changes and leaves axes of scale 1 alone, even where a
    // coordinate mode would shift them (tf_half_pixel_for_nn with ceil rounding).
    if (sameShape || (inSize === outSize && plan.scales[axis] === 1)) continue;
    const lo = new Int32Array(outSize);
    const hi = new Int32Array(outSize);
    const wt = new Float32Array(outSize);
    let identity = inSize === outSize;
    for (let j = 0; j < outSize; j++) {
      const c = sourceCoordinate(attrs.coordinateTransformationMode, j, plan.scales[axis]!, inSize, outSize);
      if (attrs.mode === 'nearest') {
        lo[j] = Math.max(0, Math.min(inSize - 1, roundNearest(attrs.nearestMode, c)));
        hi[j] = lo[j]!;
      } else {
        const cc = Math.max(0, Math.min(inSize - 1, c));
        lo[j] = Math.min(Math.trunc(cc), inSize - 1);
        hi[j] = Math.min(lo[j]! + 1, inSize - 1);
        wt[j] = hi[j] === lo[j] ? 0 : cc - lo[j]!;
      }
      if (lo[j] !== j || wt[j] !== 0) identity = false;
    }
    if (!identity) data = resizeAxis(data, dims, axis, lo, hi, wt);
  }
  if (dims.some((d, i) => d !== outShape[i])) fail('EVAL', `${where}: internal resize produced ${shapeToString(dims)}, expected ${shapeToString(outShape)}`);
  return [tensorFromF32(X.dtype, outShape, data === X.data ? new Float32Array(data) : data)];
}

export const resizeOps = {
  Resize: defineOp<ResizeAttrs>({
    name: 'Resize',
    inputs: [1, 4],
    outputs: [1, 1],
    attrs: readResizeAttrs,
    infer,
    evaluate,
  }),
} as const;
