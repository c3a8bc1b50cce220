import { type DType, isInteger } from '../dtype.js';
import { fail } from '../errors.js';
import { type InferResult, defineOp, noAttrs, requireDType, requireInput } from '../op.js';
import { type Dim, type Shape, broadcastShapes, numel, numelOf, scaledSymbol, shapeToString, splitSymbolic, stridesOf } from '../shape.js';
import { fromNumbers, makeTensor, scalarTensor, toIntList, toNumbers } from '../tensor.js';
import {
  axisMap,
  concrete,
  copyByAxisOffsets,
  copyTensor,
  dataDependent,
  intsInput,
  normalizeAxes,
  passDims,
  productDim,
  scalarInput,
  scaleDim,
  shapeInput,
  withDims,
} from './layout-util.js';

// Ops that change how a tensor's elements are viewed or filled, without reordering them:
// Shape, Size, Reshape, Flatten, Unsqueeze, Squeeze, Expand, Tile, ConstantOfShape, Range.

// A shape's element count as constant × symbols, so that [N,3] and [3,N] compare equal.
interface Count {
  readonly k: number;
  readonly syms: readonly string[]; // sorted
}

function countOf(s: Shape): Count {
  let k = 1;
  const syms: string[] = [];
  for (const d of s) {
    if (typeof d === 'number') k *= d;
    else {
      const p = splitSymbolic(d); // 'N*16' counts as N and 16
      k *= p.k;
      syms.push(p.sym);
    }
  }
  return { k, syms: syms.sort() };
}

function countText(c: Count): string {
  return c.syms.length === 0 ? `${c.k}` : [...c.syms, ...(c.k === 1 ? [] : [String(c.k)])].join('*');
}

// Removes `sub` from `all` (multisets); undefined when `sub` has a symbol `all` lacks.
function symbolsLeft(all: readonly string[], sub: readonly string[]): string[] | undefined {
  const left = [...all];
  for (const s of sub) {
    const i = left.indexOf(s);
    if (i < 0) return undefined;
    left.splice(i, 1);
  }
  return left;
}

export function resolveReshape(input: Shape, target: readonly Dim[], allowzero: boolean, where: string): Dim[] {
  let inferAt = -1;
  const out: Dim[] = target.map((d, i) => {
    if (typeof d === 'string') return d;
    if (d === -1) {
      if (inferAt >= 0) fail('SHAPE', `${where}: target shape ${shapeToString(target)} has more than one -1`);
      inferAt = i;
      return -1;
    }
    if (d === 0 && !allowzero) {
      if (i >= input.length)
        fail('SHAPE', `${where}: target shape ${shapeToString(target)} copies dim ${i} (0) but the input ${shapeToString(input)} has rank ${input.length}`);
      return input[i]!;
    }
    if (d < 0 || !Number.isInteger(d)) fail('SHAPE', `${where}: target shape ${shapeToString(target)} has invalid entry ${d}`);
    return d;
  });
  if (allowzero && inferAt >= 0 && target.includes(0)) {
    fail('SHAPE', `${where}: with allowzero=1 the target shape ${shapeToString(target)} cannot hold both 0 and -1`);
  }
  const have = countOf(input);
  const want = countOf(out.filter((_, i) => i !== inferAt));
  const mismatch = (): never =>
    fail('SHAPE', `${where}: cannot reshape ${shapeToString(input)} (${countText(have)} elements) to ${shapeToString(target)} (${countText(want)} elements)`);
  const left = symbolsLeft(have.syms, want.syms);
  if (left === undefined) return mismatch();
  if (inferAt < 0) {
    if (left.length !== 0 || have.k !== want.k) return mismatch();
    return out;
  }
  if (want.k === 0) fail('SHAPE', `${where}: cannot infer the -1 of ${shapeToString(target)}: the other dims hold 0 elements`);
  if (have.k % want.k !== 0) return mismatch();
  const ratio = have.k / want.k;
  if (left.length === 0) out[inferAt] = ratio;
  else if (left.length === 1) out[inferAt] = have.k === 0 ? 0 : scaledSymbol(left[0]!, ratio);
  else
    fail(
      'SHAPE',
      `${where}: the -1 of target ${shapeToString(target)} would be ${[...left, ratio].join('*')} for input ${shapeToString(input)}; only one symbolic dim is supported`,
    );
  return out;
}

