// The memory every launch touches, derived from its sizes and strides exactly as FORMAT.md defines them.
// Used to check that each ref stays inside its arena (at write time and when a plan is read back), and to
// check that each segment carries the fields its op needs.
import { byteSize, type DType } from '../dtype.js';
import { fail } from '../errors.js';
import {
  type GemmEntry,
  type GemmProblem,
  im2colRows,
  type KernelOp,
  type Launch,
  type Ref,
  SE_MAX_CHANNELS,
  SE_MAX_HIDDEN,
  type TensorView,
  type UncheckedSegment,
} from './launch.js';

export interface Access {
  readonly ref: Ref;
  readonly dtype: DType;
  readonly lo: number; // lowest element touched, relative to ref (negative strides reach below)
  readonly hi: number; // one past the highest element touched; lo == hi: nothing
  readonly what: string;
  readonly written?: boolean; // an output: must not lie in the read-only weights arena
}

function bad(where: string, msg: string): never {
  fail('PLAN_INVALID', `${where}: ${msg}`);
}

function prod(xs: readonly number[]): number {
  let p = 1;
  for (const x of xs) p *= x;
  return p;
}

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= 0;
}

// Element range of a strided view over `shape`.
export function stridedRange(shape: readonly number[], strides: readonly number[]): { lo: number; hi: number } {
  if (shape.some((d) => d === 0)) return { lo: 0, hi: 0 };
  let lo = 0;
  let hi = 0;
  shape.forEach((d, i) => {
    const s = strides[i]!;
    if (s > 0) hi += (d - 1) * s;
    else lo += (d - 1) * s;
  });
  return { lo, hi: hi + 1 };
}

function gemmAccesses(p: GemmProblem, dtype: DType, e: GemmEntry, where: string): Access[] {
  const span = (rows: number, cols: number, ld: number): number => (rows === 0 || cols === 0 ? 0 : (rows - 1) * ld + cols);
  const out: Access[] = [
    { ref: e.a, dtype, lo: 0, hi: p.transA ? span(p.k, p.m, p.lda) : span(p.m, p.k, p.lda), what: `${where} A` },
    { ref: e.b, dtype, lo: 0, hi: p.transB ? span(p.n, p.k, p.ldb) : span(p.k, p.n, p.ldb), what: `${where} B` },
    { ref: e.c, dtype: 'f32', lo: 0, hi: span(p.m, p.n, p.ldc), what: `${where} C`, written: true }, // C and bias are f32 for every gemm dtype
  ];
  if ((p.bias === 'none') !== (e.bias === null)) bad(where, `bias mode '${p.bias}' but the entry ${e.bias === null ? 'has no' : 'has a'} bias ref`);
  if (e.bias !== null) {
    const hi = p.bias === 'row' ? p.n : p.bias === 'col' ? p.m : span(p.m, p.n, p.ldBias);
    out.push({ ref: e.bias, dtype: 'f32', lo: 0, hi, what: `${where} bias` });
  }
  if ((p.residual === true) !== (e.residual !== undefined))
    bad(where, `residual ${p.residual === true ? 'on' : 'off'} but the entry ${e.residual === undefined ? 'has no' : 'has a'} residual ref`);
  if (e.residual !== undefined) out.push({ ref: e.residual, dtype: 'f32', lo: 0, hi: span(p.m, p.n, p.ldc), what: `${where} residual` });
  return out;
}

function checkGemmProblem(p: GemmProblem, where: string): void {
  for (const k of ['m', 'n', 'k', 'lda', 'ldb', 'ldc', 'ldBias'] as const)
    if (!isCount(p[k])) bad(where, `${k} must be a non-negative integer, got ${String(p[k])}`);
  const need = (ld: number, min: number, name: string): void => {
    if (ld < Math.max(1, min)) bad(where, `${name} = ${ld} is below ${Math.max(1, min)}`);
  };
  need(p.lda, p.transA ? p.m : p.k, 'lda');
  need(p.ldb, p.transB ? p.k : p.n, 'ldb');
  need(p.ldc, p.n, 'ldc');
  if (p.bias === 'full') need(p.ldBias, p.n, 'ldBias');
}

