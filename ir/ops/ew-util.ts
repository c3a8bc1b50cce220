import type { DType } from '../dtype.js';
import { fail } from '../errors.js';
import type { InferArg } from '../op.js';
import { type Dim, type Shape, broadcastShapes, normalizeAxis, numel, shapeToString } from '../shape.js';
import { type Tensor, makeTensor, toNumbers } from '../tensor.js';

// Shared machinery of the elementwise, reduce and normalization families.

export const FLOATS: readonly DType[] = ['f32', 'f64', 'f16', 'bf16'];
export const INTS: readonly DType[] = ['i64', 'i32', 'i8', 'u8'];
export const SIGNED_INTS: readonly DType[] = ['i64', 'i32', 'i8'];
export const NUMERIC: readonly DType[] = [...FLOATS, ...INTS];
export const ALL_TYPES: readonly DType[] = [...NUMERIC, 'bool'];

// The `axis` attribute normalized for `shape`, with the element counts before (outer), along (len) and
// after (inner) it: element (o, k, j) sits at (o * len + k) * inner + j.
export function splitAtAxis(shape: readonly number[], axisAttr: number, where: string): { axis: number; outer: number; len: number; inner: number } {
  const axis = normalizeAxis(axisAttr, shape.length, `${where}: attribute axis`);
  return { axis, outer: numel(shape.slice(0, axis)), len: shape[axis]!, inner: numel(shape.slice(axis + 1)) };
}

// Element values readable as JS numbers without copying where the storage already holds numbers.
// i64 is converted with Number(): exact below 2^53, which is what non-BigInt paths promise.
export function readNumbers(t: Tensor): ArrayLike<number> {
  switch (t.dtype) {
    case 'f16':
    case 'bf16':
    case 'i64':
      return toNumbers(t);
    case 'f32':
    case 'f64':
    case 'i32':
    case 'i8':
    case 'u8':
    case 'bool':
      return t.data as ArrayLike<number>;
    default: {
      const never: never = t.dtype;
      throw new Error(`unknown dtype ${String(never)}`);
    }
  }
}

export function boolTensor(shape: readonly number[], data: Uint8Array): Tensor {
  return makeTensor('bool', shape, data);
}

// Offsets into an input of shape `inShape` for every element of the broadcast output `outShape`
// (row-major); null when no broadcasting happens (offset = output index).
export function broadcastIndex(inShape: readonly number[], outShape: readonly number[]): Int32Array | null {
  const r = outShape.length;
  if (inShape.length === r && inShape.every((d, i) => d === outShape[i])) return null;
  const n = numel(outShape);
  const idx = new Int32Array(n);
  if (n === 0 || r === 0) return idx;
  const st = new Array<number>(r).fill(0);
  let acc = 1;
  for (let i = inShape.length - 1; i >= 0; i--) {
    const d = inShape[i]!;
    st[r - inShape.length + i] = d === 1 ? 0 : acc;
    acc *= d;
  }
  const last = r - 1;
  const dl = outShape[last]!;
  const sl = st[last]!;
  const counter = new Int32Array(r);
  let base = 0;
  let p = 0;
  for (;;) {
    for (let j = 0; j < dl; j++) idx[p++] = base + j * sl;
    let k = r - 2;
    for (; k >= 0; k--) {
      counter[k]!++;
      base += st[k]!;
      if (counter[k]! < outShape[k]!) break;
      base -= st[k]! * outShape[k]!;
      counter[k] = 0;
    }
    if (k < 0) break;
  }
  return idx;
}

// out[i] = f(a[ia[i]], b[ib[i]]); four loops so the common unbroadcast case stays index-free.
export function binaryLoop<T, U>(
  a: ArrayLike<T>,
  ia: Int32Array | null,
  b: ArrayLike<T>,
  ib: Int32Array | null,
  out: { [i: number]: U; readonly length: number },
  f: (x: T, y: T) => U,
): void {
  const n = out.length;
  if (ia === null && ib === null) for (let i = 0; i < n; i++) out[i] = f(a[i]!, b[i]!);
  else if (ia === null) for (let i = 0; i < n; i++) out[i] = f(a[i]!, b[ib![i]!]!);
  else if (ib === null) for (let i = 0; i < n; i++) out[i] = f(a[ia[i]!]!, b[i]!);
  else for (let i = 0; i < n; i++) out[i] = f(a[ia[i]!]!, b[ib[i]!]!);
}

export function inputName(i: number, names?: readonly string[]): string {
  return names?.[i] !== undefined ? `input ${i} (${names[i]})` : `input ${i}`;
}

// ONNX requires the listed inputs of an op to share one element type.
export function requireSameDType(types: ReadonlyArray<{ readonly dtype: DType } | null>, where: string, names?: readonly string[]): DType {
  let first: DType | undefined;
  let firstIdx = 0;
  types.forEach((t, i) => {
    if (t === null) return;
    if (first === undefined) {
      first = t.dtype;
      firstIdx = i;
    } else if (t.dtype !== first) {
      fail(
        'SHAPE',
        `${where}: ${inputName(i, names)} has dtype ${t.dtype} but ${inputName(firstIdx, names)} has ${first}; the op requires equal element types`,
      );
    }
  });
  if (first === undefined) fail('MODEL_INVALID', `${where}: no inputs`);
  return first;
}

export function requireTypeIn(dtype: DType, allowed: readonly DType[], where: string, what: string): void {
  if (!allowed.includes(dtype)) fail('SHAPE', `${where}: ${what} has dtype ${dtype}; expected one of ${allowed.join(', ')}`);
}

// Unidirectional broadcast: `small` must broadcast to exactly `target` (PRelu slope, norm scales).
export function requireUnidirectional(target: Shape, small: Shape, where: string, what: string): void {
  const b = broadcastShapes([target, small], where);
  if (b.length !== target.length || b.some((d, i) => d !== target[i])) {
    fail('SHAPE', `${where}: ${what} of shape ${shapeToString(small)} does not broadcast to ${shapeToString(target)}`);
  }
}

export function presentArgs(inputs: ReadonlyArray<InferArg | null>): InferArg[] {
  return inputs.filter((x): x is InferArg => x !== null);
}

// Known contents of a shape-like value, broadcast elementwise over two dims lists (length-1 lists repeat).
export function zipDims(lists: ReadonlyArray<readonly Dim[] | undefined>, f: (xs: readonly Dim[]) => Dim | undefined): Dim[] | undefined {
  if (lists.some((l) => l === undefined)) return undefined;
  const ls = lists as ReadonlyArray<readonly Dim[]>;
  const n = Math.max(...ls.map((l) => l.length));
  if (ls.some((l) => l.length !== n && l.length !== 1)) return undefined;
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const v = f(ls.map((l) => l[l.length === 1 ? 0 : i]!));
    if (v === undefined) return undefined;
    out.push(v);
  }
  return out;
}

export function allNumbers(d: readonly Dim[] | undefined): d is readonly number[] {
  return d !== undefined && d.every((x) => typeof x === 'number');
}