function shapeSlice(rank: number, start: number, end: number | null): [number, number] {
  const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
  return [clamp(start), clamp(end ?? rank)];
}

function unsqueezeShape(s: Shape, axes: readonly number[], where: string): Dim[] {
  const rank = s.length + axes.length;
  const set = new Set(normalizeAxes(axes, rank, where, 'axes'));
  const out: Dim[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) out.push(set.has(i) ? 1 : s[j++]!);
  return out;
}

function squeezeShape(s: Shape, axes: readonly number[] | null, where: string): Dim[] {
  if (axes === null) return s.filter((d) => d !== 1);
  const set = new Set(normalizeAxes(axes, s.length, where, 'axes'));
  for (const a of set) {
    if (s[a] !== 1) fail('SHAPE', `${where}: cannot squeeze axis ${a} of ${shapeToString(s)}: its size is ${s[a]}, not 1`);
  }
  return s.filter((_, i) => !set.has(i));
}

function flattenShape(s: Shape, axis: number, where: string): Dim[] {
  const a = axis < 0 ? axis + s.length : axis;
  if (a < 0 || a > s.length) fail('SHAPE', `${where}: axis ${axis} is out of range for rank ${s.length}`);
  return [productDim(s.slice(0, a), where, 'the outer dim'), productDim(s.slice(a), where, 'the inner dim')];
}

function tileShape(s: Shape, reps: readonly number[], where: string): Dim[] {
  if (reps.length !== s.length) fail('SHAPE', `${where}: repeats ${shapeToString(reps)} must have one entry per dim of ${shapeToString(s)}`);
  return s.map((d, i) => {
    const r = reps[i]!;
    if (r < 0) fail('SHAPE', `${where}: repeats ${shapeToString(reps)} has a negative entry`);
    return scaleDim(d, r, where, `dim ${i}`);
  });
}

function checkTarget(target: readonly Dim[], where: string, what: string): void {
  for (const d of target)
    if (typeof d === 'number' && (d < 0 || !Number.isInteger(d))) fail('SHAPE', `${where}: ${what} ${shapeToString(target)} has invalid entry ${d}`);
}

const RANGE_TYPES: readonly DType[] = ['f32', 'f64', 'i32', 'i64'];

function rangeCount(start: number, limit: number, delta: number, where: string): number {
  if (delta === 0) fail('SHAPE', `${where}: delta must not be 0`);
  return Math.max(Math.ceil((limit - start) / delta), 0);
}

export interface ShapeAttrs {
  readonly start: number;
  readonly end: number | null; // null = to the end
}
export interface ConstantOfShapeAttrs {
  readonly dtype: DType;
  readonly value: number;
}