function view(seg: UncheckedSegment, i: number, where: string): TensorView {
  const v = seg.inputs[i];
  if (v === undefined) bad(where, `input ${i} is missing (segment has ${seg.inputs.length})`);
  return v;
}

function contiguousIn(seg: UncheckedSegment, i: number, n: number, where: string): Access {
  const v = view(seg, i, where);
  return { ref: v.ref, dtype: v.dtype, lo: 0, hi: n, what: `${where} input ${i}` };
}

// Input i read through its view's strides over `shape` (contiguous when it has none), as the native runtime
// reads reduce / softmax / layernorm / pool / im2col inputs (plan_validate.cc checks the same span).
function stridedIn(seg: UncheckedSegment, i: number, shape: readonly number[], where: string): Access {
  const v = view(seg, i, where);
  if (v.strides.length === 0) return { ref: v.ref, dtype: v.dtype, lo: 0, hi: prod(shape), what: `${where} input ${i}` };
  if (v.strides.length !== shape.length || !v.strides.every(Number.isInteger))
    bad(where, `input ${i} strides [${v.strides.join(', ')}] do not fit shape [${shape.join(', ')}]`);
  return { ref: v.ref, dtype: v.dtype, ...stridedRange(shape, v.strides), what: `${where} input ${i}` };
}

function needArity(seg: UncheckedSegment, min: number, max: number, where: string): void {
  if (seg.inputs.length < min || seg.inputs.length > max) bad(where, `expects ${min === max ? min : `${min}..${max}`} inputs, got ${seg.inputs.length}`);
}

function needList(x: readonly number[] | undefined, len: number | null, field: string, where: string): readonly number[] {
  if (x === undefined) bad(where, `'${field}' is missing`);
  if (len !== null && x.length !== len) bad(where, `'${field}' must have ${len} entries, got ${x.length}`);
  if (x.some((v) => !isCount(v))) bad(where, `'${field}' must hold non-negative integers, got [${x.join(', ')}]`);
  return x;
}

export const MAX_RANK = 8;

