import { fail } from '../errors.js';
import { type AttrReader, type InferArg, type OpDef, defineOp, requireInput } from '../op.js';
import { type Dim, type Shape, normalizeAxis, numel } from '../shape.js';
import { type Tensor, fromNumbers, makeTensor, toIntList } from '../tensor.js';
import { NUMERIC, allNumbers, broadcastIndex, readNumbers, requireTypeIn, splitAtAxis } from './ew-util.js';

// Reduce* (axes as the optional second input, opset 18 form) and ArgMax/ArgMin.

type ReduceKind = 'mean' | 'sum' | 'max' | 'min' | 'prod' | 'l1' | 'l2' | 'sumsquare' | 'logsumexp' | 'logsum';

export interface ReduceAttrs {
  readonly keepdims: boolean;
  readonly noopWithEmptyAxes: boolean;
  // Pre-opset-18 attribute form, honoured only when no axes input is given (the importer normally moves it).
  readonly axes: readonly number[] | null;
}

function reduceAttrs(r: AttrReader): ReduceAttrs {
  return {
    keepdims: r.int('keepdims', 1) !== 0,
    noopWithEmptyAxes: r.int('noop_with_empty_axes', 0) !== 0,
    axes: r.has('axes') ? [...r.ints('axes')] : null,
  };
}

// The reduced axes (sorted, unique). With noop_with_empty_axes, empty axes reduce nothing; the
// per-element part (abs, square, log) still applies, as in the ONNX reference and onnxruntime.
function resolveAxes(a: ReduceAttrs, axesArg: { value?: Tensor; dims?: readonly Dim[] } | null | undefined, rank: number, where: string): number[] {
  let list: readonly number[];
  if (axesArg) {
    if (axesArg.value) list = toIntList(axesArg.value);
    else if (allNumbers(axesArg.dims)) list = axesArg.dims;
    else fail('UNSUPPORTED_FEATURE', `${where}: input 1 (axes) must be a constant; axes computed at run time are not supported`);
  } else list = a.axes ?? [];
  if (list.length === 0) {
    if (a.noopWithEmptyAxes) return [];
    return Array.from({ length: rank }, (_, i) => i);
  }
  return [...new Set(list.map((x) => normalizeAxis(x, rank, `${where}: input 1 (axes)`)))].sort((x, y) => x - y);
}

function reducedShape<D extends Dim>(shape: readonly D[], axes: readonly number[], keepdims: boolean): D[] {
  const out: D[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepdims) out.push(1 as D);
  });
  return out;
}

function reduceValues(kind: ReduceKind, x: ArrayLike<number>, shape: readonly number[], axes: readonly number[]): Float64Array {
  const keep = reducedShape(shape, axes, true);
  const m = numel(keep);
  const n = x.length;
  const idx = broadcastIndex(keep, shape);
  const at = (i: number): number => (idx ? idx[i]! : i);
  const acc = new Float64Array(m);
  switch (kind) {
    case 'max':
    case 'logsumexp':
      acc.fill(-Infinity);
      for (let i = 0; i < n; i++) {
        const o = at(i);
        const v = x[i]!;
        if (v > acc[o]! || Number.isNaN(v)) acc[o] = v;
      }
      break;
    case 'min':
      acc.fill(Infinity);
      for (let i = 0; i < n; i++) {
        const o = at(i);
        const v = x[i]!;
        if (v < acc[o]! || Number.isNaN(v)) acc[o] = v;
      }
      break;
    case 'prod':
      acc.fill(1);
      for (let i = 0; i < n; i++) acc[at(i)]! *= x[i]!;
      break;
    case 'sum':
    case 'mean':
    case 'logsum':
      for (let i = 0; i < n; i++) acc[at(i)]! += x[i]!;
      break;
    case 'l1':
      for (let i = 0; i < n; i++) acc[at(i)]! += Math.abs(x[i]!);
      break;
    case 'l2':
    case 'sumsquare':
      for (let i = 0; i < n; i++) acc[at(i)]! += x[i]! * x[i]!;
      break;
    default: {
      const never: never = kind;
      throw new Error(`unknown reduction ${String(never)}`);
    }
  }
  const count = m === 0 ? 0 : n / m;
  switch (kind) {
    case 'mean':
      for (let o = 0; o < m; o++) acc[o] = acc[o]! / count;
      break;
    case 'l2':
      for (let o = 0; o < m; o++) acc[o] = Math.sqrt(acc[o]!);
      break;
    case 'logsum':
      for (let o = 0; o < m; o++) acc[o] = Math.log(acc[o]!);
      break;
    case 'logsumexp': {
      const mx = acc.slice();
      acc.fill(0);
      for (let i = 0; i < n; i++) {
        const o = at(i);
        acc[o]! += Math.exp(x[i]! - mx[o]!);
      }
      for (let o = 0; o < m; o++) acc[o] = Number.isFinite(mx[o]!) ? mx[o]! + Math.log(acc[o]!) : mx[o]!;
      break;
    }
    default:
      break;
  }
  return acc;
}

