// The semantics of a Plan in executable form: a plain TypeScript executor of its launches over byte arenas.
// Deliberately simple (f64 arithmetic, rounded to the stored dtype; f32 rounding after every step of an
// eltwise program marked computeF32). Used by planner tests and to cross-check native backends.
import { type DType, bf16ToF32, byteSize, f16ToF32, f32ToBf16, f32ToF16 } from '../../ir/dtype.js';
import { applyActivation, erf } from '../../ir/ops/activation.js';
import { numel } from '../../ir/shape.js';
import { type Tensor, makeTensor } from '../../ir/tensor.js';
import {
  type CopySegment,
  type CountSegment,
  type DimsSegment,
  type EltInstr,
  type GemmEntry,
  type GemmProblem,
  type ConvSegment,
  type GeomSegment,
  type KernelOp,
  type Launch,
  type Ref,
  type Segment,
  type EltwiseSegment,
  type TensorView,
  segmentOf,
} from '../../ir/contract/launch.js';
import type { Plan, TenantIO } from '../../ir/contract/plan.js';

export interface Arenas {
  readonly weights: DataView;
  readonly act: DataView;
  readonly io: DataView;
}

export function allocArenas(plan: Plan): Arenas {
  const weights = new Uint8Array(plan.arenas.weights);
  for (const w of plan.weights) weights.set(new Uint8Array(w.tensor.data.buffer, w.tensor.data.byteOffset, w.tensor.data.byteLength), w.offset);
  return {
    weights: new DataView(weights.buffer),
    act: new DataView(new ArrayBuffer(plan.arenas.act)),
    io: new DataView(new ArrayBuffer(plan.arenas.io)),
  };
}

// f32 views over whole arenas (arena sizes and f32 offsets are multiples of 4), the hot path.
const F32 = new WeakMap<DataView, Float32Array | null>();
function f32View(dv: DataView): Float32Array | null {
  let v = F32.get(dv);
  if (v === undefined) {
    v = dv.byteOffset % 4 === 0 && dv.byteLength % 4 === 0 ? new Float32Array(dv.buffer, dv.byteOffset, dv.byteLength / 4) : null;
    F32.set(dv, v);
  }
  return v;
}

function load(a: Arenas, r: Ref, dtype: DType, i: number): number {
  const dv = a[r.arena];
  const o = r.offset + i * byteSize(dtype);
  switch (dtype) {
    case 'f32': {
      const f = f32View(dv);
      return f && o % 4 === 0 ? f[o >> 2]! : dv.getFloat32(o, true);
    }
    case 'f64':
      return dv.getFloat64(o, true);
    case 'f16':
      return f16ToF32(dv.getUint16(o, true));
    case 'bf16':
      return bf16ToF32(dv.getUint16(o, true));
    case 'i64':
      return Number(dv.getBigInt64(o, true));
    case 'i32':
      return dv.getInt32(o, true);
    case 'i8':
      return dv.getInt8(o);
    case 'u8':
    case 'bool':
      return dv.getUint8(o);
  }
}

// Stores convert like a C cast from double: floats round, integers truncate toward zero, bool is x != 0.
function store(a: Arenas, r: Ref, dtype: DType, i: number, v: number): void {
  const dv = a[r.arena];
  const o = r.offset + i * byteSize(dtype);
  const int = (x: number): number => (Number.isFinite(x) ? Math.trunc(x) : 0);
  switch (dtype) {
    case 'f32': {
      const f = f32View(dv);
      if (f && o % 4 === 0) f[o >> 2] = v;
      else dv.setFloat32(o, v, true);
      return;
    }
    case 'f64':
      return dv.setFloat64(o, v, true);
    case 'f16':
      return dv.setUint16(o, f32ToF16(v), true);
    case 'bf16':
      return dv.setUint16(o, f32ToBf16(v), true);
    case 'i64':
      return dv.setBigInt64(o, BigInt(int(v)), true);
    case 'i32':
      return dv.setInt32(o, int(v), true);
    case 'i8':
      return dv.setInt8(o, int(v));
    case 'u8':
      return dv.setUint8(o, int(v));
    case 'bool':
      return dv.setUint8(o, v !== 0 && !Number.isNaN(v) ? 1 : 0);
  }
}

