import { fail } from './errors.js';

// Element types the IR knows. f16/bf16 are stored as raw 16-bit patterns; bool as 0/1 bytes.
export type DType = 'f32' | 'f64' | 'f16' | 'bf16' | 'i64' | 'i32' | 'i8' | 'u8' | 'bool';

export const DTYPES: readonly DType[] = ['f32', 'f64', 'f16', 'bf16', 'i64', 'i32', 'i8', 'u8', 'bool'];

export type TypedArrayOf<D extends DType> = D extends 'f32'
  ? Float32Array
  : D extends 'f64'
    ? Float64Array
    : D extends 'f16' | 'bf16'
      ? Uint16Array
      : D extends 'i64'
        ? BigInt64Array
        : D extends 'i32'
          ? Int32Array
          : D extends 'i8'
            ? Int8Array
            : Uint8Array;

export type AnyTypedArray = Float32Array | Float64Array | Uint16Array | BigInt64Array | Int32Array | Int8Array | Uint8Array;

export function byteSize(d: DType): number {
  switch (d) {
    case 'f64':
    case 'i64':
      return 8;
    case 'f32':
    case 'i32':
      return 4;
    case 'f16':
    case 'bf16':
      return 2;
    case 'i8':
    case 'u8':
    case 'bool':
      return 1;
  }
}

export function isFloat(d: DType): boolean {
  return d === 'f32' || d === 'f64' || d === 'f16' || d === 'bf16';
}

export function isInteger(d: DType): boolean {
  return d === 'i64' || d === 'i32' || d === 'i8' || d === 'u8';
}

export function allocArray(d: DType, n: number): AnyTypedArray {
  switch (d) {
    case 'f32':
      return new Float32Array(n);
    case 'f64':
      return new Float64Array(n);
    case 'f16':
    case 'bf16':
      return new Uint16Array(n);
    case 'i64':
      return new BigInt64Array(n);
    case 'i32':
      return new Int32Array(n);
    case 'i8':
      return new Int8Array(n);
    case 'u8':
    case 'bool':
      return new Uint8Array(n);
  }
}

// A typed array of `d` over `length` elements of `buffer` without copying (byteOffset aligned to the element).
export function viewArray(d: DType, buffer: ArrayBufferLike, byteOffset: number, length: number): AnyTypedArray {
  switch (d) {
    case 'f32':
      return new Float32Array(buffer, byteOffset, length);
    case 'f64':
      return new Float64Array(buffer, byteOffset, length);
    case 'f16':
    case 'bf16':
      return new Uint16Array(buffer, byteOffset, length);
    case 'i64':
      return new BigInt64Array(buffer, byteOffset, length);
    case 'i32':
      return new Int32Array(buffer, byteOffset, length);
    case 'i8':
      return new Int8Array(buffer, byteOffset, length);
    case 'u8':
    case 'bool':
      return new Uint8Array(buffer, byteOffset, length);
  }
}

// ONNX TensorProto.DataType numbering.
const ONNX_TO_DTYPE: Record<number, DType> = {
  1: 'f32',
  2: 'u8',
  3: 'i8',
  6: 'i32',
  7: 'i64',
  9: 'bool',
  10: 'f16',
  11: 'f64',
  16: 'bf16',
};
const ONNX_NAMES: Record<number, string> = {
  0: 'UNDEFINED',
  4: 'UINT16',
  5: 'INT16',
  8: 'STRING',
  12: 'UINT32',
  13: 'UINT64',
  14: 'COMPLEX64',
  15: 'COMPLEX128',
  17: 'FLOAT8E4M3FN',
  18: 'FLOAT8E4M3FNUZ',
  19: 'FLOAT8E5M2',
  20: 'FLOAT8E5M2FNUZ',
  21: 'UINT4',
  22: 'INT4',
  23: 'FLOAT4E2M1',
};

export function dtypeFromOnnx(code: number, where: string): DType {
  const d = ONNX_TO_DTYPE[code];
  if (d === undefined) {
    fail('UNSUPPORTED_FEATURE', `${where}: ONNX element type ${ONNX_NAMES[code] ?? code} is not supported (supported: ${DTYPES.join(', ')})`);
  }
  return d;
}

export function dtypeToOnnx(d: DType): number {
  for (const [k, v] of Object.entries(ONNX_TO_DTYPE)) if (v === d) return Number(k);
  throw new Error(`unreachable dtype ${d}`);
}

// IEEE half <-> float conversions (round to nearest even), used for f16 storage.
const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

export function f16ToF32(h: number): number {
  const s = (h & 0x8000) >> 15;
  const e = (h & 0x7c00) >> 10;
  const f = h & 0x03ff;
  let v: number;
  if (e === 0) v = f * 2 ** -24;
  else if (e === 31) v = f ? NaN : Infinity;
  else v = (1 + f / 1024) * 2 ** (e - 15);
  return s ? -v : v;
}

export function f32ToF16(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

export function bf16ToF32(h: number): number {
  u32buf[0] = h << 16;
  return f32buf[0]!;
}

export function f32ToBf16(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0]!;
  if ((u & 0x7f800000) === 0x7f800000 && u & 0x7fffff) return (u >>> 16) | 0x40;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}
