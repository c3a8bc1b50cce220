import { type AnyTypedArray, allocArray } from '../dtype.js';
import { fail } from '../errors.js';
import { type InferArg, type InferResult, defineOp, requireInput } from '../op.js';
import { type Dim, type Shape, normalizeAxis, numel, shapeToString, stridesOf } from '../shape.js';
import { type Tensor, makeTensor, toIntList } from '../tensor.js';
import { axisMap, concrete, copyByAxisOffsets, dataAndIndices, intsInput, knownContents, normalizeAxes, normalizeIndices, withDims } from './layout-util.js';

// Ops that select or join parts of tensors along axes: Concat, Split, Slice, Gather, GatherElements.
// Each also carries `dims` through, since shape sub-graphs (Shape → Gather/Slice → Concat) are built from them.

// Slices from at least this far out count as "to the end" on a symbolic dim (exporters write INT32/INT64 max).
const OPEN_END = 2 ** 31 - 1;

interface AxisSlice {
  readonly start: number;
  readonly count: number;
  readonly step: number;
}

function sliceAxis(d: number, start: number, end: number, step: number): AxisSlice {
  const clamp = (v: number, lo: number, hi: number): number => Math.min(Math.max(v, lo), hi);
  let s = start < 0 ? start + d : start;
  let e = end < 0 ? end + d : end;
  if (step > 0) {
    s = clamp(s, 0, d);
    e = clamp(e, 0, d);
  } else {
    s = clamp(s, 0, d - 1);
    e = clamp(e, -1, d - 1);
  }
  return { start: s, count: Math.max(0, Math.ceil((e - s) / step)), step };
}

interface SlicePlan {
  readonly shape: Dim[];
  readonly axes: ReadonlyMap<number, AxisSlice>; // numeric axes that are sliced
}

function planSlice(
  s: Shape,
  starts: readonly number[],
  ends: readonly number[],
  axesIn: readonly number[] | null,
  stepsIn: readonly number[] | null,
  where: string,
): SlicePlan {
  const k = starts.length;
  if (ends.length !== k) fail('SHAPE', `${where}: starts ${shapeToString(starts)} and ends ${shapeToString(ends)} differ in length`);
  const axes = normalizeAxes(axesIn ?? starts.map((_, i) => i), s.length, where, 'axes');
  const steps = stepsIn ?? starts.map(() => 1);
  if (axes.length !== k || steps.length !== k) fail('SHAPE', `${where}: starts, ends, axes and steps must have the same length`);
  const shape = [...s];
  const plan = new Map<number, AxisSlice>();
  for (let i = 0; i < k; i++) {
    const a = axes[i]!;
    const [st, en, sp] = [starts[i]!, ends[i]!, steps[i]!];
    if (sp === 0) fail('SHAPE', `${where}: steps must not be 0`);
    const d = s[a]!;
    if (typeof d === 'string') {
      const full = sp === 1 ? (st === 0 || st <= -OPEN_END) && en >= OPEN_END : sp === -1 && (st === -1 || st >= OPEN_END) && en <= -OPEN_END;
      if (!full)
        fail(
          'SHAPE',
          `${where}: slicing symbolic dim '${d}' (axis ${a}) with start ${st}, end ${en}, step ${sp} gives a data-dependent size; only the full range is supported`,
        );
      if (sp === -1) fail('UNSUPPORTED_FEATURE', `${where}: reversing symbolic dim '${d}' (axis ${a}) is not supported`);
      continue;
    }
    const p = sliceAxis(d, st, en, sp);
    plan.set(a, p);
    shape[a] = p.count;
  }
  return { shape, axes: plan };
}

function optionalInts(arg: InferArg | null | undefined, where: string, what: string): number[] | null {
  return arg ? intsInput(arg, where, what) : null;
}