// ---- GEMM ----
function gemm(a: Arenas, dtype: DType, p: GemmProblem, e: GemmEntry): void {
  const A = new Float64Array(p.m * p.k);
  const B = new Float64Array(p.k * p.n);
  const fa = f32Ref(a, e.a, dtype);
  const fb = f32Ref(a, e.b, dtype);
  const ld = (f: { arr: Float32Array; base: number } | null, r: Ref, i: number): number => (f ? f.arr[f.base + i]! : load(a, r, dtype, i));
  for (let i = 0; i < p.m; i++) for (let q = 0; q < p.k; q++) A[i * p.k + q] = ld(fa, e.a, p.transA ? q * p.lda + i : i * p.lda + q);
  for (let q = 0; q < p.k; q++) for (let j = 0; j < p.n; j++) B[q * p.n + j] = ld(fb, e.b, p.transB ? j * p.ldb + q : q * p.ldb + j);
  // `dtype` is A's and B's; C and bias are f32 (FORMAT.md "gemm dtype")
  const fc = f32Ref(a, e.c, 'f32');
  const fbias = e.bias ? f32Ref(a, e.bias, 'f32') : null;
  const fres = e.residual ? f32Ref(a, e.residual, 'f32') : null;
  const acc = new Float64Array(p.n);
  for (let i = 0; i < p.m; i++) {
    acc.fill(0);
    for (let q = 0; q < p.k; q++) {
      const x = A[i * p.k + q]!;
      if (x === 0) continue;
      const row = q * p.n;
      for (let j = 0; j < p.n; j++) acc[j] += x * B[row + j]!;
    }
    for (let j = 0; j < p.n; j++) {
      let v = p.alpha * acc[j]!;
      if (p.bias !== 'none') {
        const bi = p.bias === 'row' ? j : p.bias === 'col' ? i : i * p.ldBias + j;
        v += p.beta * (fbias ? fbias.arr[fbias.base + bi]! : load(a, e.bias!, 'f32', bi));
      }
      if (e.residual) v += fres ? fres.arr[fres.base + i * p.ldc + j]! : load(a, e.residual, 'f32', i * p.ldc + j);
      if (p.activation) v = applyActivation(p.activation, v);
      if (fc) fc.arr[fc.base + i * p.ldc + j] = v;
      else store(a, e.c, 'f32', i * p.ldc + j, v);
    }
  }
}

// ---- eltwise ----
function unary(op: string, x: number): number {
  switch (op) {
    case 'neg':
      return -x;
    case 'abs':
      return Math.abs(x);
    case 'recip':
      return 1 / x;
    case 'sqrt':
      return Math.sqrt(x);
    case 'exp':
      return Math.exp(x);
    case 'log':
      return Math.log(x);
    case 'erf':
      return erf(x);
    case 'tanh':
      return Math.tanh(x);
    case 'sigmoid':
      return 1 / (1 + Math.exp(-x));
    case 'relu':
      return x > 0 ? x : 0;
    case 'floor':
      return Math.floor(x);
    case 'ceil':
      return Math.ceil(x);
    case 'round': {
      const f = Math.floor(x);
      const d = x - f;
      return d < 0.5 ? f : d > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;
    }
    case 'sin':
      return Math.sin(x);
    case 'cos':
      return Math.cos(x);
    case 'not':
      return x === 0 ? 1 : 0;
    case 'sign':
      return x > 0 ? 1 : x < 0 ? -1 : 0;
    case 'softplus':
      return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
    case 'softsign':
      return x / (1 + Math.abs(x));
    case 'isnan':
      return Number.isNaN(x) ? 1 : 0;
    case 'isinf':
      return x === Infinity || x === -Infinity ? 1 : 0;
    case 'trunc':
      return Math.trunc(x);
    default:
      throw new Error(`simulator: unknown unary ${op}`);
  }
}

