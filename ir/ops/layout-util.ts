import { type AnyTypedArray, type DType, allocArray, isInteger } from '../dtype.js';
import { fail } from '../errors.js';
import { type InferArg, requireDType, requireInput } from '../op.js';
import { type Dim, type Shape, numel, scaledSymbol, shapeToString, stridesOf } from '../shape.js';
import { type Tensor, type TensorType, fromNumbers, makeTensor, toIntList } from '../tensor.js';

// Shared machinery of the layout family: reading shape-like inputs at infer time (constant value or
// `dims` known from a shape sub-graph), symbolic dim arithmetic, and raw-element copies that keep
// i64/f16 bits exact (layout ops never round-trip values through float64).

// Constant contents above this size are not worth tracking as `dims`.
const MAX_KNOWN = 1024;

// Inputs 0 (data) and 1 (indices) of the gather and scatter ops, the indices of one of `indexTypes`.
export function dataAndIndices(inputs: ReadonlyArray<InferArg | null>, indexTypes: readonly DType[], where: string): [InferArg, InferArg] {
  const x = requireInput(inputs, 0, where, 'input 0 (data)');
  const idx = requireInput(inputs, 1, where, 'input 1 (indices)');
  requireDType(idx.type, indexTypes, where, 'input 1 (indices)');
  return [x, idx];
}

export function dataDependent(where: string, what: string): never {
  fail(
    'SHAPE',
    `${where}: ${what} is data-dependent (neither a constant nor computed from static shapes); Loom needs static shapes except the batch dimension`,
  );
}

// Known contents of a small 1-D/scalar tensor: the constant's values, else the propagated dims.
export function knownContents(arg: InferArg | null | undefined): readonly Dim[] | undefined {
  if (!arg) return undefined;
  if (arg.value && arg.value.data.length <= MAX_KNOWN && arg.value.dtype !== 'f16' && arg.value.dtype !== 'bf16') {
    return toIntList(arg.value);
  }
  return arg.dims;
}

// A shape-like input (target shape of Reshape/Expand/...): entries may be the batch symbol.
export function shapeInput(arg: InferArg | null | undefined, where: string, what: string): readonly Dim[] {
  if (!arg) fail('MODEL_INVALID', `${where}: ${what} is required`);
  if (!isInteger(arg.type.dtype)) fail('SHAPE', `${where}: ${what} has dtype ${arg.type.dtype}; expected an integer type`);
  if (arg.type.shape.length > 1) fail('SHAPE', `${where}: ${what} must be 1-D, got shape ${shapeToString(arg.type.shape)}`);
  const c = knownContents(arg);
  if (c === undefined) dataDependent(where, what);
  return c;
}

// An integer list input that must be fully numeric (axes, pads, starts, repeats, ...).
export function intsInput(arg: InferArg | null | undefined, where: string, what: string): number[] {
  const c = shapeInput(arg, where, what);
  return c.map((d) => (typeof d === 'number' ? d : dataDependent(where, `${what} (contains symbolic '${d}')`)));
}

// A scalar (or 1-element) input whose value is needed at infer time; may be a symbol.
export function scalarInput(arg: InferArg | null | undefined, where: string, what: string): Dim {
  if (!arg) fail('MODEL_INVALID', `${where}: ${what} is required`);
  const c = knownContents(arg);
  if (c === undefined) dataDependent(where, what);
  if (c.length !== 1) fail('SHAPE', `${where}: ${what} must hold one value, got ${c.length}`);
  return c[0]!;
}

// `dims` for an output whose flat contents equal its input's (Reshape, Squeeze, Unsqueeze, ...).
export function passDims(input: InferArg, out: TensorType): { dims?: readonly Dim[] } {
  if (!isInteger(out.dtype) || out.shape.length > 1) return {};
  const c = knownContents(input);
  return c ? { dims: c } : {};
}

export function withDims(type: TensorType, dims: readonly Dim[] | undefined): { type: TensorType; dims?: readonly Dim[] } {
  return dims && isInteger(type.dtype) && type.shape.length <= 1 ? { type, dims } : { type };
}

