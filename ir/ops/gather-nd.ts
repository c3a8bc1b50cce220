import { type AnyTypedArray, allocArray } from '../dtype.js';
import { fail } from '../errors.js';
import { type InferResult, defineOp, requireInput } from '../op.js';
import { type Dim, type Shape, numel, shapeToString, stridesOf } from '../shape.js';
import { type Tensor, type TensorType, makeTensor, toIntList } from '../tensor.js';
import { concrete, dataAndIndices, knownContents, withDims } from './layout-util.js';

// Index tuples into the leading axes of a tensor: GatherND and ScatterND. PyTorch's dynamo exporter
// emits GatherND for advanced indexing (e.g. BERT's padding mask: bool [N,16] by i64 [N,1,1,16,2]).

const INDEX_TYPES = ['i64'] as const; // the ONNX spec allows int64 indices only

export interface GatherNdAttrs {
  readonly batchDims: number;
}

export type ScatterNdReduction = 'none';

export interface ScatterNdAttrs {
  readonly reduction: ScatterNdReduction;
}

// Length of each index tuple: the last dim of indices, which must be static.
function tupleLength(idx: Shape, where: string): number {
  if (idx.length < 1) fail('SHAPE', `${where}: indices must have rank >= 1, got a scalar`);
  const k = idx[idx.length - 1]!;
  if (typeof k !== 'number') fail('SHAPE', `${where}: the last dim of indices ${shapeToString(idx)} is symbolic '${k}'; it must be static`);
  return k;
}

// Dims the op requires equal; a symbol against a number is left for evaluation to check.
function dimsClash(a: Dim, b: Dim): boolean {
  return a !== b && typeof a === typeof b;
}

function gatherNdShape(data: Shape, idx: Shape, b: number, where: string): [k: number, shape: Dim[]] {
  const r = data.length;
  const q = idx.length;
  if (r < 1) fail('SHAPE', `${where}: data must have rank >= 1, got a scalar`);
  const k = tupleLength(idx, where);
  if (!Number.isInteger(b) || b < 0 || b >= Math.min(q, r)) {
    fail(
      'SHAPE',
      `${where}: attribute batch_dims ${b} must be in [0, ${Math.min(q, r) - 1}] for data ${shapeToString(data)} and indices ${shapeToString(idx)}`,
    );
  }
  if (k < 1 || b + k > r) {
    fail(
      'SHAPE',
      `${where}: index tuples of length ${k} (last dim of indices ${shapeToString(idx)}) must be in [1, ${r - b}] for data ${shapeToString(data)} with batch_dims ${b}`,
    );
  }
  for (let i = 0; i < b; i++) {
    if (dimsClash(data[i]!, idx[i]!)) {
      fail('SHAPE', `${where}: batch dim ${i} differs between data ${shapeToString(data)} and indices ${shapeToString(idx)}`);
    }
  }
  return [k, [...idx.slice(0, q - 1), ...data.slice(b + k)]];
}

function scatterNdCheck(data: Shape, idx: Shape, upd: Shape, where: string): number {
  const k = tupleLength(idx, where);
  if (k < 1 || k > data.length) {
    fail(
      'SHAPE',
      `${where}: index tuples of length ${k} (last dim of indices ${shapeToString(idx)}) must be in [1, ${data.length}] for data ${shapeToString(data)}`,
    );
  }
  const want = [...idx.slice(0, -1), ...data.slice(k)];
  if (want.length !== upd.length || want.some((d, i) => dimsClash(d, upd[i]!))) {
    fail('SHAPE', `${where}: updates ${shapeToString(upd)} must have shape ${shapeToString(want)} (indices[:-1] + data[${k}:])`);
  }
  return k;
}

// Flat element offsets of each index tuple's slice; negative entries count from the end of their axis.
function tupleOffsets(dataShape: readonly number[], idx: Tensor, first: number, k: number, where: string): Int32Array {
  const raw = toIntList(idx);
  const st = stridesOf(dataShape);
  const out = new Int32Array(raw.length / k);
  for (let t = 0; t < out.length; t++) {
    let off = 0;
    for (let j = 0; j < k; j++) {
      const d = dataShape[first + j]!;
      const v = raw[t * k + j]!;
      const n = v < 0 ? v + d : v;
      if (n < 0 || n >= d) fail('EVAL', `${where}: indices value ${v} is out of range for data axis ${first + j} of size ${d}`);
      off += n * st[first + j]!;
    }
    out[t] = off;
  }
  return out;
}