export const layoutShapeOps = {
  Shape: defineOp<ShapeAttrs>({
    name: 'Shape',
    inputs: [1, 1],
    outputs: [1, 1],
    attrs: (r) => ({ start: r.int('start', 0), end: r.has('end') ? r.int('end') : null }),
    infer: (a, inputs, where) => {
      const s = requireInput(inputs, 0, where).type.shape;
      const [b, e] = shapeSlice(s.length, a.start, a.end);
      const dims = s.slice(b, Math.max(b, e));
      return [{ type: { dtype: 'i64', shape: [dims.length] }, dims }];
    },
    evaluate: (a, inputs, where) => {
      const s = requireInput(inputs, 0, where).shape;
      const [b, e] = shapeSlice(s.length, a.start, a.end);
      const dims = s.slice(b, Math.max(b, e));
      return [fromNumbers('i64', [dims.length], dims)];
    },
  }),

  Size: defineOp({
    name: 'Size',
    inputs: [1, 1],
    outputs: [1, 1],
    attrs: noAttrs,
    infer: (_a, inputs, where) => {
      const n = numelOf(requireInput(inputs, 0, where).type.shape);
      return [{ type: { dtype: 'i64', shape: [] }, ...(n === undefined ? {} : { dims: [n] }) }];
    },
    evaluate: (_a, inputs, where) => [scalarTensor('i64', requireInput(inputs, 0, where).data.length)],
  }),

  Reshape: defineOp({
    name: 'Reshape',
    inputs: [2, 2],
    outputs: [1, 1],
    attrs: (r) => ({ allowzero: r.int('allowzero', 0) !== 0 }),
    infer: (a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (data)');
      const target = shapeInput(inputs[1], where, 'input 1 (shape)');
      const type = { dtype: x.type.dtype, shape: resolveReshape(x.type.shape, target, a.allowzero, where) };
      return [{ type, ...passDims(x, type) }];
    },
    evaluate: (a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (data)');
      const target = toIntList(requireInput(inputs, 1, where, 'input 1 (shape)'));
      return [copyTensor(x, concrete(resolveReshape(x.shape, target, a.allowzero, where), where, 'output'))];
    },
  }),

  Flatten: defineOp({
    name: 'Flatten',
    inputs: [1, 1],
    outputs: [1, 1],
    attrs: (r) => ({ axis: r.int('axis', 1) }),
    infer: (a, inputs, where) => {
      const x = requireInput(inputs, 0, where);
      return [{ type: { dtype: x.type.dtype, shape: flattenShape(x.type.shape, a.axis, where) } }];
    },
    evaluate: (a, inputs, where) => {
      const x = requireInput(inputs, 0, where);
      return [copyTensor(x, concrete(flattenShape(x.shape, a.axis, where), where, 'output'))];
    },
  }),

  Unsqueeze: defineOp({
    name: 'Unsqueeze',
    inputs: [2, 2],
    outputs: [1, 1],
    attrs: noAttrs,
    infer: (_a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (data)');
      const axes = intsInput(inputs[1], where, 'input 1 (axes)');
      const type = { dtype: x.type.dtype, shape: unsqueezeShape(x.type.shape, axes, where) };
      return [{ type, ...passDims(x, type) }];
    },
    evaluate: (_a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (data)');
      const axes = toIntList(requireInput(inputs, 1, where, 'input 1 (axes)'));
      return [copyTensor(x, concrete(unsqueezeShape(x.shape, axes, where), where, 'output'))];
    },
  }),

  Squeeze: defineOp({
    name: 'Squeeze',
    inputs: [1, 2],
    outputs: [1, 1],
    attrs: noAttrs,
    infer: (_a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (data)');
      const axes = inputs[1] ? intsInput(inputs[1], where, 'input 1 (axes)') : null;
      const type = { dtype: x.type.dtype, shape: squeezeShape(x.type.shape, axes, where) };
      return [{ type, ...passDims(x, type) }];
    },
    evaluate: (_a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (data)');
      const axes = inputs[1] ? toIntList(inputs[1]) : null;
      return [copyTensor(x, concrete(squeezeShape(x.shape, axes, where), where, 'output'))];
    },
  }),

  Expand: defineOp({
    name: 'Expand',
    inputs: [2, 2],
    outputs: [1, 1],
    attrs: noAttrs,
    infer: (_a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (data)');
      const target = shapeInput(inputs[1], where, 'input 1 (shape)');
      checkTarget(target, where, 'target shape');
      const shape = broadcastShapes([x.type.shape, target], where);
      const type = { dtype: x.type.dtype, shape };
      const same = shape.length === x.type.shape.length && shape.every((d, i) => d === x.type.shape[i]);
      return [same ? { type, ...passDims(x, type) } : { type }];
    },
    evaluate: (_a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (data)');
      const target = toIntList(requireInput(inputs, 1, where, 'input 1 (shape)'));
      const shape = concrete(broadcastShapes([x.shape, target], where), where, 'output');
      const off = shape.length - x.shape.length;
      const st = stridesOf(x.shape);
      const maps = shape.map((d, a) => {
        const i = a - off;
        return axisMap(d, i < 0 || x.shape[i] === 1 ? 0 : st[i]!, (c) => c);
      });
      return [makeTensor(x.dtype, shape, copyByAxisOffsets(x, shape, maps))];
    },
  }),

  Tile: defineOp({
    name: 'Tile',
    inputs: [2, 2],
    outputs: [1, 1],
    attrs: noAttrs,
    infer: (_a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (data)');
      const reps = intsInput(inputs[1], where, 'input 1 (repeats)');
      return [{ type: { dtype: x.type.dtype, shape: tileShape(x.type.shape, reps, where) } }];
    },
    evaluate: (_a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (data)');
      const reps = toIntList(requireInput(inputs, 1, where, 'input 1 (repeats)'));
      const shape = concrete(tileShape(x.shape, reps, where), where, 'output');
      const st = stridesOf(x.shape);
      const maps = shape.map((d, a) => axisMap(d, st[a]!, (c) => c % x.shape[a]!));
      return [makeTensor(x.dtype, shape, copyByAxisOffsets(x, shape, maps))];
    },
  }),

  ConstantOfShape: defineOp<ConstantOfShapeAttrs>({
    name: 'ConstantOfShape',
    inputs: [1, 1],
    outputs: [1, 1],
    attrs: (r) => {
      const t = r.tensor('value');
      if (t === undefined) return { dtype: 'f32', value: 0 };
      if (t.data.length !== 1) fail('MODEL_INVALID', `${r.ctx.where}: attribute 'value' must hold one element, got ${t.data.length}`);
      return { dtype: t.dtype, value: toNumbers(t)[0]! };
    },
    infer: (a, inputs, where): InferResult[] => {
      const shape = shapeInput(inputs[0], where, 'input 0 (shape)');
      checkTarget(shape, where, 'shape');
      const type = { dtype: a.dtype, shape: [...shape] };
      const n = shape.length === 1 && typeof shape[0] === 'number' && shape[0] <= 64 ? shape[0] : -1;
      return [withDims(type, n >= 0 && isInteger(a.dtype) ? new Array<Dim>(n).fill(a.value) : undefined)];
    },
    evaluate: (a, inputs, where) => {
      const shape = toIntList(requireInput(inputs, 0, where, 'input 0 (shape)'));
      checkTarget(shape, where, 'shape');
      return [fromNumbers(a.dtype, shape, new Float64Array(numel(shape)).fill(a.value))];
    },
  }),

  Range: defineOp({
    name: 'Range',
    inputs: [3, 3],
    outputs: [1, 1],
    attrs: noAttrs,
    infer: (_a, inputs, where): InferResult[] => {
      const t = requireInput(inputs, 0, where, 'input 0 (start)').type;
      requireDType(t, RANGE_TYPES, where, 'input 0 (start)');
      const start = scalarInput(inputs[0], where, 'input 0 (start)');
      const limit = scalarInput(inputs[1], where, 'input 1 (limit)');
      const delta = scalarInput(inputs[2], where, 'input 2 (delta)');
      if (typeof start === 'number' && typeof limit === 'number' && typeof delta === 'number') {
        const n = rangeCount(start, limit, delta, where);
        const vals = n <= 64 ? Array.from(rangeValues(t.dtype, start, delta, n)) : undefined;
        return [withDims({ dtype: t.dtype, shape: [n] }, vals)];
      }
      // arange(N): the one symbolic form that keeps a plain symbolic length
      if (start === 0 && delta === 1 && typeof limit === 'string') return [{ type: { dtype: t.dtype, shape: [limit] } }];
      return dataDependent(where, `the length of Range(${start}, ${limit}, ${delta})`);
    },
    evaluate: (_a, inputs, where) => {
      const s = requireInput(inputs, 0, where, 'input 0 (start)');
      const [start, limit, delta] = [s, inputs[1], inputs[2]].map((t, i) => {
        const v = toNumbers(requireInput([t ?? null], 0, where, `input ${i}`));
        if (v.length !== 1) fail('EVAL', `${where}: input ${i} must be a scalar`);
        return v[0]!;
      }) as [number, number, number];
      const n = rangeCount(start, limit, delta, where);
      return [fromNumbers(s.dtype, [n], rangeValues(s.dtype, start, delta, n))];
    },
  }),
} as const;

// onnxruntime accumulates `value += delta` in the element type, so f32 ranges round at each step.
function rangeValues(dtype: DType, start: number, delta: number, n: number): Float64Array {
  const out = new Float64Array(n);
  const round = dtype === 'f32' ? Math.fround : (v: number): number => v;
  let v = round(start);
  const d = round(delta);
  for (let i = 0; i < n; i++) {
    out[i] = v;
    v = round(v + d);
  }
  return out;
}
