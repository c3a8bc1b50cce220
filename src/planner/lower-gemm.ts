// GEMM-like nodes → GEMM steps: Gemm, MatMul (dense layers, and batched products of two activations as one
// entry per broadcast batch index), Conv (im2col + one GEMM per image and group, bias per output channel)
// and ConvTranspose (GEMM + col2im).
import { checkComputedTensor } from '../../ir/limits.js';
import { byteSize } from '../../ir/dtype.js';
import { fail } from '../../ir/errors.js';
import type { Node, ValueId } from '../../ir/graph.js';
import { type Activation, canonicalActivation } from '../../ir/ops/activation.js';
import type { ConvAttrs } from '../../ir/ops/conv.js';
import { convTransposeGeometry } from '../../ir/ops/conv-transpose.js';
import type { GemmAttrs, MatMulAttrs } from '../../ir/ops/gemm.js';
import { resolveWindow } from '../../ir/ops/window.js';
import { broadcastShapes, numel } from '../../ir/shape.js';
import { fromNumbers, makeTensor, toNumbers } from '../../ir/tensor.js';
import type { GemmProblem, PoolGeometry } from '../../ir/contract/launch.js';
import type { Loc, TenantLowering } from './lower-context.js';
import type { DraftGemmEntry, LRef } from './steps.js';

function problem(p: Partial<GemmProblem> & Pick<GemmProblem, 'm' | 'n' | 'k' | 'lda' | 'ldb' | 'ldc'>): GemmProblem {
  return {
    transA: false,
    transB: false,
    alpha: 1,
    beta: 1,
    bias: 'none',
    ldBias: 0,
    activation: null,
    ...p,
  };
}

const at = (l: Loc, elems: number): LRef => ({ buf: l.ref.buf, offset: l.ref.offset + elems * byteSize(l.dtype) });

// GEMM operands must be f32 in the model; in bf16/fp16 plans they are then converted (cx.gemmOperand).
function requireF32(cx: TenantLowering, ...ids: Array<ValueId | null | undefined>): void {
  for (const v of ids) {
    const dt = v == null ? 'missing' : cx.dtypeOf(v);
    if (dt !== 'f32') fail('UNSUPPORTED_FEATURE', `${cx.where()}: GEMM operands must be f32, got ${dt}`);
  }
}

export function lowerGemm(cx: TenantLowering, n: Extract<Node, { op: 'Gemm' }>): void {
  const a: GemmAttrs = n.attrs;
  requireF32(cx, n.inputs[0], n.inputs[1]);
  const A = cx.gemmOperand(n.inputs[0]!);
  const B = cx.gemmOperand(n.inputs[1]!);
  const [m, k] = a.transA ? [A.shape[1]!, A.shape[0]!] : [A.shape[0]!, A.shape[1]!];
  const nn = a.transB ? B.shape[0]! : B.shape[1]!;
  const Y = cx.newValue(n.outputs[0]!);
  let bias: LRef | null = null;
  let mode: GemmProblem['bias'] = 'none';
  let ldBias = 0;
  const cId = n.inputs[2] ?? null;
  if (cId !== null && a.beta !== 0) {
    const c = cx.constantOf(cId);
    const cs = cx.shapeOf(cId);
    const full = [...new Array<number>(2 - cs.length).fill(1), ...cs];
    if (full[0] === 1 && full[1] === nn) [mode, bias] = ['row', cx.loc(cId).ref];
    else if (full[1] === 1 && full[0] === m && m !== 1) [mode, bias] = ['col', cx.loc(cId).ref];
    else if (full[0] === m && full[1] === nn) [mode, bias] = ['full', cx.loc(cId).ref];
    else if (c && full[0] === 1) [mode, bias] = ['row', cx.weight(`${n.name}_bias`, broadcastTo(c, [nn])).ref];
    else if (c) {
      checkComputedTensor(cx.limits, `${cx.where()}: bias broadcast to [${m},${nn}]`, [m, nn], c.dtype);
      [mode, bias] = ['full', cx.weight(`${n.name}_bias`, broadcastTo(c, [m, nn])).ref];
    } else [mode, bias] = ['full', expandRuntime(cx, cId, [m, nn])];
    if (mode === 'full') ldBias = nn;
  }
  const p = problem({
    m,
    n: nn,
    k,
    transA: a.transA,
    transB: a.transB,
    lda: A.shape[1]!,
    ldb: B.shape[1]!,
    ldc: nn,
    alpha: a.alpha,
    beta: a.beta,
    bias: mode,
    ldBias,
    activation: a.activation,
  });
  const rowsUnit = a.transA ? undefined : cx.rowsUnit(n.inputs[0]!, m, k);
  cx.gemm(cx.gemmDType, p, [{ a: A.ref, b: B.ref, c: Y.ref, bias }], [], rowsUnit);
}