function gatherNd(x: Tensor, idx: Tensor, b: number, where: string): Tensor {
  const [k, shapeDims] = gatherNdShape(x.shape, idx.shape, b, where);
  const shape = concrete(shapeDims, where, 'output');
  const batches = numel(x.shape.slice(0, b));
  const batchStride = numel(x.shape.slice(b));
  const slice = numel(x.shape.slice(b + k));
  const offs = tupleOffsets(x.shape, idx, b, k, where);
  const perBatch = batches === 0 ? 0 : offs.length / batches;
  const out = allocArray(x.dtype, numel(shape));
  const src = x.data as Float32Array;
  const dst = out as Float32Array;
  let pos = 0;
  for (let t = 0; t < offs.length; t++) {
    const base = Math.floor(t / perBatch) * batchStride + offs[t]!;
    if (slice === 1) dst[pos++] = src[base]!;
    else {
      dst.set(src.subarray(base, base + slice), pos);
      pos += slice;
    }
  }
  return makeTensor(x.dtype, shape, out);
}

function scatterNd(x: Tensor, idx: Tensor, upd: Tensor, where: string): Tensor {
  const k = scatterNdCheck(x.shape, idx.shape, upd.shape, where);
  if (upd.dtype !== x.dtype) fail('EVAL', `${where}: updates dtype ${upd.dtype} differs from data dtype ${x.dtype}`);
  const slice = numel(x.shape.slice(k));
  const offs = tupleOffsets(x.shape, idx, 0, k, where);
  const out = x.data.slice() as Float32Array;
  const src = upd.data as Float32Array;
  // Later tuples win on duplicates, as in onnxruntime's sequential loop (ONNX leaves it undefined).
  for (let t = 0; t < offs.length; t++) out.set(src.subarray(t * slice, (t + 1) * slice), offs[t]!);
  return makeTensor(x.dtype, x.shape, out as AnyTypedArray);
}

// `dims` of a 1-D gather from a known 1-D shape tensor by constant indices (shape sub-graphs).
function gatherNdDims(data: readonly Dim[] | undefined, idx: Tensor | undefined, out: TensorType): readonly Dim[] | undefined {
  if (!data || !idx || out.shape.length > 1) return undefined;
  const raw = toIntList(idx);
  const res: Dim[] = [];
  for (const v of raw) {
    const n = v < 0 ? v + data.length : v;
    if (n < 0 || n >= data.length) return undefined; // evaluate reports it
    res.push(data[n]!);
  }
  return res;
}

export const gatherNdOps = {
  GatherND: defineOp<GatherNdAttrs>({
    name: 'GatherND',
    inputs: [2, 2],
    outputs: [1, 1],
    attrs: (r) => ({ batchDims: r.int('batch_dims', 0) }),
    infer: (a, inputs, where): InferResult[] => {
      const [x, idx] = dataAndIndices(inputs, INDEX_TYPES, where);
      const [, shape] = gatherNdShape(x.type.shape, idx.type.shape, a.batchDims, where);
      const type = { dtype: x.type.dtype, shape };
      const data = x.type.shape.length === 1 ? knownContents(x) : undefined;
      return [withDims(type, gatherNdDims(data, idx.value, type))];
    },
    evaluate: (a, inputs, where) => [
      gatherNd(requireInput(inputs, 0, where, 'input 0 (data)'), requireInput(inputs, 1, where, 'input 1 (indices)'), a.batchDims, where),
    ],
  }),

  ScatterND: defineOp<ScatterNdAttrs>({
    name: 'ScatterND',
    inputs: [3, 3],
    outputs: [1, 1],
    attrs: (r) => {
      const reduction = r.string('reduction', 'none');
      if (reduction !== 'none') r.unsupported('reduction', `'${reduction}' is not implemented; only 'none' is`);
      return { reduction: 'none' };
    },
    infer: (_a, inputs, where): InferResult[] => {
      const [x, idx] = dataAndIndices(inputs, INDEX_TYPES, where);
      const upd = requireInput(inputs, 2, where, 'input 2 (updates)');
      if (upd.type.dtype !== x.type.dtype) fail('SHAPE', `${where}: input 2 (updates) has dtype ${upd.type.dtype}; expected the data dtype ${x.type.dtype}`);
      scatterNdCheck(x.type.shape, idx.type.shape, upd.type.shape, where);
      return [{ type: x.type }];
    },
    evaluate: (_a, inputs, where) => [
      scatterNd(
        requireInput(inputs, 0, where, 'input 0 (data)'),
        requireInput(inputs, 1, where, 'input 1 (indices)'),
        requireInput(inputs, 2, where, 'input 2 (updates)'),
        where,
      ),
    ],
  }),
} as const;