function concatShape(shapes: readonly Shape[], axis: number, where: string): Dim[] {
  const rank = shapes[0]!.length;
  const a = normalizeAxis(axis, rank, where);
  const out = [...shapes[0]!];
  let sum = 0;
  let sym: string | undefined;
  for (const s of shapes) {
    if (s.length !== rank) fail('SHAPE', `${where}: inputs ${shapes.map(shapeToString).join(', ')} differ in rank`);
    for (let i = 0; i < rank; i++) {
      if (i !== a && s[i] !== out[i]) fail('SHAPE', `${where}: inputs ${shapes.map(shapeToString).join(', ')} differ in dim ${i} (concat axis ${a})`);
    }
    const d = s[a]!;
    if (typeof d === 'number') sum += d;
    else if (sym === undefined) sym = d;
    else fail('SHAPE', `${where}: concatenating symbolic dims along axis ${a} of ${shapes.map(shapeToString).join(', ')} is not supported`);
  }
  if (sym !== undefined && sum !== 0)
    fail('SHAPE', `${where}: the concat axis ${a} would be ${sym}+${sum}; only the batch symbol itself can be a symbolic dim`);
  out[a] = sym ?? sum;
  return out;
}

function splitSizes(d: Dim, split: readonly number[] | null, numOutputs: number | null, nOut: number, where: string): Dim[] {
  if (split !== null) {
    if (split.length !== nOut) fail('SHAPE', `${where}: split ${shapeToString(split)} has ${split.length} entries for ${nOut} outputs`);
    if (split.some((v) => v < 0)) fail('SHAPE', `${where}: split ${shapeToString(split)} has a negative entry`);
    const total = split.reduce((x, y) => x + y, 0);
    if (typeof d === 'string') fail('SHAPE', `${where}: cannot split symbolic dim '${d}' into fixed sizes ${shapeToString(split)}`);
    if (total !== d) fail('SHAPE', `${where}: split ${shapeToString(split)} sums to ${total}, but the axis has size ${d}`);
    return [...split];
  }
  if (numOutputs !== null && numOutputs !== nOut) fail('MODEL_INVALID', `${where}: num_outputs is ${numOutputs} but the node has ${nOut} outputs`);
  if (nOut === 1) return [d];
  if (typeof d === 'string') fail('SHAPE', `${where}: cannot split symbolic dim '${d}' into ${nOut} parts`);
  if (numOutputs === null) {
    if (d % nOut !== 0) fail('SHAPE', `${where}: axis of size ${d} does not split evenly into ${nOut} outputs`);
    return new Array<number>(nOut).fill(d / nOut);
  }
  // opset 18 num_outputs: equal chunks of ceil(d/n), the last one smaller
  const chunk = Math.ceil(d / nOut);
  return Array.from({ length: nOut }, (_, i) => Math.max(0, Math.min(chunk, d - chunk * i)));
}

function gatherShape(s: Shape, idx: Shape, axis: number, where: string): [number, Dim[]] {
  const a = normalizeAxis(axis, s.length, where);
  return [a, [...s.slice(0, a), ...idx, ...s.slice(a + 1)]];
}

const INDEX_TYPES = ['i64', 'i32'] as const;

export interface SplitAttrs {
  readonly axis: number;
  readonly numOutputs: number | null; // opset 18 num_outputs; null when the split input or output count decides
}