// A runtime Gemm C of a broadcast shape, materialized as [m, n] by a copy.
function expandRuntime(cx: TenantLowering, cId: NonNullable<Node['inputs'][number]>, shape: readonly number[]): LRef {
  const c = cx.loc(cId);
  const full = [...new Array<number>(2 - c.shape.length).fill(1), ...c.shape];
  const t = cx.temp(`${cx.node?.name ?? 'gemm'}_c`, c.dtype, shape);
  const st = cx.contiguous(full);
  cx.kernel({ op: 'copy' }, [
    {
      shape,
      inputs: [{ ref: c.ref, dtype: c.dtype, strides: full.map((d, i) => (d === 1 ? 0 : st[i]!)) }],
      out: t.ref,
      outDType: c.dtype,
      outStrides: cx.contiguous(shape),
    },
  ]);
  return t.ref;
}

export function broadcastTo(
  t: { dtype: import('../../ir/dtype.js').DType; shape: readonly number[]; data: unknown },
  shape: readonly number[],
): import('../../ir/tensor.js').Tensor {
  const src = toNumbers(t as import('../../ir/tensor.js').Tensor);
  const r = shape.length;
  const s = [...new Array<number>(Math.max(0, r - t.shape.length)).fill(1), ...t.shape];
  const sst: number[] = [];
  let acc = 1;
  for (let i = r - 1; i >= 0; i--) {
    sst[i] = s[i] === 1 ? 0 : acc;
    acc *= s[i]!;
  }
  const n = numel(shape);
  const out = new Float64Array(n);
  const idx = new Array<number>(r).fill(0);
  for (let i = 0; i < n; i++) {
    let off = 0;
    for (let d = 0; d < r; d++) off += idx[d]! * sst[d]!;
    out[i] = src[off]!;
    for (let d = r - 1; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
  return fromNumbers(t.dtype, shape, out);
}

export function lowerMatMul(cx: TenantLowering, n: Extract<Node, { op: 'MatMul' }>): void {
  const attrs: MatMulAttrs = n.attrs;
  requireF32(cx, n.inputs[0], n.inputs[1]);
  const A = cx.gemmOperand(n.inputs[0]!);
  const B = cx.gemmOperand(n.inputs[1]!);
  const Y = cx.newValue(n.outputs[0]!);
  const biasId = n.inputs[2] ?? null;
  const aS = A.shape.length === 1 ? [1, A.shape[0]!] : A.shape;
  const bS = B.shape.length === 1 ? [B.shape[0]!, 1] : B.shape;
  const M = aS[aS.length - 2]!;
  const K = aS[aS.length - 1]!;
  const N = bS[bS.length - 1]!;
  const aBatch = aS.slice(0, -2);
  const bBatch = bS.slice(0, -2);
  let bias: LRef | null = null;
  if (biasId !== null) {
    if (numel(cx.shapeOf(biasId)) !== N) fail('UNSUPPORTED_FEATURE', `${cx.where()}: MatMul bias must hold ${N} values`);
    bias = cx.loc(biasId).ref;
  }
  const base = { n: N, k: K, lda: K, ldb: N, ldc: N, bias: bias ? ('row' as const) : ('none' as const), activation: attrs.activation as Activation | null };
  if (numel(bBatch) === 1) {
    // B is one matrix: A's batch dims fold into rows
    const rows = numel(aBatch) * M;
    cx.gemm(cx.gemmDType, problem({ ...base, m: rows }), [{ a: A.ref, b: B.ref, c: Y.ref, bias }], [], cx.rowsUnit(n.inputs[0]!, rows, K));
    return;
  }
  const batch = broadcastShapes([aBatch, bBatch], cx.where()) as number[];
  const aSt = batchStrides(aBatch, batch, M * K);
  const bSt = batchStrides(bBatch, batch, K * N);
  const entries: DraftGemmEntry[] = [];
  const total = numel(batch);
  const idx = new Array<number>(batch.length).fill(0);
  for (let i = 0; i < total; i++) {
    let ao = 0;
    let bo = 0;
    for (let d = 0; d < batch.length; d++) {
      ao += idx[d]! * aSt[d]!;
      bo += idx[d]! * bSt[d]!;
    }
    entries.push({ a: at(A, ao), b: at(B, bo), c: at(Y, i * M * N), bias });
    for (let d = batch.length - 1; d >= 0; d--) {
      if (++idx[d]! < batch[d]!) break;
      idx[d] = 0;
    }
  }
  cx.gemm(cx.gemmDType, problem({ ...base, m: M }), entries);
}

// Element strides of each batch index into an operand whose batch dims broadcast to `batch`.
function batchStrides(own: readonly number[], batch: readonly number[], matrix: number): number[] {
  const r = batch.length;
  const s = [...new Array<number>(r - own.length).fill(1), ...own];
  const st = new Array<number>(r).fill(0);
  let acc = matrix;
  for (let i = r - 1; i >= 0; i--) {
    st[i] = s[i] === 1 ? 0 : acc;
    acc *= s[i]!;
  }
  return st;
}

interface Spatial {
  readonly h: number;
  readonly w: number;
}

function spatialOf(shape: readonly number[], where: string): Spatial {
  if (shape.length === 3) return { h: 1, w: shape[2]! };
  if (shape.length === 4) return { h: shape[2]!, w: shape[3]! };
  return fail('UNSUPPORTED_FEATURE', `${where}: only 1-D and 2-D convolutions are supported, got input rank ${shape.length}`);
}

export function lowerConv(cx: TenantLowering, n: Extract<Node, { op: 'Conv' }>): void {
  const attrs: ConvAttrs = n.attrs;
  requireF32(cx, n.inputs[0], n.inputs[1]);
  if (isDepthwise(cx, n)) return lowerDepthwise(cx, n);
  // bf16/fp16: X is cast before im2col (kh·kw times fewer elements than the columns)
  const X = cx.gemmOperand(n.inputs[0]!);
  const dt = cx.gemmDType;
  const where = cx.where();
  const { h, w } = spatialOf(X.shape, where);
  const rank = X.shape.length - 2;
  const wShape = cx.shapeOf(n.inputs[1]!);
  const kernel = wShape.slice(2);
  const win = resolveWindow(attrs, X.shape.slice(2), kernel, false, where);
  const Y = cx.newValue(n.outputs[0]!);
  const [N, C] = [X.shape[0]!, X.shape[1]!];
  const M = wShape[0]!;
  const G = attrs.group;
  const cg = C / G;
  const mg = M / G;
  const { kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, oh, ow } = window2d(win, rank);
  const ohw = oh * ow;
  const K = cg * kh * kw;
  const direct = kh === 1 && kw === 1 && sh === 1 && sw === 1 && pt === 0 && pl === 0 && pb === 0 && pr === 0;
  const biasId = n.inputs[2] ?? null;
  // one image's window geometry (an im2col segment's, a conv kernel segment's)
  const geom: PoolGeometry = { n: 1, c: C, h, w, oh, ow, kh, kw, sh, sw, padTop: pt, padLeft: pl, padBottom: pb, padRight: pr, dh, dw };
  if (!direct && G === 1 && lowerConvKernel(cx, { X, Y, wId: n.inputs[1]!, biasId, geom, M, N, activation: canonicalActivation(attrs.activation) })) return;
  const folded = direct ? null : biasAsRow(cx, n.inputs[1]!, biasId, M, K, G);
  const W = folded ?? cx.gemmOperand(n.inputs[1]!);
  const Kg = folded ? K + 1 : K; // the GEMM's k: the bias row after the conv's
  let cols: Loc = X;
  let colsPerImage = C * h * w;
  if (!direct) {
    colsPerImage = Kg * G * ohw;
    cols = cx.temp(`${n.name}_cols`, dt, [N, Kg * G, ohw]);
    const segs = [];
    for (let i = 0; i < N; i++) {
      segs.push({ geom, inputs: [{ ref: at(X, i * C * h * w), dtype: dt, strides: [h * w, w, 1] }], out: at(cols, i * colsPerImage), outDType: dt });
    }
    // With the bias folded, the row of ones its column multiplies follows each image's columns: the im2col
    // writes it too (rewritten every tick: the activation memory under it is shared with other values).
    cx.kernel(folded ? { op: 'im2col', ones: true } : { op: 'im2col' }, segs);
  }
  const B = folded || biasId === null ? null : cx.loc(biasId);
  const entries: DraftGemmEntry[] = [];
  for (let i = 0; i < N; i++) {
    for (let gi = 0; gi < G; gi++) {
      entries.push({
        a: at(W, gi * mg * Kg),
        b: at(cols, i * colsPerImage + gi * Kg * ohw),
        c: at(Y, i * M * ohw + gi * mg * ohw),
        bias: B ? at(B, gi * mg) : null,
      });
    }
  }
  const p = problem({ m: mg, n: ohw, k: Kg, lda: Kg, ldb: ohw, ldc: ohw, bias: B ? 'col' : 'none', activation: attrs.activation });
  cx.gemm(dt, p, entries);
}

// An f32 conv as one generated kernel per launch (PlanOptions.convKernel 'implicit'; KernelOp conv): each image a
// segment, the filter reordered to [M, kh, kw, C] (taps outer, channels inner: a k step of the kernel is then one
// window position over 8 channels), the bias, a pending residual (lower-residual.ts) and the activation fused. f32
// plans, one group, a constant f32 filter. False: not taken (the im2col and GEMM lowering follows).
interface ConvKernelArgs {
  readonly X: Loc;
  readonly Y: Loc;
  readonly wId: ValueId;
  readonly biasId: ValueId | null;
  readonly geom: PoolGeometry;
  readonly M: number;
  readonly N: number;
  readonly activation: Activation | null;
}

function lowerConvKernel(cx: TenantLowering, a: ConvKernelArgs): boolean {
  if (cx.fleet.convKernel !== 'implicit' || cx.gemmDType !== 'f32' || a.X.dtype !== 'f32' || a.Y.dtype !== 'f32') return false;
  const g = a.geom;
  const K = g.c * g.kh * g.kw;
  const Wc = cx.constantOf(a.wId);
  if (Wc === undefined || Wc.dtype !== 'f32' || numel(Wc.shape) !== a.M * K) return false;
  const B = a.biasId === null ? null : cx.loc(a.biasId);
  if (B !== null && (B.dtype !== 'f32' || numel(B.shape) !== a.M)) return false;
  const src = Wc.data as Float32Array;
  const t = makeTensor('f32', [a.M, g.kh, g.kw, g.c]);
  const hwc = t.data as Float32Array;
  const taps = g.kh * g.kw;
  for (let m = 0; m < a.M; m++) for (let c = 0; c < g.c; c++) for (let tap = 0; tap < taps; tap++) hwc[m * K + tap * g.c + c] = src[m * K + c * taps + tap]!;
  const W = cx.weight(`${cx.g.values.get(a.wId)!.name}_hwc`, t);
  const res = cx.takeResidual();
  const R = res === null ? null : res.loc;
  const ohw = g.oh * g.ow;
  const view = (ref: LRef) => ({ ref, dtype: 'f32' as const, strides: [] });
  const segs = [];
  for (let i = 0; i < a.N; i++) {
    const inputs = [view(at(a.X, i * g.c * g.h * g.w)), view(W.ref), ...(B ? [view(B.ref)] : []), ...(R ? [view(at(R, i * a.M * ohw))] : [])];
    segs.push({ geom: g, dims: [a.M], inputs, out: at(a.Y, i * a.M * ohw), outDType: 'f32' as const });
  }
  cx.kernel({ op: 'conv', activation: a.activation, bias: B !== null, residual: R !== null }, segs);
  return true;
}

// An f32 conv's bias as one more row of its GEMM's k (PlanOptions.convBiasInGemm): W [M × K] becomes [M × (K+1)]
// with the bias as its last column, and the im2col columns gain a row of ones, so A·B adds the bias inside the
// GEMM. No cuBLASLt epilogue takes a per-channel (per-row of C) bias, so otherwise every such conv is a GEMM and
// an epilogue kernel pass over its output; folded, what epilogue is left (ReLU, a residual) cuBLASLt fuses.
// f32 plans only (a bf16 / fp16 bias row would round the bias to the operands' precision), one group (the ones
// row of each group's columns would break the im2col's layout), and W and the bias constants. Null: not folded.
function biasAsRow(cx: TenantLowering, wId: ValueId, biasId: ValueId | null, M: number, K: number, G: number): Loc | null {
  if (cx.fleet.convBiasInGemm === false || cx.gemmDType !== 'f32' || G !== 1 || biasId === null) return null;
  const Wc = cx.constantOf(wId);
  const Bc = cx.constantOf(biasId);
  if (Wc === undefined || Bc === undefined || Wc.dtype !== 'f32' || Bc.dtype !== 'f32') return null;
  if (numel(Wc.shape) !== M * K || numel(Bc.shape) !== M) return null;
  const w = Wc.data as Float32Array;
  const b = Bc.data as Float32Array;
  const t = makeTensor('f32', [M, K + 1]);
  const out = t.data as Float32Array;
  for (let r = 0; r < M; r++) {
    out.set(w.subarray(r * K, (r + 1) * K), r * (K + 1));
    out[r * (K + 1) + K] = b[r]!;
  }
  return cx.weight(`${cx.g.values.get(wId)!.name}_with_bias`, t);
}

// Conv with one filter per input channel (group = C_in = C_out): a GEMM per (image, channel) of k = kh·kw
// would be tiny, so it is one generated 'depthwise' kernel over every tenant's images and channels.
export function isDepthwise(cx: TenantLowering, n: Extract<Node, { op: 'Conv' }>): boolean {
  const C = cx.shapeOf(n.inputs[0]!)[1];
  const W = cx.shapeOf(n.inputs[1]!);
  return C !== undefined && C > 1 && n.attrs.group === C && W[0] === C && W[1] === 1;
}

// Computed in f32 in every precision (no GEMM, so no operand casts): input, weights and output stay f32.
function lowerDepthwise(cx: TenantLowering, n: Extract<Node, { op: 'Conv' }>): void {
  const attrs: ConvAttrs = n.attrs;
  const X = cx.loc(n.inputs[0]!);
  const W = cx.loc(n.inputs[1]!);
  const where = cx.where();
  const { h, w } = spatialOf(X.shape, where);
  const rank = X.shape.length - 2;
  const win = resolveWindow(attrs, X.shape.slice(2), W.shape.slice(2), false, where);
  const Y = cx.newValue(n.outputs[0]!);
  const [N, C] = [X.shape[0]!, X.shape[1]!];
  const { kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, oh, ow } = window2d(win, rank);
  const geom: PoolGeometry = { n: N, c: C, h, w, oh, ow, kh, kw, sh, sw, padTop: pt, padLeft: pl, padBottom: pb, padRight: pr, dh, dw };
  const biasId = n.inputs[2] ?? null;
  const view = (l: Loc) => ({ ref: l.ref, dtype: l.dtype, strides: [] });
  const inputs = [view(X), view(W), ...(biasId === null ? [] : [view(cx.loc(biasId))])];
  cx.kernel({ op: 'depthwise', activation: canonicalActivation(attrs.activation) }, [{ geom, inputs, out: Y.ref, outDType: Y.dtype }]);
}

export function lowerConvTranspose(cx: TenantLowering, n: Extract<Node, { op: 'ConvTranspose' }>): void {
  const attrs = n.attrs;
  requireF32(cx, n.inputs[0], n.inputs[1]);
  const X = cx.gemmOperand(n.inputs[0]!);
  const W = cx.gemmOperand(n.inputs[1]!);
  const where = cx.where();
  const { h, w } = spatialOf(X.shape, where);
  const rank = X.shape.length - 2;
  const biasId = n.inputs[2] ?? null;
  const geo = convTransposeGeometry(
    attrs,
    { dtype: 'f32', shape: X.shape },
    { dtype: 'f32', shape: W.shape },
    biasId === null ? null : { dtype: 'f32', shape: cx.shapeOf(biasId) },
    where,
  );
  const win = geo.window;
  const Y = cx.newValue(n.outputs[0]!);
  const [N, C] = [X.shape[0]!, X.shape[1]!];
  const G = attrs.group;
  const mg = W.shape[1]!;
  const M = mg * G;
  const cg = C / G;
  const { kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, oh, ow } = window2d(win, rank);
  const hw = h * w;
  const rowsG = mg * kh * kw;
  const cols = cx.temp(`${n.name}_cols`, 'f32', [N, M * kh * kw, hw]);
  const entries: DraftGemmEntry[] = [];
  for (let i = 0; i < N; i++) {
    for (let gi = 0; gi < G; gi++) {
      // W_g is [cg, mg*kh*kw]: cols_g = W_gᵀ · X_g
      entries.push({ a: at(W, gi * cg * rowsG), b: at(X, i * C * hw + gi * cg * hw), c: at(cols, (i * G + gi) * rowsG * hw), bias: null });
    }
  }
  cx.gemm(cx.gemmDType, problem({ m: rowsG, n: hw, k: cg, transA: true, lda: rowsG, ldb: hw, ldc: hw }), entries);
  const B = biasId === null ? null : cx.loc(biasId);
  const geom: PoolGeometry = { n: 1, c: M, h, w, oh, ow, kh, kw, sh, sw, padTop: pt, padLeft: pl, padBottom: pb, padRight: pr, dh, dw };
  const segs = [];
  for (let i = 0; i < N; i++) {
    const inputs = [{ ref: at(cols, i * M * kh * kw * hw), dtype: 'f32' as const, strides: [hw, 1] }];
    if (B) inputs.push({ ref: B.ref, dtype: 'f32', strides: [1] });
    segs.push({ geom, inputs, out: at(Y, i * M * oh * ow), outDType: 'f32' as const });
  }
  cx.kernel({ op: 'col2im' }, segs);
}

// A 1-D or 2-D conv window as 2-D numbers (a 1-D window is one with height 1).
function window2d(
  win: {
    readonly kernel: readonly (number | string)[];
    readonly strides: readonly (number | string)[];
    readonly dilations: readonly (number | string)[];
    readonly padsBegin: readonly (number | string)[];
    readonly padsEnd: readonly (number | string)[];
    readonly outSpatial: readonly (number | string)[];
  },
  rank: number,
) {
  const two = (v: readonly (number | string)[], d: number): [number, number] => (rank === 1 ? [d, v[0] as number] : [v[0] as number, v[1] as number]);
  const [kh, kw] = two(win.kernel, 1);
  const [sh, sw] = two(win.strides, 1);
  const [dh, dw] = two(win.dilations, 1);
  const [pt, pl] = two(win.padsBegin, 0);
  const [pb, pr] = two(win.padsEnd, 0);
  const [oh, ow] = two(win.outSpatial, 1);
  return { kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, oh, ow };
}