function segmentAccesses(op: KernelOp, seg: UncheckedSegment, where: string): Access[] {
  const out = (n: number): Access => ({ ref: seg.out, dtype: seg.outDType, lo: 0, hi: n, what: `${where} out`, written: true });
  const geomOf = (): NonNullable<UncheckedSegment['geom']> => {
    if (seg.geom === undefined) bad(where, `'geom' is missing`);
    return seg.geom;
  };
  switch (op.op) {
    case 'eltwise':
    case 'copy': {
      const shape = needList(seg.shape, null, 'shape', where);
      if (shape.length > MAX_RANK) bad(where, `rank ${shape.length} exceeds ${MAX_RANK}`);
      if (op.op === 'copy') needArity(seg, 1, 1, where);
      const acc = seg.inputs.map((v, i): Access => {
        if (v.strides.length !== shape.length || !v.strides.every(Number.isInteger))
          bad(where, `input ${i} strides [${v.strides.join(', ')}] do not fit shape [${shape.join(', ')}]`);
        return { ref: v.ref, dtype: v.dtype, ...stridedRange(shape, v.strides), what: `${where} input ${i}` };
      });
      if (op.op === 'copy' && seg.outStrides !== undefined) {
        if (seg.outStrides.length !== shape.length || !seg.outStrides.every(Number.isInteger))
          bad(where, `outStrides [${seg.outStrides.join(', ')}] do not fit shape [${shape.join(', ')}]`);
        return [...acc, { ref: seg.out, dtype: seg.outDType, ...stridedRange(shape, seg.outStrides), what: `${where} out`, written: true }];
      }
      return [...acc, out(prod(shape))];
    }
    case 'reduce':
    case 'softmax': {
      const [o, a, n] = needList(seg.dims, 3, 'dims', where) as [number, number, number];
      needArity(seg, 1, 1, where);
      return [stridedIn(seg, 0, [o, a, n], where), out(op.op === 'reduce' ? o * n : o * a * n)];
    }
    case 'layernorm': {
      const [r, c] = needList(seg.dims, 2, 'dims', where) as [number, number];
      needArity(seg, 1, 3, where);
      return [stridedIn(seg, 0, [r, c], where), ...seg.inputs.slice(1).map((_, i) => contiguousIn(seg, i + 1, c, where)), out(r * c)];
    }
    case 'groupnorm': {
      const [n, g, cpg, sp] = needList(seg.dims, 4, 'dims', where) as [number, number, number, number];
      needArity(seg, 3, 3, where);
      return [contiguousIn(seg, 0, n * g * cpg * sp, where), contiguousIn(seg, 1, g * cpg, where), contiguousIn(seg, 2, g * cpg, where), out(n * g * cpg * sp)];
    }
    case 'pool':
    case 'im2col': {
      const g = geomOf();
      needArity(seg, 1, 1, where);
      // a [C,H,W] strided view (3 strides) covers one image
      const chw = view(seg, 0, where).strides.length === 3;
      if (chw && g.n !== 1) bad(where, `a [C,H,W] strided input needs geom.n = 1, got ${g.n}`);
      const input = stridedIn(seg, 0, chw ? [g.c, g.h, g.w] : [g.n, g.c, g.h, g.w], where);
      if (op.op === 'im2col' && op.ones === true && g.n !== 1) bad(where, `an im2col with ones takes one image per segment (geom.n = 1), got ${g.n}`);
      return [input, out(op.op === 'pool' ? g.n * g.c * g.oh * g.ow : g.n * im2colRows(op, g) * g.oh * g.ow)];
    }
    case 'depthwise': {
      const g = geomOf();
      needArity(seg, 2, 3, where);
      const acc = [contiguousIn(seg, 0, g.n * g.c * g.h * g.w, where), contiguousIn(seg, 1, g.c * g.kh * g.kw, where)];
      if (seg.inputs.length === 3) acc.push(contiguousIn(seg, 2, g.c, where));
      return [...acc, out(g.n * g.c * g.oh * g.ow)];
    }
    case 'col2im': {
      const g = geomOf();
      needArity(seg, 1, 2, where);
      const acc = [contiguousIn(seg, 0, g.n * g.c * g.kh * g.kw * g.h * g.w, where)];
      if (seg.inputs.length === 2) acc.push(contiguousIn(seg, 1, g.c, where));
      return [...acc, out(g.n * g.c * g.oh * g.ow)];
    }
    case 'fill': {
      if (!isCount(seg.count)) bad(where, `'count' must be a non-negative integer`);
      needArity(seg, 0, 0, where);
      return [out(seg.count)];
    }
    case 'gather': {
      const [o, a, n, k] = needList(seg.dims, 4, 'dims', where) as [number, number, number, number];
      needArity(seg, 2, 2, where);
      const idx = view(seg, 1, where);
      if (idx.dtype !== 'i64' && idx.dtype !== 'i32') bad(where, `gather indices must be i64 or i32, got ${idx.dtype}`);
      if (byteSize(view(seg, 0, where).dtype) !== byteSize(seg.outDType))
        bad(where, `gather output dtype ${seg.outDType} differs in size from the data's ${view(seg, 0, where).dtype}`);
      return [contiguousIn(seg, 0, o * a * n, where), contiguousIn(seg, 1, k, where), out(o * k * n)];
    }
    case 'gather_table': {
      if (!isCount(seg.count)) bad(where, `'count' must be a non-negative integer`);
      needArity(seg, 2, 2, where);
      const table = view(seg, 1, where);
      if (table.dtype !== 'i32' || table.ref.arena !== 'weights')
        bad(where, `the gather table must be i32 in the weights arena, got ${table.dtype} in '${table.ref.arena}'`);
      if (byteSize(view(seg, 0, where).dtype) !== byteSize(seg.outDType))
        bad(where, `gather_table output dtype ${seg.outDType} differs in size from the data's ${view(seg, 0, where).dtype}`);
      return [contiguousIn(seg, 0, seg.count > 0 ? 1 : 0, where), contiguousIn(seg, 1, seg.count, where), out(seg.count)];
    }
    case 'squeeze_excite': {
      const [n, c, sp, h] = needList(seg.dims, 4, 'dims', where) as [number, number, number, number];
      needArity(seg, 5, 5, where);
      seg.inputs.forEach((v, i) => {
        if (v.dtype !== 'f32') bad(where, `squeeze_excite input ${i} must be f32, got ${v.dtype}`);
      });
      if (seg.outDType !== 'f32') bad(where, `squeeze_excite output must be f32, got ${seg.outDType}`);
      if (c > SE_MAX_CHANNELS || h > SE_MAX_HIDDEN || sp < 1)
        bad(where, `squeeze_excite dims [${n}, ${c}, ${sp}, ${h}]: at most ${SE_MAX_CHANNELS} channels and ${SE_MAX_HIDDEN} hidden, spatial ≥ 1`);
      return [
        contiguousIn(seg, 0, n * c * sp, where),
        contiguousIn(seg, 1, h * c, where),
        contiguousIn(seg, 2, h, where),
        contiguousIn(seg, 3, c * h, where),
        contiguousIn(seg, 4, c, where),
        out(n * c * sp),
      ];
    }
    case 'conv': {
      const g = geomOf();
      const [m] = needList(seg.dims, 1, 'dims', where) as [number];
      const arity = 2 + (op.bias ? 1 : 0) + (op.residual ? 1 : 0);
      needArity(seg, arity, arity, where);
      if (g.n !== 1) bad(where, `a conv segment is one image (geom.n = 1), got ${g.n}`);
      seg.inputs.forEach((v, i) => {
        if (v.dtype !== 'f32') bad(where, `conv input ${i} must be f32, got ${v.dtype}`);
      });
      if (seg.outDType !== 'f32') bad(where, `conv output must be f32, got ${seg.outDType}`);
      const ohw = g.oh * g.ow;
      return [
        contiguousIn(seg, 0, g.c * g.h * g.w, where),
        contiguousIn(seg, 1, m * g.c * g.kh * g.kw, where),
        ...(op.bias ? [contiguousIn(seg, 2, m, where)] : []),
        ...(op.residual ? [contiguousIn(seg, arity - 1, m * ohw, where)] : []),
        out(m * ohw),
      ];
    }
    default: {
      const never: never = op;
      return bad(where, `unknown kernel op ${JSON.stringify((never as { op: unknown }).op)}`);
    }
  }
}

export function launchAccesses(l: Launch): Access[] {
  const where = `launch ${l.id} (${l.kind})`;
  switch (l.kind) {
    case 'gemm':
      checkGemmProblem(l.problem, where);
      return l.entries.flatMap((e, i) => gemmAccesses(l.problem, l.dtype, e, `${where} entry ${i}`));
    case 'gemm_grouped':
      return l.groups.flatMap((g, gi) => {
        checkGemmProblem(g.problem, `${where} group ${gi}`);
        return g.entries.flatMap((e, i) => gemmAccesses(g.problem, l.dtype, e, `${where} group ${gi} entry ${i}`));
      });
    case 'kernel':
      return l.segments.flatMap((s, i) => segmentAccesses(l.op, s, `${where} '${l.op.op}' segment ${i}`));
    default: {
      const never: never = l;
      return bad('launch', `unknown kind ${JSON.stringify((never as { kind: unknown }).kind)}`);
    }
  }
}

export function accessBytes(a: Access): { start: number; end: number } {
  const es = byteSize(a.dtype);
  return { start: a.ref.offset + a.lo * es, end: a.ref.offset + a.hi * es };
}
