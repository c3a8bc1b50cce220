import { fail } from '../errors.js';
import { type InferArg, defineOp, requireInput } from '../op.js';
import { type Dim, type Shape, broadcastShapes, numel, shapeToString, stridesOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import type { Activation } from './activation.js';
import { applyActivationInPlace, f32Of, gemmNT, requireFloat, requireSameDType, tensorFromF32, transposeInto } from './la-kernels.js';

export interface GemmAttrs {
  readonly alpha: number;
  readonly beta: number;
  readonly transA: boolean;
  readonly transB: boolean;
  readonly activation: Activation | null; // epilogue after alpha*AB + beta*C; set by the fusion pass, null from import
}

export interface MatMulAttrs {
  readonly activation: Activation | null; // epilogue after the optional bias; set by the fusion pass
}

// Two contraction sizes must agree unless one is symbolic (then the model is trusted).
function checkK(ka: Dim, kb: Dim, where: string, a: Shape, b: Shape): void {
  if (typeof ka === 'number' && typeof kb === 'number' && ka !== kb) {
    fail('SHAPE', `${where}: inner dimensions differ (${ka} vs ${kb}) for A ${shapeToString(a)} and B ${shapeToString(b)}`);
  }
}

function gemmInfer(attrs: GemmAttrs, inputs: ReadonlyArray<InferArg | null>, where: string) {
  const a = requireInput(inputs, 0, where, 'input A').type;
  const b = requireInput(inputs, 1, where, 'input B').type;
  requireFloat(a, where, 'input A');
  requireSameDType(a, b, where, 'input B');
  if (a.shape.length !== 2 || b.shape.length !== 2) {
    fail('SHAPE', `${where}: A and B must be 2-D, got ${shapeToString(a.shape)} and ${shapeToString(b.shape)}`);
  }
  const [m, ka] = attrs.transA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
  const [kb, n] = attrs.transB ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
  checkK(ka, kb, where, a.shape, b.shape);
  const c = inputs[2];
  if (c) {
    requireSameDType(a, c.type, where, 'input C');
    const target: Dim[] = [m, n];
    const cs = c.type.shape;
    if (cs.length > 2) fail('SHAPE', `${where}: input C ${shapeToString(cs)} has rank > 2`);
    cs.forEach((d, i) => {
      const t = target[2 - cs.length + i]!;
      if (d !== 1 && d !== t && typeof t === 'number') {
        fail('SHAPE', `${where}: input C ${shapeToString(cs)} does not broadcast to [${m},${n}]`);
      }
    });
  }
  return [{ type: { dtype: a.dtype, shape: [m, n] } }];
}

function gemmEvaluate(attrs: GemmAttrs, inputs: ReadonlyArray<Tensor | null>, where: string): Tensor[] {
  const A = requireInput(inputs, 0, where, 'input A');
  const B = requireInput(inputs, 1, where, 'input B');
  const C = inputs[2] ?? null;
  const [m, k] = attrs.transA ? [A.shape[1]!, A.shape[0]!] : [A.shape[0]!, A.shape[1]!];
  const n = attrs.transB ? B.shape[0]! : B.shape[1]!;
  const kb = attrs.transB ? B.shape[1]! : B.shape[0]!;
  if (k !== kb) fail('EVAL', `${where}: inner dimensions differ (${k} vs ${kb})`);
  let a = f32Of(A);
  if (attrs.transA) {
    const t = new Float32Array(m * k);
    transposeInto(a, 0, k, m, t, 0);
    a = t;
  }
  let bt = f32Of(B);
  if (!attrs.transB) {
    const t = new Float32Array(n * k);
    transposeInto(bt, 0, k, n, t, 0);
    bt = t;
  }
  const out = new Float32Array(m * n);
  gemmNT(m, n, k, a, 0, bt, 0, out, 0, n);
  if (attrs.alpha !== 1) for (let i = 0; i < out.length; i++) out[i] = out[i]! * attrs.alpha;
  if (C && attrs.beta !== 0) {
    const c = f32Of(C);
    const cs = [...new Array<number>(2 - C.shape.length).fill(1), ...C.shape];
    if ((cs[0] !== 1 && cs[0] !== m) || (cs[1] !== 1 && cs[1] !== n))
      fail('EVAL', `${where}: input C ${shapeToString(C.shape)} does not broadcast to [${m},${n}]`);
    const sm = cs[0] === 1 ? 0 : cs[1]!;
    const sn = cs[1] === 1 ? 0 : 1;
    const beta = attrs.beta;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) out[i * n + j] = out[i * n + j]! + beta * c[i * sm + j * sn]!;
    }
  }
  applyActivationInPlace(attrs.activation, out);
  return [tensorFromF32(A.dtype, [m, n], out)];
}

interface MatMulShapes {
  readonly batch: Dim[];
  readonly m: Dim;
  readonly k: Dim;
  readonly n: Dim;
  readonly out: Dim[];
}

