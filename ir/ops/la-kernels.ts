import type { DType } from '../dtype.js';
import { fail } from '../errors.js';
import { type InferArg, requireInput } from '../op.js';
import { type Dim, type Shape, shapeToString } from '../shape.js';
import type { TensorType } from '../tensor.js';
import { type Tensor, fromNumbers, makeTensor, toNumbers } from '../tensor.js';
import { type Activation, applyActivation } from './activation.js';

// Inner loops shared by the linear-algebra, convolution and recurrent ops. Everything computes on
// Float32Array storage with float64 accumulators (JS numbers); f64/f16/bf16 tensors are converted.

export const FLOAT_DTYPES: readonly DType[] = ['f32', 'f64', 'f16', 'bf16'];

export function requireFloat(t: TensorType, where: string, what: string): void {
  // Integer forms some ops allow in ONNX are not implemented: an explicit error, never a silent cast.
  if (!FLOAT_DTYPES.includes(t.dtype)) {
    fail('UNSUPPORTED_FEATURE', `${where}: ${what} has dtype ${t.dtype}; Loom implements this op for float types only (${FLOAT_DTYPES.join(', ')})`);
  }
}

export function requireSameDType(a: TensorType, b: TensorType, where: string, what: string): void {
  if (a.dtype !== b.dtype) fail('SHAPE', `${where}: ${what} has dtype ${b.dtype}; expected ${a.dtype} like input 0`);
}

// Conv and ConvTranspose: X [N,C,...] with 1 to 3 spatial dims, W of X's rank, group >= 1.
export function requireConvOperands(x: TensorType, w: TensorType, group: number, where: string): void {
  const rank = x.shape.length - 2;
  if (rank < 1 || rank > 3) fail('UNSUPPORTED_FEATURE', `${where}: input X ${shapeToString(x.shape)} must have 1 to 3 spatial dims`);
  if (w.shape.length !== x.shape.length) fail('SHAPE', `${where}: weight W ${shapeToString(w.shape)} must have the rank of X ${shapeToString(x.shape)}`);
  if (!(group >= 1)) fail('MODEL_INVALID', `${where}: attribute group ${group} must be >= 1`);
}

export function requireConvBias(b: TensorType | null, m: Dim, where: string): void {
  if (b && (b.shape.length !== 1 || (typeof m === 'number' && b.shape[0] !== m))) fail('SHAPE', `${where}: bias B ${shapeToString(b.shape)} must be [${m}]`);
}

// kernel_shape when given, else W's trailing dims, which must then be static.
export function convKernel(kernelShape: readonly number[] | null, w: Shape, where: string): number[] {
  if (kernelShape) return [...kernelShape];
  const k = w.slice(2);
  if (!k.every((d): d is number => typeof d === 'number')) fail('UNSUPPORTED_FEATURE', `${where}: weight shape ${shapeToString(w)} has symbolic kernel dims`);
  return k;
}

// The infer of Conv and ConvTranspose: float X, W and B of one dtype, output shape from the op's geometry.
export function convLikeInfer<A>(geometry: (attrs: A, x: TensorType, w: TensorType, b: TensorType | null, where: string) => { out: Dim[] }) {
  return (attrs: A, inputs: ReadonlyArray<InferArg | null>, where: string) => {
    const x = requireInput(inputs, 0, where, 'input X').type;
    const w = requireInput(inputs, 1, where, 'input W').type;
    requireFloat(x, where, 'input X');
    requireSameDType(x, w, where, 'input W');
    const b = inputs[2]?.type ?? null;
    if (b) requireSameDType(x, b, where, 'input B');
    return [{ type: { dtype: x.dtype, shape: geometry(attrs, x, w, b, where).out } }];
  };
}

// Float32 view of a tensor's values; f32 data is returned as is (callers only read it).
export function f32Of(t: Tensor): Float32Array {
  if (t.dtype === 'f32') return t.data as Float32Array;
  return Float32Array.from(toNumbers(t));
}

// Wraps computed values as a tensor of `dtype`; f32 results are adopted without a copy.
export function tensorFromF32(dtype: DType, shape: readonly number[], values: Float32Array): Tensor {
  if (dtype === 'f32') return makeTensor('f32', shape, values);
  return fromNumbers(dtype, shape, values);
}

export function applyActivationInPlace(act: Activation | null, v: Float32Array): void {
  if (act === null) return;
  if (act.kind === 'relu') {
    for (let i = 0; i < v.length; i++) if (v[i]! < 0) v[i] = 0;
    return;
  }
  for (let i = 0; i < v.length; i++) v[i] = applyActivation(act, v[i]!);
}