// Product of dims where at most one is symbolic: the batch symbol scaled by the static rest ('N*16').
export function productDim(ds: readonly Dim[], where: string, what: string): Dim {
  let n = 1;
  let sym: string | undefined;
  for (const d of ds) {
    if (typeof d === 'number') n *= d;
    else if (sym === undefined) sym = d;
    else fail('SHAPE', `${where}: ${what} would be a product of symbolic dims ${shapeToString(ds)}`);
  }
  return sym === undefined ? n : scaledSymbol(sym, n);
}

export function scaleDim(d: Dim, k: number, _where: string, _what: string): Dim {
  return typeof d === 'number' ? d * k : scaledSymbol(d, k);
}

// Concrete dims (evaluate-time shapes are always numeric).
export function concrete(s: Shape, where: string, what: string): number[] {
  return s.map((d) => (typeof d === 'number' ? d : fail('EVAL', `${where}: ${what} has symbolic dim '${d}' at evaluation time`)));
}

export function normalizeAxes(axes: readonly number[], rank: number, where: string, what: string): number[] {
  const out = axes.map((a) => {
    const n = a < 0 ? a + rank : a;
    if (n < 0 || n >= rank) fail('SHAPE', `${where}: ${what} value ${a} is out of range for rank ${rank}`);
    return n;
  });
  if (new Set(out).size !== out.length) fail('SHAPE', `${where}: ${what} ${shapeToString(axes)} repeats an axis`);
  return out;
}

// Raw element of a typed array as a number|bigint, for fills that must keep the dtype's bits.
export type RawElem = number | bigint;

export function rawOf(dtype: DType, v: number): RawElem {
  return fromNumbers(dtype, [1], [v]).data[0]!;
}

// Copies src elements into a fresh array: output element at multi-index o reads src[Σ maps[a][o_a]],
// or `fill` where any map entry is -1. Every layout move (transpose, slice, pad, tile, expand,
// gather) is one of these with per-axis offset tables, so the inner loop is a plain indexed copy.
export function copyByAxisOffsets(src: Tensor, iterShape: readonly number[], maps: readonly Int32Array[], fill: RawElem = 0): AnyTypedArray {
  const n = numel(iterShape);
  const out = allocArray(src.dtype, n);
  if (n === 0) return out;
  const o = out as unknown as RawElem[];
  const s = src.data as unknown as RawElem[];
  const f = typeof s[0] === 'bigint' ? BigInt(fill) : fill;
  const rank = iterShape.length;
  if (rank === 0) {
    o[0] = s[0]!;
    return out;
  }
  let pos = 0;
  const walk = (a: number, base: number): void => {
    const m = maps[a]!;
    const len = iterShape[a]!;
    if (a === rank - 1) {
      for (let i = 0; i < len; i++) {
        const v = m[i]!;
        o[pos++] = base < 0 || v < 0 ? f : s[base + v]!;
      }
      return;
    }
    for (let i = 0; i < len; i++) {
      const v = m[i]!;
      walk(a + 1, base < 0 || v < 0 ? -1 : base + v);
    }
  };
  walk(0, 0);
  return out;
}

// Offset table for output axis positions given a source coordinate function (-1 = fill).
export function axisMap(len: number, stride: number, coord: (i: number) => number): Int32Array {
  const m = new Int32Array(len);
  for (let i = 0; i < len; i++) {
    const c = coord(i);
    m[i] = c < 0 ? -1 : c * stride;
  }
  return m;
}

export function transposeTensor(t: Tensor, viewShape: readonly number[], perm: readonly number[], outShape: readonly number[]): Tensor {
  const st = stridesOf(viewShape);
  const iter = perm.map((p) => viewShape[p]!);
  const maps = perm.map((p, a) => axisMap(iter[a]!, st[p]!, (i) => i));
  return makeTensor(t.dtype, outShape, copyByAxisOffsets(t, iter, maps));
}

export function copyTensor(t: Tensor, shape: readonly number[]): Tensor {
  return makeTensor(t.dtype, shape, t.data.slice());
}

// Indices as plain numbers, made non-negative against `dim`; out-of-range is an error.
export function normalizeIndices(t: Tensor, dim: number, where: string, what: string, code: 'EVAL' | 'SHAPE' = 'EVAL'): Int32Array {
  const raw = toIntList(t);
  const out = new Int32Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i]!;
    const n = v < 0 ? v + dim : v;
    if (n < 0 || n >= dim) fail(code, `${where}: ${what} value ${v} is out of range for a dim of size ${dim}`);
    out[i] = n;
  }
  return out;
}