function binary(op: string, x: number, y: number): number {
  switch (op) {
    case 'add':
      return x + y;
    case 'sub':
      return x - y;
    case 'mul':
      return x * y;
    case 'div':
      return x / y;
    case 'idiv':
      return Math.trunc(x / y);
    case 'pow':
      return x ** y;
    case 'max':
      return Number.isNaN(x) || x > y ? x : y;
    case 'min':
      return Number.isNaN(x) || x < y ? x : y;
    case 'mod': {
      const r = x % y;
      return r !== 0 && r < 0 !== y < 0 ? r + y : r;
    }
    case 'fmod':
      return x % y;
    case 'eq':
      return x === y ? 1 : 0;
    case 'lt':
      return x < y ? 1 : 0;
    case 'gt':
      return x > y ? 1 : 0;
    case 'le':
      return x <= y ? 1 : 0;
    case 'ge':
      return x >= y ? 1 : 0;
    case 'and':
      return x !== 0 && y !== 0 ? 1 : 0;
    case 'or':
      return x !== 0 || y !== 0 ? 1 : 0;
    case 'xor':
      return (x !== 0) !== (y !== 0) ? 1 : 0;
    default:
      throw new Error(`simulator: unknown binary ${op}`);
  }
}

function runProgram(prog: readonly EltInstr[], ins: Float64Array, params: readonly number[], f32: boolean, stack: Float64Array): number {
  let sp = 0;
  const r = f32 ? Math.fround : (v: number) => v;
  for (const p of prog) {
    switch (p.op) {
      case 'in':
        stack[sp++] = ins[p.i]!;
        break;
      case 'const':
        stack[sp++] = r(p.v);
        break;
      case 'param': {
        const v = params[p.i];
        if (v === undefined) throw new Error(`simulator: program reads param ${p.i} of ${params.length}`);
        stack[sp++] = r(v);
        break;
      }
      case 'where': {
        const y = stack[--sp]!;
        const x = stack[--sp]!;
        const c = stack[--sp]!;
        stack[sp++] = c !== 0 ? x : y;
        break;
      }
      case 'clip':
        stack[sp - 1] = Math.min(p.max, Math.max(p.min, stack[sp - 1]!));
        break;
      case 'act':
        stack[sp - 1] = r(applyActivation(p.act, stack[sp - 1]!));
        break;
      default:
        if (isBinary(p.op)) {
          const y = stack[--sp]!;
          stack[sp - 1] = r(binary(p.op, stack[sp - 1]!, y));
        } else stack[sp - 1] = r(unary(p.op, stack[sp - 1]!));
    }
  }
  return stack[0]!;
}

const BINARY = new Set(['add', 'sub', 'mul', 'div', 'idiv', 'pow', 'max', 'min', 'mod', 'fmod', 'eq', 'lt', 'gt', 'le', 'ge', 'and', 'or', 'xor']);
const isBinary = (op: string): boolean => BINARY.has(op);

// Calls f(i, offsets) for every index of `shape` (row-major), offsets[v] = Σ idx_d * views[v].strides[d].
function forEachIndex(shape: readonly number[], strides: ReadonlyArray<readonly number[]>, f: (i: number, offs: Int32Array | Float64Array) => void): void {
  const r = shape.length;
  const n = numel(shape);
  const offs = new Float64Array(strides.length);
  const idx = new Array<number>(r).fill(0);
  for (let i = 0; i < n; i++) {
    f(i, offs);
    for (let d = r - 1; d >= 0; d--) {
      idx[d]!++;
      for (let v = 0; v < strides.length; v++) offs[v] += strides[v]![d]!;
      if (idx[d]! < shape[d]!) break;
      for (let v = 0; v < strides.length; v++) offs[v] -= strides[v]![d]! * shape[d]!;
      idx[d] = 0;
    }
  }
}

function eltwise(a: Arenas, op: Extract<KernelOp, { op: 'eltwise' }>, s: EltwiseSegment): void {
  const params = s.params ?? [];
  const shape = s.shape;
  const ins = new Float64Array(s.inputs.length);
  const stack = new Float64Array(op.program.length + 1);
  forEachIndex(
    shape,
    s.inputs.map((v) => v.strides),
    (i, offs) => {
      s.inputs.forEach((v, k) => {
        ins[k] = load(a, v.ref, v.dtype, offs[k]!);
      });
      store(a, s.out, s.outDType, i, runProgram(op.program, ins, params, op.computeF32, stack));
    },
  );
}

function viewLoad(a: Arenas, v: TensorView, i: number): number {
  return load(a, v.ref, v.dtype, i);
}