// Numeric reductions of known 1-D shape contents (e.g. ReduceProd(Shape(x)) for a flatten size).
function foldReducedDims(kind: ReduceKind, dims: readonly Dim[] | undefined): Dim[] | undefined {
  if (!allNumbers(dims) || dims.length === 0) return undefined;
  switch (kind) {
    case 'sum':
      return [dims.reduce((p, v) => p + v, 0)];
    case 'prod':
      return [dims.reduce((p, v) => p * v, 1)];
    case 'max':
      return [Math.max(...dims)];
    case 'min':
      return [Math.min(...dims)];
    default:
      return undefined;
  }
}

function reduceOp(name: string, kind: ReduceKind): OpDef<ReduceAttrs> {
  return defineOp<ReduceAttrs>({
    name,
    inputs: [1, 2],
    outputs: [1, 1],
    attrs: reduceAttrs,
    infer: (a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (data)');
      requireTypeIn(x.type.dtype, NUMERIC, where, 'input 0 (data)');
      const axesArg = inputs[1];
      if (axesArg && axesArg.type.dtype !== 'i64') fail('SHAPE', `${where}: input 1 (axes) has dtype ${axesArg.type.dtype}; expected i64`);
      const axes = resolveAxes(a, axesArg, x.type.shape.length, where);
      const type = { dtype: x.type.dtype, shape: reducedShape(x.type.shape, axes, a.keepdims) };
      const dims = x.type.shape.length === 1 && axes.length === 1 ? foldReducedDims(kind, x.dims) : undefined;
      return [dims ? { type, dims } : { type }];
    },
    evaluate: (a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (data)');
      const axesT = inputs[1];
      const axes = resolveAxes(a, axesT ? { value: axesT } : null, x.shape.length, where);
      const values = reduceValues(kind, readNumbers(x), x.shape, axes);
      return [fromNumbers(x.dtype, reducedShape(x.shape, axes, a.keepdims), values)];
    },
  });
}

interface ArgAttrs {
  readonly axis: number;
  readonly keepdims: boolean;
  readonly selectLastIndex: boolean;
}

function argOp(name: string, better: (v: number, best: number) => boolean): OpDef<ArgAttrs> {
  const outShape = <D extends Dim>(shape: readonly D[], axis: number, keepdims: boolean): D[] => reducedShape(shape, [axis], keepdims);
  return defineOp<ArgAttrs>({
    name,
    inputs: [1, 1],
    outputs: [1, 1],
    attrs: (r) => ({ axis: r.int('axis', 0), keepdims: r.int('keepdims', 1) !== 0, selectLastIndex: r.int('select_last_index', 0) !== 0 }),
    infer: (a, inputs, where) => {
      const x: InferArg = requireInput(inputs, 0, where, 'input 0 (data)');
      requireTypeIn(x.type.dtype, NUMERIC, where, 'input 0 (data)');
      const shape: Shape = x.type.shape;
      const axis = normalizeAxis(a.axis, shape.length, `${where}: attribute axis`);
      return [{ type: { dtype: 'i64', shape: outShape(shape, axis, a.keepdims) } }];
    },
    evaluate: (a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (data)');
      const { axis, outer, len, inner } = splitAtAxis(x.shape, a.axis, where);
      const v = readNumbers(x);
      const out = new BigInt64Array(outer * inner);
      for (let o = 0; o < outer; o++) {
        for (let j = 0; j < inner; j++) {
          const base = o * len * inner + j;
          let best = v[base]!;
          let bi = 0;
          for (let k = 1; k < len; k++) {
            const e = v[base + k * inner]!;
            if (better(e, best) || (a.selectLastIndex && e === best)) {
              best = e;
              bi = k;
            }
          }
          out[o * inner + j] = BigInt(bi);
        }
      }
      return [makeTensor('i64', outShape(x.shape, axis, a.keepdims), out)];
    },
  });
}

export const reduceFamilyOps = {
  ReduceMean: reduceOp('ReduceMean', 'mean'),
  ReduceSum: reduceOp('ReduceSum', 'sum'),
  ReduceMax: reduceOp('ReduceMax', 'max'),
  ReduceMin: reduceOp('ReduceMin', 'min'),
  ReduceProd: reduceOp('ReduceProd', 'prod'),
  ReduceL1: reduceOp('ReduceL1', 'l1'),
  ReduceL2: reduceOp('ReduceL2', 'l2'),
  ReduceSumSquare: reduceOp('ReduceSumSquare', 'sumsquare'),
  ReduceLogSumExp: reduceOp('ReduceLogSumExp', 'logsumexp'),
  ReduceLogSum: reduceOp('ReduceLogSum', 'logsum'),
  ArgMax: argOp('ArgMax', (v, best) => v > best),
  ArgMin: argOp('ArgMin', (v, best) => v < best),
} as const;
