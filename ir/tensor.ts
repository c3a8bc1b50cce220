import { type AnyTypedArray, type DType, allocArray, bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './dtype.js';
import { fail } from './errors.js';
import { type Shape, numel, shapeToString } from './shape.js';

export interface TensorType {
  readonly dtype: DType;
  readonly shape: Shape;
}

// A concrete tensor: constants in the IR and values in the reference executor.
// `data` is owned by the tensor and never mutated after construction.
export interface Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: AnyTypedArray;
}

// Tensor data a pass may overwrite instead of copying, because its graph is being consumed: the fleet
// compile marks an imported graph's constants and drops that graph once canonicalized. A side table, not a
// field, so every other caller keeps the never-mutated rule without doing anything.
const consumable = new WeakSet<AnyTypedArray>();

export function markConsumable(t: Tensor): void {
  consumable.add(t.data);
}

// True once per tensor: the caller takes the data over (and may write it) and no one else is handed it.
export function takeConsumable(t: Tensor): boolean {
  return consumable.delete(t.data);
}

export function makeTensor(dtype: DType, shape: readonly number[], data?: AnyTypedArray): Tensor {
  const n = numel(shape);
  const d = data ?? allocArray(dtype, n);
  if (d.length !== n) fail('SHAPE', `tensor of shape ${shapeToString(shape)} needs ${n} elements, got ${d.length}`);
  return { dtype, shape: [...shape], data: d };
}

// Values as float64 numbers (i64 converted with Number(), f16/bf16 decoded).
export function toNumbers(t: Tensor): Float64Array {
  const n = t.data.length;
  const out = new Float64Array(n);
  const d = t.data;
  switch (t.dtype) {
    case 'f16':
      for (let i = 0; i < n; i++) out[i] = f16ToF32((d as Uint16Array)[i]!);
      break;
    case 'bf16':
      for (let i = 0; i < n; i++) out[i] = bf16ToF32((d as Uint16Array)[i]!);
      break;
    case 'i64':
      for (let i = 0; i < n; i++) out[i] = Number((d as BigInt64Array)[i]!);
      break;
    default:
      out.set(d as Float32Array); // exact for every remaining dtype, converted natively (weights are millions)
  }
  return out;
}

// Build a tensor from numbers, converting to dtype (integers truncate toward zero like a C cast).
export function fromNumbers(dtype: DType, shape: readonly number[], values: ArrayLike<number>): Tensor {
  const n = values.length;
  const out = allocArray(dtype, n);
  switch (dtype) {
    case 'f16':
      for (let i = 0; i < n; i++) (out as Uint16Array)[i] = f32ToF16(values[i]!);
      break;
    case 'bf16':
      for (let i = 0; i < n; i++) (out as Uint16Array)[i] = f32ToBf16(values[i]!);
      break;
    case 'i64':
      for (let i = 0; i < n; i++) {
        const v = values[i]!;
        (out as BigInt64Array)[i] = Number.isFinite(v) ? BigInt(Math.trunc(v)) : 0n;
      }
      break;
    case 'bool':
      for (let i = 0; i < n; i++) (out as Uint8Array)[i] = values[i] ? 1 : 0;
      break;
    case 'i32':
    case 'i8':
    case 'u8':
      for (let i = 0; i < n; i++) {
        const v = values[i]!;
        (out as Int32Array)[i] = Number.isFinite(v) ? Math.trunc(v) : 0;
      }
      break;
    default:
      (out as Float32Array).set(values);
  }
  return makeTensor(dtype, shape, out);
}

export function scalarTensor(dtype: DType, v: number): Tensor {
  return fromNumbers(dtype, [], [v]);
}

// Integer contents as plain numbers (for shape-like tensors: axes, shapes, indices).
export function toIntList(t: Tensor): number[] {
  return Array.from(toNumbers(t));
}

export function tensorType(t: Tensor): TensorType {
  return { dtype: t.dtype, shape: t.shape };
}

export function tensorBytes(t: Tensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}