// out[b, o, p] += bias[o] for an [n, m, pixels] output.
export function addChannelBias(out: Float32Array, bias: Float32Array, n: number, m: number, pixels: number): void {
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < m; o++) {
      const base = (b * m + o) * pixels;
      const v = bias[o]!;
      for (let p = 0; p < pixels; p++) out[base + p] = out[base + p]! + v;
    }
  }
}

// Rows of A and rows of B are both contiguous in k, so every product is a dot of two contiguous runs.
// C[cOff + i*ldc + j] = sum_k A[aOff + i*K + k] * B[bOff + j*K + k], for i < M, j < N.
// A 4x4 register block reuses each loaded value four times; blocks of 64 rows of A stay in cache
// while all of B streams past them.
export function gemmNT(
  M: number,
  N: number,
  K: number,
  A: Float32Array,
  aOff: number,
  B: Float32Array,
  bOff: number,
  C: Float32Array,
  cOff: number,
  ldc: number,
): void {
  const IB = 64;
  const M4 = M - (M % 4);
  const N4 = N - (N % 4);
  for (let i0 = 0; i0 < M4; i0 += IB) {
    const i1 = Math.min(M4, i0 + IB);
    for (let j = 0; j < N4; j += 4) {
      const b0 = bOff + j * K;
      const b1 = b0 + K;
      const b2 = b1 + K;
      const b3 = b2 + K;
      for (let i = i0; i < i1; i += 4) {
        const a0 = aOff + i * K;
        const a1 = a0 + K;
        const a2 = a1 + K;
        const a3 = a2 + K;
        let c00 = 0,
          c01 = 0,
          c02 = 0,
          c03 = 0,
          c10 = 0,
          c11 = 0,
          c12 = 0,
          c13 = 0;
        let c20 = 0,
          c21 = 0,
          c22 = 0,
          c23 = 0,
          c30 = 0,
          c31 = 0,
          c32 = 0,
          c33 = 0;
        for (let k = 0; k < K; k++) {
          const x0 = A[a0 + k]!,
            x1 = A[a1 + k]!,
            x2 = A[a2 + k]!,
            x3 = A[a3 + k]!;
          const y0 = B[b0 + k]!,
            y1 = B[b1 + k]!,
            y2 = B[b2 + k]!,
            y3 = B[b3 + k]!;
          c00 += x0 * y0;
          c01 += x0 * y1;
          c02 += x0 * y2;
          c03 += x0 * y3;
          c10 += x1 * y0;
          c11 += x1 * y1;
          c12 += x1 * y2;
          c13 += x1 * y3;
          c20 += x2 * y0;
          c21 += x2 * y1;
          c22 += x2 * y2;
          c23 += x2 * y3;
          c30 += x3 * y0;
          c31 += x3 * y1;
          c32 += x3 * y2;
          c33 += x3 * y3;
        }
        let o = cOff + i * ldc + j;
        C[o] = c00;
        C[o + 1] = c01;
        C[o + 2] = c02;
        C[o + 3] = c03;
        o += ldc;
        C[o] = c10;
        C[o + 1] = c11;
        C[o + 2] = c12;
        C[o + 3] = c13;
        o += ldc;
        C[o] = c20;
        C[o + 1] = c21;
        C[o + 2] = c22;
        C[o + 3] = c23;
        o += ldc;
        C[o] = c30;
        C[o + 1] = c31;
        C[o + 2] = c32;
        C[o + 3] = c33;
      }
    }
  }
  // Edges: the last M % 4 rows (all columns) and the last N % 4 columns of the blocked rows.
  for (let i = 0; i < M; i++) {
    const jStart = i < M4 ? N4 : 0;
    const a = aOff + i * K;
    for (let j = jStart; j < N; j++) {
      const b = bOff + j * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += A[a + k]! * B[b + k]!;
      C[cOff + i * ldc + j] = s;
    }
  }
}

// dst[dOff + c*rows + r] = src[sOff + r*cols + c]: a rows x cols matrix into its transpose.
export function transposeInto(src: Float32Array, sOff: number, rows: number, cols: number, dst: Float32Array, dOff: number): void {
  const T = 32; // tiles keep both sides' cache lines warm
  for (let r0 = 0; r0 < rows; r0 += T) {
    const r1 = Math.min(rows, r0 + T);
    for (let c0 = 0; c0 < cols; c0 += T) {
      const c1 = Math.min(cols, c0 + T);
      for (let r = r0; r < r1; r++) {
        const s = sOff + r * cols;
        for (let c = c0; c < c1; c++) dst[dOff + c * rows + r] = src[s + c]!;
      }
    }
  }
}