// ---- reduce / softmax / norms ----
function reduce(a: Arenas, op: Extract<KernelOp, { op: 'reduce' }>, s: DimsSegment): void {
  const [outer, len, inner] = s.dims as [number, number, number];
  const x = s.inputs[0]!;
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      const at = (q: number): number => viewLoad(a, x, (o * len + q) * inner + j);
      let v: number;
      switch (op.reduce) {
        case 'sum':
        case 'mean':
        case 'l1':
        case 'l2':
        case 'sumsq':
        case 'logsum': {
          let acc = 0;
          for (let q = 0; q < len; q++) {
            const e = at(q);
            acc += op.reduce === 'l1' ? Math.abs(e) : op.reduce === 'l2' || op.reduce === 'sumsq' ? e * e : e;
          }
          v = op.reduce === 'mean' ? acc / len : op.reduce === 'l2' ? Math.sqrt(acc) : op.reduce === 'logsum' ? Math.log(acc) : acc;
          break;
        }
        case 'prod': {
          v = 1;
          for (let q = 0; q < len; q++) v *= at(q);
          break;
        }
        case 'max':
        case 'min': {
          v = at(0);
          for (let q = 1; q < len; q++) {
            const e = at(q);
            if (Number.isNaN(e) || (op.reduce === 'max' ? e > v : e < v)) v = e;
          }
          break;
        }
        case 'logsumexp': {
          let m = -Infinity;
          for (let q = 0; q < len; q++) m = Math.max(m, at(q));
          let acc = 0;
          for (let q = 0; q < len; q++) acc += Math.exp(at(q) - m);
          v = m + Math.log(acc);
          break;
        }
        case 'argmax':
        case 'argmin': {
          let best = at(0);
          let bi = 0;
          for (let q = 1; q < len; q++) {
            const e = at(q);
            const better = op.reduce === 'argmax' ? e > best || (op.selectLast && e === best) : e < best || (op.selectLast && e === best);
            if (better) [best, bi] = [e, q];
          }
          v = bi;
          break;
        }
      }
      store(a, s.out, s.outDType, o * inner + j, v);
    }
  }
}

function softmax(a: Arenas, op: Extract<KernelOp, { op: 'softmax' }>, s: DimsSegment): void {
  const [outer, len, inner] = s.dims as [number, number, number];
  const x = s.inputs[0]!;
  const e = new Float64Array(len);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      let m = -Infinity;
      for (let q = 0; q < len; q++) m = Math.max(m, (e[q] = viewLoad(a, x, (o * len + q) * inner + j)));
      let sum = 0;
      for (let q = 0; q < len; q++) sum += Math.exp(e[q]! - m);
      for (let q = 0; q < len; q++) store(a, s.out, s.outDType, (o * len + q) * inner + j, op.log ? e[q]! - m - Math.log(sum) : Math.exp(e[q]! - m) / sum);
    }
  }
}

function layernorm(a: Arenas, op: Extract<KernelOp, { op: 'layernorm' }>, s: DimsSegment): void {
  const [rows, cols] = s.dims as [number, number];
  const [x, scale, bias] = s.inputs;
  const v = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let c = 0; c < cols; c++) mean += v[c] = viewLoad(a, x!, r * cols + c);
    mean /= cols;
    let vr = 0;
    for (let c = 0; c < cols; c++) vr += (v[c]! - mean) ** 2;
    const inv = 1 / Math.sqrt(vr / cols + op.epsilon);
    for (let c = 0; c < cols; c++) {
      const y = (v[c]! - mean) * inv * (scale ? viewLoad(a, scale, c) : 1) + (bias ? viewLoad(a, bias, c) : 0);
      store(a, s.out, s.outDType, r * cols + c, y);
    }
  }
}

function groupnorm(a: Arenas, op: Extract<KernelOp, { op: 'groupnorm' }>, s: DimsSegment): void {
  const [n, groups, cpg, spatial] = s.dims as [number, number, number, number];
  const [x, scale, bias] = s.inputs;
  const size = cpg * spatial;
  for (let b = 0; b < n; b++) {
    for (let g = 0; g < groups; g++) {
      const base = (b * groups + g) * size;
      let mean = 0;
      for (let i = 0; i < size; i++) mean += viewLoad(a, x!, base + i);
      mean /= size;
      let vr = 0;
      for (let i = 0; i < size; i++) vr += (viewLoad(a, x!, base + i) - mean) ** 2;
      const inv = 1 / Math.sqrt(vr / size + op.epsilon);
      for (let i = 0; i < size; i++) {
        const ch = g * cpg + Math.floor(i / spatial);
        store(a, s.out, s.outDType, base + i, (viewLoad(a, x!, base + i) - mean) * inv * viewLoad(a, scale!, ch) + viewLoad(a, bias!, ch));
      }
    }
  }
}