export const layoutIndexOps = {
  Concat: defineOp({
    name: 'Concat',
    inputs: [1, Infinity],
    outputs: [1, 1],
    attrs: (r) => ({ axis: r.int('axis') }),
    infer: (a, inputs, where): InferResult[] => {
      const xs = inputs.map((_, i) => requireInput(inputs, i, where));
      const dtype = xs[0]!.type.dtype;
      for (const x of xs) if (x.type.dtype !== dtype) fail('SHAPE', `${where}: inputs mix dtypes ${xs.map((v) => v.type.dtype).join(', ')}`);
      const type = {
        dtype,
        shape: concatShape(
          xs.map((x) => x.type.shape),
          a.axis,
          where,
        ),
      };
      const parts = xs.map(knownContents);
      const dims = type.shape.length === 1 && parts.every((p) => p !== undefined) ? parts.flatMap((p) => [...p!]) : undefined;
      return [withDims(type, dims)];
    },
    evaluate: (a, inputs, where) => {
      const xs = inputs.map((_, i) => requireInput(inputs, i, where));
      const shape = concrete(
        concatShape(
          xs.map((x) => x.shape),
          a.axis,
          where,
        ),
        where,
        'output',
      );
      const ax = normalizeAxis(a.axis, shape.length, where);
      const outer = numel(shape.slice(0, ax));
      const inner = numel(shape.slice(ax + 1));
      const out = allocArray(xs[0]!.dtype, numel(shape)) as Float32Array;
      let pos = 0;
      for (let o = 0; o < outer; o++) {
        for (const x of xs) {
          const block = x.shape[ax]! * inner;
          out.set((x.data as Float32Array).subarray(o * block, (o + 1) * block), pos);
          pos += block;
        }
      }
      return [makeTensor(xs[0]!.dtype, shape, out as AnyTypedArray)];
    },
  }),

  Split: defineOp<SplitAttrs>({
    name: 'Split',
    inputs: [1, 2],
    outputs: [1, Infinity],
    attrs: (r) => ({ axis: r.int('axis', 0), numOutputs: r.has('num_outputs') ? r.int('num_outputs') : null }),
    infer: (a, inputs, where, nOut): InferResult[] => {
      const x = requireInput(inputs, 0, where, 'input 0 (input)');
      const ax = normalizeAxis(a.axis, x.type.shape.length, where);
      const sizes = splitSizes(x.type.shape[ax]!, optionalInts(inputs[1], where, 'input 1 (split)'), a.numOutputs, nOut, where);
      const c = x.type.shape.length === 1 ? knownContents(x) : undefined;
      let off = 0;
      return sizes.map((n) => {
        const shape = [...x.type.shape];
        shape[ax] = n;
        const dims = c && typeof n === 'number' ? c.slice(off, off + n) : undefined;
        off += typeof n === 'number' ? n : 0;
        return withDims({ dtype: x.type.dtype, shape }, dims);
      });
    },
    evaluate: (a, inputs, where, nOut) => {
      const x = requireInput(inputs, 0, where, 'input 0 (input)');
      const ax = normalizeAxis(a.axis, x.shape.length, where);
      const split = inputs[1] ? toIntList(inputs[1]) : null;
      const sizes = splitSizes(x.shape[ax]!, split, a.numOutputs, nOut, where) as number[];
      const outer = numel(x.shape.slice(0, ax));
      const inner = numel(x.shape.slice(ax + 1));
      const rowIn = x.shape[ax]! * inner;
      const src = x.data as Float32Array;
      let off = 0;
      return sizes.map((n) => {
        const shape = [...x.shape];
        shape[ax] = n;
        const out = allocArray(x.dtype, outer * n * inner) as Float32Array;
        const block = n * inner;
        for (let o = 0; o < outer; o++) out.set(src.subarray(o * rowIn + off * inner, o * rowIn + off * inner + block), o * block);
        off += n;
        return makeTensor(x.dtype, shape, out as AnyTypedArray);
      });
    },
  }),

  Slice: defineOp({
    name: 'Slice',
    inputs: [3, 5],
    outputs: [1, 1],
    attrs: () => ({}),
    infer: (_a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (data)');
      const plan = planSlice(
        x.type.shape,
        intsInput(inputs[1], where, 'input 1 (starts)'),
        intsInput(inputs[2], where, 'input 2 (ends)'),
        optionalInts(inputs[3], where, 'input 3 (axes)'),
        optionalInts(inputs[4], where, 'input 4 (steps)'),
        where,
      );
      const type = { dtype: x.type.dtype, shape: plan.shape };
      const c = x.type.shape.length === 1 ? knownContents(x) : undefined;
      const p = plan.axes.get(0);
      const dims = c && p ? Array.from({ length: p.count }, (_, i) => c[p.start + i * p.step]!) : c;
      return [withDims(type, dims)];
    },
    evaluate: (_a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (data)');
      const starts = toIntList(requireInput(inputs, 1, where, 'input 1 (starts)'));
      const ends = toIntList(requireInput(inputs, 2, where, 'input 2 (ends)'));
      const opt = (i: number): number[] | null => (inputs[i] ? toIntList(inputs[i]!) : null);
      const plan = planSlice(x.shape, starts, ends, opt(3), opt(4), where);
      const shape = concrete(plan.shape, where, 'output');
      const st = stridesOf(x.shape);
      const maps = shape.map((d, a) => {
        const p = plan.axes.get(a);
        return p ? axisMap(d, st[a]!, (i) => p.start + i * p.step) : axisMap(d, st[a]!, (i) => i);
      });
      return [makeTensor(x.dtype, shape, copyByAxisOffsets(x, shape, maps))];
    },
  }),

  Gather: defineOp({
    name: 'Gather',
    inputs: [2, 2],
    outputs: [1, 1],
    attrs: (r) => ({ axis: r.int('axis', 0) }),
    infer: (a, inputs, where) => {
      const [x, idx] = dataAndIndices(inputs, INDEX_TYPES, where);
      const [ax, shape] = gatherShape(x.type.shape, idx.type.shape, a.axis, where);
      const d = x.type.shape[ax]!;
      const iv = knownContents(idx);
      let norm: Int32Array | undefined;
      if (idx.value && typeof d === 'number') norm = normalizeIndices(idx.value, d, where, 'input 1 (indices)', 'SHAPE');
      else if (iv && typeof d === 'number' && iv.every((v) => typeof v === 'number')) {
        norm = Int32Array.from(iv as number[], (v) => (v < 0 ? v + d : v));
        if (norm.some((v) => v < 0 || v >= d)) fail('SHAPE', `${where}: indices ${shapeToString(iv)} are out of range for a dim of size ${d}`);
      }
      const c = x.type.shape.length === 1 ? knownContents(x) : undefined;
      const dims = c && norm && idx.type.shape.length <= 1 ? Array.from(norm, (i) => c[i]!) : undefined;
      return [withDims({ dtype: x.type.dtype, shape }, dims)];
    },
    evaluate: (a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (data)');
      const idxT = requireInput(inputs, 1, where, 'input 1 (indices)');
      const [ax, shape] = gatherShape(x.shape, idxT.shape, a.axis, where);
      const d = x.shape[ax]!;
      const idx = normalizeIndices(idxT, d, where, 'input 1 (indices)');
      const post = numel(x.shape.slice(ax + 1));
      const iter = [numel(x.shape.slice(0, ax)), idx.length, post];
      const maps = [axisMap(iter[0]!, d * post, (i) => i), idx.map((i) => i * post), axisMap(post, 1, (i) => i)];
      return [makeTensor(x.dtype, shape as number[], copyByAxisOffsets(x, iter, maps))];
    },
  }),

  GatherElements: defineOp({
    name: 'GatherElements',
    inputs: [2, 2],
    outputs: [1, 1],
    attrs: (r) => ({ axis: r.int('axis', 0) }),
    infer: (a, inputs, where) => {
      const [x, idx] = dataAndIndices(inputs, INDEX_TYPES, where);
      if (idx.type.shape.length !== x.type.shape.length) {
        fail('SHAPE', `${where}: indices ${shapeToString(idx.type.shape)} must have the rank of data ${shapeToString(x.type.shape)}`);
      }
      normalizeAxis(a.axis, x.type.shape.length, where);
      return [{ type: { dtype: x.type.dtype, shape: idx.type.shape } }];
    },
    evaluate: (a, inputs, where) => [gatherElements(requireInput(inputs, 0, where), requireInput(inputs, 1, where), a.axis, where)],
  }),
} as const;

function gatherElements(x: Tensor, idxT: Tensor, axis: number, where: string): Tensor {
  const rank = x.shape.length;
  if (idxT.shape.length !== rank) fail('EVAL', `${where}: indices ${shapeToString(idxT.shape)} must have the rank of data ${shapeToString(x.shape)}`);
  const ax = normalizeAxis(axis, rank, where);
  const idx = normalizeIndices(idxT, x.shape[ax]!, where, 'input 1 (indices)');
  const st = stridesOf(x.shape);
  const n = idx.length;
  const out = allocArray(x.dtype, n) as unknown as (number | bigint)[];
  const src = x.data as unknown as (number | bigint)[];
  const coord = new Array<number>(rank).fill(0);
  let base = 0; // offset of coord in x with the axis coordinate left out
  for (let i = 0; i < n; i++) {
    out[i] = src[base + idx[i]! * st[ax]!]!;
    for (let a = rank - 1; a >= 0; a--) {
      if (a !== ax) base += st[a]!;
      if (++coord[a]! < idxT.shape[a]!) break;
      if (a !== ax) base -= coord[a]! * st[a]!;
      coord[a] = 0;
    }
  }
  return makeTensor(x.dtype, idxT.shape, out as unknown as AnyTypedArray);
}