// numpy matmul: 1-D operands are promoted (and the promoted dim dropped), leading dims broadcast.
function matmulShapes(a: Shape, b: Shape, where: string): MatMulShapes {
  if (a.length === 0 || b.length === 0) fail('SHAPE', `${where}: MatMul operands must have rank >= 1, got ${shapeToString(a)} and ${shapeToString(b)}`);
  const a2 = a.length === 1 ? [1, a[0]!] : a;
  const b2 = b.length === 1 ? [b[0]!, 1] : b;
  const m = a2[a2.length - 2]!;
  const k = a2[a2.length - 1]!;
  checkK(k, b2[b2.length - 2]!, where, a, b);
  const n = b2[b2.length - 1]!;
  const batch = broadcastShapes([a2.slice(0, -2), b2.slice(0, -2)], where);
  const out: Dim[] = [...batch];
  if (a.length > 1) out.push(m);
  if (b.length > 1) out.push(n);
  return { batch, m, k, n, out };
}

function matmulInfer(_attrs: MatMulAttrs, inputs: ReadonlyArray<InferArg | null>, where: string) {
  const a = requireInput(inputs, 0, where, 'input A').type;
  const b = requireInput(inputs, 1, where, 'input B').type;
  requireFloat(a, where, 'input A');
  requireSameDType(a, b, where, 'input B');
  const s = matmulShapes(a.shape, b.shape, where);
  const bias = inputs[2];
  if (bias) {
    requireSameDType(a, bias.type, where, 'input bias');
    const bs = bias.type.shape;
    if (b.shape.length < 2 || bs.length !== 1 || (bs[0] !== s.n && typeof s.n === 'number')) {
      fail('SHAPE', `${where}: input bias ${shapeToString(bs)} must be 1-D [${s.n}] (the last dim of B ${shapeToString(b.shape)})`);
    }
  }
  return [{ type: { dtype: a.dtype, shape: s.out } }];
}

// Element offset of each output batch matrix inside an operand whose batch dims broadcast to `batch`.
function batchOffsets(batch: readonly number[], own: readonly number[], matSize: number): number[] {
  const total = numel(batch);
  const padded = [...new Array<number>(batch.length - own.length).fill(1), ...own];
  const ownStrides = stridesOf(padded);
  const offs = new Array<number>(total);
  for (let idx = 0; idx < total; idx++) {
    let rem = idx;
    let off = 0;
    for (let d = batch.length - 1; d >= 0; d--) {
      const i = rem % batch[d]!;
      rem = Math.floor(rem / batch[d]!);
      if (padded[d] !== 1) off += i * ownStrides[d]!;
    }
    offs[idx] = off * matSize;
  }
  return offs;
}

function matmulEvaluate(attrs: MatMulAttrs, inputs: ReadonlyArray<Tensor | null>, where: string): Tensor[] {
  const A = requireInput(inputs, 0, where, 'input A');
  const B = requireInput(inputs, 1, where, 'input B');
  const bias = inputs[2] ?? null;
  const s = matmulShapes(A.shape, B.shape, where);
  const m = s.m as number;
  const k = s.k as number;
  const n = s.n as number;
  const batch = s.batch as number[];
  const aBatch = A.shape.length > 2 ? A.shape.slice(0, -2) : [];
  const bBatch = B.shape.length > 2 ? B.shape.slice(0, -2) : [];
  const a = f32Of(A);
  const b = f32Of(B);
  // Each distinct B matrix is transposed once to [N, K] so the kernel reads both operands along k.
  const bCount = numel(bBatch);
  const bt = new Float32Array(bCount * n * k);
  for (let i = 0; i < bCount; i++) transposeInto(b, i * k * n, k, n, bt, i * k * n);
  const total = numel(batch);
  const out = new Float32Array(total * m * n);
  if (bCount === 1) {
    // One shared B: all of A's rows form a single tall GEMM (A's batch equals the output batch here).
    gemmNT(total * m, n, k, a, 0, bt, 0, out, 0, n);
  } else {
    const aOffs = batchOffsets(batch, aBatch, m * k);
    const bOffs = batchOffsets(batch, bBatch, k * n);
    for (let i = 0; i < total; i++) gemmNT(m, n, k, a, aOffs[i]!, bt, bOffs[i]!, out, i * m * n, n);
  }
  if (bias) {
    const bv = f32Of(bias);
    if (bv.length !== n) fail('EVAL', `${where}: input bias has ${bv.length} elements; expected ${n}`);
    for (let r = 0; r < total * m; r++) for (let j = 0; j < n; j++) out[r * n + j] = out[r * n + j]! + bv[j]!;
  }
  applyActivationInPlace(attrs.activation, out);
  return [tensorFromF32(A.dtype, s.out as number[], out)];
}

export const gemmOps = {
  Gemm: defineOp<GemmAttrs>({
    name: 'Gemm',
    inputs: [2, 3],
    outputs: [1, 1],
    attrs: (r) => ({
      alpha: r.float('alpha', 1),
      beta: r.float('beta', 1),
      transA: r.int('transA', 0) !== 0,
      transB: r.int('transB', 0) !== 0,
      activation: null,
    }),
    infer: gemmInfer,
    evaluate: gemmEvaluate,
  }),
  // IR extension: optional 3rd input bias [N] and an activation epilogue (both added by fusion passes).
  MatMul: defineOp<MatMulAttrs>({
    name: 'MatMul',
    inputs: [2, 3],
    outputs: [1, 1],
    attrs: () => ({ activation: null }),
    infer: matmulInfer,
    evaluate: matmulEvaluate,
  }),
} as const;
