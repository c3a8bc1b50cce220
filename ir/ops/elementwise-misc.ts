import { type DType, dtypeFromOnnx, isInteger } from '../dtype.js';
import { fail } from '../errors.js';
import { type InferArg, type InferResult, defineOp, noAttrs, requireInput } from '../op.js';
import type { Dim } from '../shape.js';
import { type Tensor, fromNumbers, makeTensor, toNumbers } from '../tensor.js';
import { readNumbers } from './ew-util.js';

// Type conversion and pass-through ops. These carry `dims` so shape arithmetic survives a Cast.

function castDims(dims: readonly Dim[] | undefined, to: DType): Dim[] | undefined {
  if (dims === undefined) return undefined;
  const out: Dim[] = [];
  for (const d of dims) {
    if (typeof d === 'string') {
      if (to === 'bool') return undefined; // a symbol's truth value is not known statically
      out.push(d); // symbols stand for whole positive sizes: unchanged by int/float casts
    } else if (to === 'bool') out.push(d !== 0 ? 1 : 0);
    else out.push(isInteger(to) ? Math.trunc(d) : d);
  }
  return out;
}

function castInfer(x: InferArg, to: DType): InferResult[] {
  const type = { dtype: to, shape: x.type.shape };
  const dims = castDims(x.dims, to);
  return [dims ? { type, dims } : { type }];
}

// C-style conversion as ONNX Cast does: floats truncate toward zero into integers, integers wrap.
export function castTensor(t: Tensor, to: DType): Tensor {
  if (t.dtype === to) return t;
  const n = t.data.length;
  if (to === 'bool') {
    const out = new Uint8Array(n);
    if (t.dtype === 'i64') {
      const src = t.data as BigInt64Array;
      for (let i = 0; i < n; i++) out[i] = src[i] !== 0n ? 1 : 0;
    } else {
      const src = readNumbers(t);
      for (let i = 0; i < n; i++) out[i] = src[i] !== 0 ? 1 : 0; // NaN is true
    }
    return makeTensor('bool', t.shape, out);
  }
  if (t.dtype === 'i64' && isInteger(to)) {
    // Exact wrap from 64 bits, where a detour through float64 would lose low bits.
    const src = t.data as BigInt64Array;
    const out = makeTensor(to, t.shape);
    const od = out.data as Int32Array;
    const bits = to === 'i32' ? 32 : 8;
    for (let i = 0; i < n; i++) od[i] = Number(to === 'u8' ? BigInt.asUintN(bits, src[i]!) : BigInt.asIntN(bits, src[i]!));
    return out;
  }
  if (to === 'i64' && (t.dtype === 'f32' || t.dtype === 'f64' || t.dtype === 'f16' || t.dtype === 'bf16')) {
    const src = toNumbers(t);
    const out = new BigInt64Array(n);
    for (let i = 0; i < n; i++) {
      const v = src[i]!;
      out[i] = Number.isFinite(v) ? BigInt.asIntN(64, BigInt(Math.trunc(v))) : -(2n ** 63n);
    }
    return makeTensor('i64', t.shape, out);
  }
  return fromNumbers(to, t.shape, readNumbers(t));
}

export const miscOps = {
  Cast: defineOp({
    name: 'Cast',
    inputs: [1, 1],
    outputs: [1, 1],
    // `saturate` only matters for float8 targets, which Loom does not support.
    attrs: (r) => ({ to: dtypeFromOnnx(r.int('to'), `${r.ctx.where}: attribute 'to'`) }),
    infer: (a, inputs, where) => castInfer(requireInput(inputs, 0, where, 'input 0 (input)'), a.to),
    evaluate: (a, inputs, where) => [castTensor(requireInput(inputs, 0, where, 'input 0 (input)'), a.to)],
  }),

  CastLike: defineOp({
    name: 'CastLike',
    inputs: [2, 2],
    outputs: [1, 1],
    attrs: noAttrs,
    infer: (_a, inputs, where) =>
      castInfer(requireInput(inputs, 0, where, 'input 0 (input)'), requireInput(inputs, 1, where, 'input 1 (target_type)').type.dtype),
    evaluate: (_a, inputs, where) => [
      castTensor(requireInput(inputs, 0, where, 'input 0 (input)'), requireInput(inputs, 1, where, 'input 1 (target_type)').dtype),
    ],
  }),

  Identity: defineOp({
    name: 'Identity',
    inputs: [1, 1],
    outputs: [1, 1],
    attrs: noAttrs,
    infer: (_a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (input)');
      return [x.dims ? { type: x.type, dims: x.dims } : { type: x.type }];
    },
    evaluate: (_a, inputs, where) => [requireInput(inputs, 0, where, 'input 0 (input)')],
  }),

  // Inference-mode Dropout: the identity, with an all-true mask when asked for.
  Dropout: defineOp({
    name: 'Dropout',
    inputs: [1, 3],
    outputs: [1, 2],
    attrs: noAttrs,
    infer: (_a, inputs, where, nOutputs) => {
      const x = requireInput(inputs, 0, where, 'input 0 (data)');
      const training = inputs[2]?.value;
      if (training && toNumbers(training)[0]) {
        fail('UNSUPPORTED_FEATURE', `${where}: input 2 (training_mode) is true; Loom runs Dropout in inference mode only`);
      }
      const out: InferResult[] = [x.dims ? { type: x.type, dims: x.dims } : { type: x.type }];
      if (nOutputs > 1) out.push({ type: { dtype: 'bool', shape: x.type.shape } });
      return out;
    },
    evaluate: (_a, inputs, where, nOutputs) => {
      const x = requireInput(inputs, 0, where, 'input 0 (data)');
      const out = [x];
      if (nOutputs > 1) out.push(makeTensor('bool', x.shape, new Uint8Array(x.data.length).fill(1)));
      return out;
    },
  }),
} as const;