// ---- windows ----
function pool(a: Arenas, op: Extract<KernelOp, { op: 'pool' }>, s: GeomSegment): void {
  const q = s.geom;
  const x = s.inputs[0]!;
  let o = 0;
  for (let plane = 0; plane < q.n * q.c; plane++) {
    const base = plane * q.h * q.w;
    for (let oy = 0; oy < q.oh; oy++) {
      for (let ox = 0; ox < q.ow; ox++, o++) {
        let best = -Infinity;
        let sum = 0;
        let count = 0;
        let padCount = 0;
        for (let ky = 0; ky < q.kh; ky++) {
          const iy = oy * q.sh - q.padTop + ky * q.dh;
          const yPad = iy >= -q.padTop && iy < q.h + q.padBottom;
          for (let kx = 0; kx < q.kw; kx++) {
            const ix = ox * q.sw - q.padLeft + kx * q.dw;
            if (yPad && ix >= -q.padLeft && ix < q.w + q.padRight) padCount++;
            if (iy < 0 || iy >= q.h || ix < 0 || ix >= q.w) continue;
            const v = viewLoad(a, x, base + iy * q.w + ix);
            if (v > best || Number.isNaN(v)) best = v;
            sum += v;
            count++;
          }
        }
        store(a, s.out, s.outDType, o, op.mode === 'max' ? best : sum / (op.countIncludePad ? padCount : count));
      }
    }
  }
}

// Each (image, channel) plane convolved with its channel's own kernel (f64 sums), plus bias, then the activation.
function squeezeExcite(a: Arenas, op: Extract<KernelOp, { op: 'squeeze_excite' }>, s: DimsSegment): void {
  const [n, c, sp, h] = s.dims as [number, number, number, number];
  const [x, w1, b1, w2, b2] = s.inputs as [TensorView, TensorView, TensorView, TensorView, TensorView];
  const act = (f: typeof op.act1, v: number) => (f ? applyActivation(f, v) : v);
  for (let img = 0; img < n; img++) {
    const mean = Array.from({ length: c }, (_, ch) => {
      let sum = 0;
      for (let i = 0; i < sp; i++) sum += viewLoad(a, x, (img * c + ch) * sp + i);
      return sum / sp;
    });
    const hidden = Array.from({ length: h }, (_, j) => {
      let v = viewLoad(a, b1, j);
      for (let ch = 0; ch < c; ch++) v += viewLoad(a, w1, j * c + ch) * mean[ch]!;
      return act(op.act1, v);
    });
    for (let ch = 0; ch < c; ch++) {
      let v = viewLoad(a, b2, ch);
      for (let j = 0; j < h; j++) v += viewLoad(a, w2, ch * h + j) * hidden[j]!;
      const gate = act(op.act2, v);
      for (let i = 0; i < sp; i++) {
        const at = (img * c + ch) * sp + i;
        store(a, s.out, s.outDType, at, viewLoad(a, x, at) * gate);
      }
    }
  }
}

function depthwise(a: Arenas, op: Extract<KernelOp, { op: 'depthwise' }>, s: GeomSegment): void {
  const q = s.geom;
  const [x, w, bias] = s.inputs as [TensorView, TensorView, TensorView | undefined];
  let o = 0;
  for (let plane = 0; plane < q.n * q.c; plane++) {
    const c = plane % q.c;
    const b = bias ? viewLoad(a, bias, c) : 0;
    for (let oy = 0; oy < q.oh; oy++) {
      for (let ox = 0; ox < q.ow; ox++, o++) {
        let sum = b;
        for (let ky = 0; ky < q.kh; ky++) {
          const iy = oy * q.sh - q.padTop + ky * q.dh;
          if (iy < 0 || iy >= q.h) continue;
          for (let kx = 0; kx < q.kw; kx++) {
            const ix = ox * q.sw - q.padLeft + kx * q.dw;
            if (ix < 0 || ix >= q.w) continue;
            sum += viewLoad(a, x, plane * q.h * q.w + iy * q.w + ix) * viewLoad(a, w, (c * q.kh + ky) * q.kw + kx);
          }
        }
        store(a, s.out, s.outDType, o, op.activation ? applyActivation(op.activation, sum) : sum);
      }
    }
  }
}

// One image's convolution (f64 sums): out[m][p] = act(Σ_k w[m][k] · cols[k][p] + bias[m] + residual[m][p]), k over
// (ky, kx, c): the filter stored taps outer, channels inner.
function conv(a: Arenas, op: Extract<KernelOp, { op: 'conv' }>, s: ConvSegment): void {
  const q = s.geom;
  const m = s.dims[0]!;
  const [x, w] = s.inputs as [TensorView, TensorView];
  const bias = op.bias ? s.inputs[2] : undefined;
  const residual = op.residual ? s.inputs[op.bias ? 3 : 2] : undefined;
  const k = q.c * q.kh * q.kw;
  const ohw = q.oh * q.ow;
  for (let mi = 0; mi < m; mi++) {
    for (let oy = 0; oy < q.oh; oy++) {
      for (let ox = 0; ox < q.ow; ox++) {
        let sum = 0;
        for (let ky = 0; ky < q.kh; ky++) {
          const iy = oy * q.sh - q.padTop + ky * q.dh;
          if (iy < 0 || iy >= q.h) continue;
          for (let kx = 0; kx < q.kw; kx++) {
            const ix = ox * q.sw - q.padLeft + kx * q.dw;
            if (ix < 0 || ix >= q.w) continue;
            for (let c = 0; c < q.c; c++) sum += viewLoad(a, x, (c * q.h + iy) * q.w + ix) * viewLoad(a, w, mi * k + (ky * q.kw + kx) * q.c + c);
          }
        }
        const p = oy * q.ow + ox;
        if (bias) sum += viewLoad(a, bias, mi);
        if (residual) sum += viewLoad(a, residual, mi * ohw + p);
        store(a, s.out, s.outDType, mi * ohw + p, op.activation ? applyActivation(op.activation, sum) : sum);
      }
    }
  }
}

// Direct f32 access to a ref (element index = base + i), when its arena allows it.
function f32Ref(a: Arenas, r: Ref, dtype: DType): { arr: Float32Array; base: number } | null {
  const f = dtype === 'f32' ? f32View(a[r.arena]) : null;
  return f && r.offset % 4 === 0 ? { arr: f, base: r.offset >> 2 } : null;
}

function im2col(a: Arenas, s: GeomSegment, ones: boolean): void {
  const q = s.geom;
  const x = s.inputs[0]!;
  const ohw = q.oh * q.ow;
  const src = f32Ref(a, x.ref, x.dtype);
  const dst = f32Ref(a, s.out, s.outDType);
  // with ones (geom.n = 1): the row after the last channel's is all ones
  if (ones) for (let i = 0; i < ohw; i++) store(a, s.out, s.outDType, q.c * q.kh * q.kw * ohw + i, 1);
  if (src && dst) {
    const { arr: X, base: xb } = src;
    const { arr: Y, base: yb } = dst;
    for (let c = 0; c < q.c; c++) {
      for (let ky = 0; ky < q.kh; ky++) {
        for (let kx = 0; kx < q.kw; kx++) {
          const row = yb + ((c * q.kh + ky) * q.kw + kx) * ohw;
          for (let oy = 0; oy < q.oh; oy++) {
            const iy = oy * q.sh - q.padTop + ky * q.dh;
            const inY = iy >= 0 && iy < q.h;
            for (let ox = 0; ox < q.ow; ox++) {
              const ix = ox * q.sw - q.padLeft + kx * q.dw;
              Y[row + oy * q.ow + ox] = inY && ix >= 0 && ix < q.w ? X[xb + (c * q.h + iy) * q.w + ix]! : 0;
            }
          }
        }
      }
    }
    return;
  }
  for (let c = 0; c < q.c; c++) {
    for (let ky = 0; ky < q.kh; ky++) {
      for (let kx = 0; kx < q.kw; kx++) {
        const row = (c * q.kh + ky) * q.kw + kx;
        for (let oy = 0; oy < q.oh; oy++) {
          const iy = oy * q.sh - q.padTop + ky * q.dh;
          for (let ox = 0; ox < q.ow; ox++) {
            const ix = ox * q.sw - q.padLeft + kx * q.dw;
            const v = iy >= 0 && iy < q.h && ix >= 0 && ix < q.w ? viewLoad(a, x, (c * q.h + iy) * q.w + ix) : 0;
            store(a, s.out, s.outDType, row * ohw + oy * q.ow + ox, v);
          }
        }
      }
    }
  }
}

function col2im(a: Arenas, s: GeomSegment): void {
  const q = s.geom;
  const [cols, bias] = s.inputs;
  const hw = q.h * q.w;
  for (let c = 0; c < q.c; c++) {
    for (let oy = 0; oy < q.oh; oy++) {
      for (let ox = 0; ox < q.ow; ox++) {
        let v = bias ? viewLoad(a, bias, c) : 0;
        for (let ky = 0; ky < q.kh; ky++) {
          const ty = oy + q.padTop - ky * q.dh;
          if (ty < 0 || ty % q.sh !== 0 || ty / q.sh >= q.h) continue;
          for (let kx = 0; kx < q.kw; kx++) {
            const tx = ox + q.padLeft - kx * q.dw;
            if (tx < 0 || tx % q.sw !== 0 || tx / q.sw >= q.w) continue;
            v += viewLoad(a, cols!, ((c * q.kh + ky) * q.kw + kx) * hw + (ty / q.sh) * q.w + tx / q.sw);
          }
        }
        store(a, s.out, s.outDType, (c * q.oh + oy) * q.ow + ox, v);
      }
    }
  }
}

// ---- data movement ----
function copy(a: Arenas, s: CopySegment): void {
  const x = s.inputs[0]!;
  forEachIndex(s.shape!, [x.strides, s.outStrides!], (_i, offs) => {
    store(a, s.out, s.outDType, offs[1]!, load(a, x.ref, x.dtype, offs[0]!));
  });
}

function gather(a: Arenas, s: DimsSegment): void {
  const [outer, axisLen, inner, nIdx] = s.dims as [number, number, number, number];
  const [data, idx] = s.inputs;
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < nIdx; j++) {
      let k = viewLoad(a, idx!, j);
      if (k < 0) k += axisLen;
      if (k < 0 || k >= axisLen) throw new Error(`simulator: gather index ${k} out of range [0, ${axisLen})`);
      for (let i = 0; i < inner; i++) store(a, s.out, s.outDType, (o * nIdx + j) * inner + i, viewLoad(a, data!, (o * axisLen + k) * inner + i));
    }
  }
}

function gatherTable(a: Arenas, s: CountSegment): void {
  const [data, table] = s.inputs;
  for (let i = 0; i < s.count; i++) {
    const t = viewLoad(a, table!, i);
    store(a, s.out, s.outDType, i, t < 0 ? 0 : viewLoad(a, data!, t));
  }
}

function kernel(a: Arenas, op: KernelOp, s: Segment): void {
  switch (op.op) {
    case 'eltwise':
      return eltwise(a, op, segmentOf(op, s));
    case 'reduce':
      return reduce(a, op, segmentOf(op, s));
    case 'softmax':
      return softmax(a, op, segmentOf(op, s));
    case 'layernorm':
      return layernorm(a, op, segmentOf(op, s));
    case 'groupnorm':
      return groupnorm(a, op, segmentOf(op, s));
    case 'pool':
      return pool(a, op, segmentOf(op, s));
    case 'depthwise':
      return depthwise(a, op, segmentOf(op, s));
    case 'im2col':
      return im2col(a, segmentOf(op, s), op.ones === true);
    case 'col2im':
      return col2im(a, segmentOf(op, s));
    case 'copy':
      return copy(a, segmentOf(op, s));
    case 'fill':
      for (let i = 0; i < segmentOf(op, s).count; i++) store(a, s.out, s.outDType, i, op.value);
      return;
    case 'gather':
      return gather(a, segmentOf(op, s));
    case 'gather_table':
      return gatherTable(a, segmentOf(op, s));
    case 'conv':
      return conv(a, op, segmentOf(op, s));
    case 'squeeze_excite':
      return squeezeExcite(a, op, segmentOf(op, s));
    default: {
      const never: never = op;
      throw new Error(`simulator: unknown kernel ${JSON.stringify(never)}`);
    }
  }
}

export function runLaunch(a: Arenas, l: Launch): void {
  switch (l.kind) {
    case 'gemm':
      for (const e of l.entries) gemm(a, l.dtype, l.problem, e);
      return;
    case 'gemm_grouped':
      for (const g of l.groups) for (const e of g.entries) gemm(a, l.dtype, g.problem, e);
      return;
    case 'kernel':
      for (const s of l.segments) kernel(a, l.op, s);
      return;
    default: {
      const never: never = l;
      throw new Error(`simulator: unknown launch ${JSON.stringify(never)}`);
    }
  }
}

// One tick: each present tenant's inputs (1..maxBatch rows along batchAxis) are written into its io
// slots (missing rows zero), every launch runs, and outputs are read back trimmed to the same rows.
export function simulateTick(
  plan: Plan,
  inputs: Readonly<Record<string, Readonly<Record<string, Tensor>>>>,
  arenas: Arenas = allocArenas(plan),
): Record<string, Record<string, Tensor>> {
  const rowsOf: Record<string, number> = {};
  new Uint8Array(arenas.io.buffer).fill(0);
  for (const t of plan.tenants) {
    const feeds = inputs[t.id];
    if (!feeds) continue;
    for (const io of t.inputs) {
      const x = feeds[io.name];
      if (!x) throw new Error(`simulator: tenant ${t.id} misses input ${io.name}`);
      rowsOf[t.id] = io.batchAxis === null ? (rowsOf[t.id] ?? t.maxBatch) : x.shape[io.batchAxis]!;
      writeRows(arenas, io, x);
    }
  }
  for (const l of plan.launches) runLaunch(arenas, l);
  const out: Record<string, Record<string, Tensor>> = {};
  for (const t of plan.tenants) {
    if (!inputs[t.id]) continue;
    out[t.id] = Object.fromEntries(t.outputs.map((io) => [io.name, readRows(arenas, io, rowsOf[t.id] ?? t.maxBatch)]));
  }
  return out;
}

// Rows along batchAxis: the slot is [pre, maxRows, post]; a tensor with fewer rows fills the first ones.
function rowGeometry(io: TenantIO, rows: number): { pre: number; full: number; rows: number; post: number } {
  if (io.batchAxis === null) return { pre: 1, full: 1, rows: 1, post: numel(io.shape) };
  return { pre: numel(io.shape.slice(0, io.batchAxis)), full: io.shape[io.batchAxis]!, rows, post: numel(io.shape.slice(io.batchAxis + 1)) };
}

function writeRows(a: Arenas, io: TenantIO, x: Tensor): void {
  const rows = io.batchAxis === null ? 1 : x.shape[io.batchAxis]!;
  const g = rowGeometry(io, rows);
  const src = { weights: a.weights, act: a.act, io: new DataView(x.data.buffer, x.data.byteOffset, x.data.byteLength) } as Arenas;
  for (let p = 0; p < g.pre; p++) {
    for (let r = 0; r < g.rows; r++) {
      for (let q = 0; q < g.post; q++) {
        const v = load(src, { arena: 'io', offset: 0 }, x.dtype, (p * g.rows + r) * g.post + q);
        store(a, io.ref, io.dtype, (p * g.full + r) * g.post + q, v);
      }
    }
  }
}

function readRows(a: Arenas, io: TenantIO, rows: number): Tensor {
  const g = rowGeometry(io, rows);
  const shape = io.batchAxis === null ? [...io.shape] : io.shape.map((d, i) => (i === io.batchAxis ? rows : d));
  const t = makeTensor(io.dtype, shape);
  const dst = { weights: a.weights, act: a.act, io: new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength) } as Arenas;
  for (let p = 0; p < g.pre; p++) {
    for (let r = 0; r < g.rows; r++) {
      for (let q = 0; q < g.post; q++) {
        store(dst, { arena: 'io', offset: 0 }, io.dtype, (p * g.rows + r) * g.post + q, load(a, io.ref, io.dtype, (p * g.full + r) * g.post + q));
      }
    }
  }
  return t;
}
