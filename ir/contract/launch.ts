// The launches a plan consists of: what the planner decides and the native runtime executes, one after
// another, every tick. Everything here is concrete (sizes, strides, byte offsets); a backend makes no
// decisions. codegen/ serializes this as plan.json (see codegen/FORMAT.md); native/ reads that JSON.
// Every closed list of names below is declared once, as data: the TypeScript types derive from it, the JS
// validator (codegen/validate.ts) checks against it, and native/src/plan_enums.gen.h is generated from it
// (tools/gen-native-contract.ts), so a KernelOp or an elementwise instruction is named in one place.
import type { DType } from '../dtype.js';
import type { Activation } from '../ops/activation.js';

export const ARENA_IDS = ['weights', 'act', 'io'] as const;
export type ArenaId = (typeof ARENA_IDS)[number];

export const LAUNCH_KINDS = ['gemm', 'gemm_grouped', 'kernel'] as const;
// A GEMM launch's dtype is that of its A and B operands; C and bias are f32 (FORMAT.md "gemm dtype").
export const GEMM_DTYPES = ['f32', 'bf16', 'f16'] as const;
export const GEMM_BIAS_MODES = ['none', 'row', 'col', 'full'] as const;
export type GemmBiasMode = (typeof GEMM_BIAS_MODES)[number];
export const ACTIVATION_KINDS = [
  'relu',
  'sigmoid',
  'tanh',
  'gelu_erf',
  'gelu_tanh',
  'leaky_relu',
  'clip',
  'hard_sigmoid',
  'hard_swish',
] as const satisfies readonly Activation['kind'][];

// Elementwise instructions: the operand ones first, then unary, then binary (native keeps this order).
export const ELT_OPERAND_OPS = ['in', 'const', 'where', 'clip', 'act', 'param'] as const;
// The most per-segment constants (eltwise `params`) one segment carries: the CUDA segment table keeps them in
// the 16 slots that pool geometry uses in other ops (FORMAT.md "Segment tables").
export const ELT_MAX_PARAMS = 16;
// A squeeze_excite block keeps one image's channel means and gates and its hidden values in shared memory, so
// its segments have at most this many channels and hidden values (dims[1], dims[3]).
export const SE_MAX_CHANNELS = 2048;
export const SE_MAX_HIDDEN = 1024;
export const ELT_UNARY = [
  'neg',
  'abs',
  'recip',
  'sqrt',
  'exp',
  'log',
  'erf',
  'tanh',
  'sigmoid',
  'relu',
  'floor',
  'ceil',
  'round',
  'sin',
  'cos',
  'not',
  'sign',
  'softplus',
  'softsign',
  'isnan',
  'isinf',
  'trunc',
] as const;
export const ELT_BINARY = ['add', 'sub', 'mul', 'div', 'idiv', 'pow', 'max', 'min', 'mod', 'fmod', 'eq', 'lt', 'gt', 'le', 'ge', 'and', 'or', 'xor'] as const;
export type EltUnary = (typeof ELT_UNARY)[number];
export type EltBinary = (typeof ELT_BINARY)[number];

export const KERNEL_OPS = [
  'eltwise',
  'reduce',
  'softmax',
  'layernorm',
  'groupnorm',
  'pool',
  'depthwise',
  'im2col',
  'col2im',
  'copy',
  'fill',
  'gather',
  'gather_table',
  'squeeze_excite',
  'conv',
] as const;
export type KernelOpName = (typeof KERNEL_OPS)[number];
export const REDUCE_KINDS = ['sum', 'mean', 'max', 'min', 'prod', 'l1', 'l2', 'sumsq', 'logsum', 'logsumexp', 'argmax', 'argmin'] as const;
export type ReduceKind = (typeof REDUCE_KINDS)[number];
export const POOL_MODES = ['max', 'avg'] as const;
export const POOL_GEOMETRY_FIELDS = ['n', 'c', 'h', 'w', 'oh', 'ow', 'kh', 'kw', 'sh', 'sw', 'padTop', 'padLeft', 'padBottom', 'padRight', 'dh', 'dw'] as const;

// A byte offset into one of the plan's arenas. weights: read-only, uploaded once (weights.bin);
// act: activations, reused across stages by liveness; io: per-tenant input and output slots.
export interface Ref {
  readonly arena: ArenaId;
  readonly offset: number;
}

// ---- GEMM ----------------------------------------------------------------------------------------
// Row-major: C[m,n] = act(alpha * op(A)[m,k] · op(B)[k,n] + bias), op = transpose when trans*.
// Leading dims are in elements, row-major (lda >= k when !transA, >= m when transA; ...).
// bias: 'none'; 'row' = bias[n] added to every row; 'col' = bias[m] added to every column (conv as W·cols);
// 'full' = bias is an [m,n] matrix with leading dim ldBias (a Gemm's C input).
// residual (optional, absent = false): every entry also adds its own f32 [m,n] residual with leading dim ldc
// before the activation, C = act(alpha · op(A)·op(B) + beta · bias + residual): a residual Add folded in.
export interface GemmProblem {
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly transA: boolean;
  readonly transB: boolean;
  readonly lda: number;
  readonly ldb: number;
  readonly ldc: number;
  readonly alpha: number;
  readonly beta: number; // scales the bias term (ONNX Gemm beta); 1 for MatMul/Conv bias
  readonly bias: GemmBiasMode;
  readonly ldBias: number; // for 'full'; 0 otherwise
  readonly activation: Activation | null;
  readonly residual?: boolean;
  // Optional: m = rowsUnit · the tenants' request rows, rows outermost in A and C (FORMAT.md "gemm"), so a tick
  // whose live tenants carry fewer rows may run m' = rowsUnit · its row bucket. Absent: m never scales.
  readonly rowsUnit?: number;
}

export interface GemmEntry {
  readonly tenant: number; // index into LaunchPlan.tenants
  readonly a: Ref;
  readonly b: Ref;
  readonly c: Ref;
  readonly bias: Ref | null;
  readonly residual?: Ref; // present exactly when the problem has residual: the addend, laid out like C
}

// Uniform byte strides between consecutive entries, present only when every entry's a/b/c/bias is exactly
// the first one's plus i * stride (then a backend may use one strided-batched call). Residuals are not covered:
// a backend reaches each entry's residual through its own ref.
export interface GemmStrides {
  readonly a: number;
  readonly b: number;
  readonly c: number;
  readonly bias: number;
}

// ---- generated kernels ---------------------------------------------------------------------------
// Elementwise programs: postfix over the segment's inputs; computed in f32 when every input and the output
// are float, else in f64 (integers exact below 2^53). Comparisons give 1/0. 'param' pushes the segment's
// params[i]: one launch serves tenants whose programs differ only in constants (each segment carries its own).
export type EltInstr =
  | { readonly op: 'in'; readonly i: number }
  | { readonly op: 'const'; readonly v: number }
  | { readonly op: 'param'; readonly i: number }
  | { readonly op: EltUnary }
  | { readonly op: EltBinary }
  | { readonly op: 'where' } // pops c, x, y (pushed in that order) → c ? x : y
  | { readonly op: 'clip'; readonly min: number; readonly max: number }
  | { readonly op: 'act'; readonly act: Activation };

export interface TensorView {
  readonly ref: Ref;
  readonly dtype: DType;
  readonly strides: readonly number[]; // in elements, one per dim of the segment's shape; 0 broadcasts
}

export type KernelOp =
  | { readonly op: 'eltwise'; readonly program: readonly EltInstr[]; readonly computeF32: boolean }
  | { readonly op: 'reduce'; readonly reduce: ReduceKind; readonly selectLast: boolean }
  | { readonly op: 'softmax'; readonly log: boolean }
  | { readonly op: 'layernorm'; readonly epsilon: number }
  | { readonly op: 'groupnorm'; readonly epsilon: number }
  | { readonly op: 'pool'; readonly mode: (typeof POOL_MODES)[number]; readonly countIncludePad: boolean }
  | { readonly op: 'depthwise'; readonly activation: Activation | null } // Conv with group = C_in = C_out
  // ones: each image's columns end with one more row, of oh·ow ones (the row a GEMM's bias column multiplies:
  // src/planner/lower-gemm.ts biasAsRow); segments then have geom.n = 1
  | { readonly op: 'im2col'; readonly ones?: boolean }
  | { readonly op: 'col2im' }
  | { readonly op: 'copy' }
  | { readonly op: 'fill'; readonly value: number }
  | { readonly op: 'gather' } // runtime indices along one axis (embeddings)
  | { readonly op: 'gather_table' } // out[i] = in[table[i]] with a compile-time i32 element-offset table (-1 → 0)
  // out = x · act2(W2 · act1(W1 · mean(x) + b1) + b2), the gate per (image, channel): a squeeze-and-excite block
  | { readonly op: 'squeeze_excite'; readonly act1: Activation | null; readonly act2: Activation | null }
  // An f32 convolution as one implicit GEMM: out[m][p] = act(Σ_k w[m][k] · cols[k][p] + bias[m] + residual[m][p]),
  // the im2col columns formed in the kernel's tile loads instead of written out (no im2col launch)
  | { readonly op: 'conv'; readonly activation: Activation | null; readonly bias: boolean; readonly residual: boolean };

// One tenant's share of a kernel launch. Its fields depend on the op (see codegen/FORMAT.md):
//   eltwise:    shape, out (strides = contiguous), inputs, params? (the values of the program's 'param' i)
//   reduce/softmax: dims [outer, axis, inner], inputs[0], out (contiguous; reduce out is [outer, inner])
//   layernorm:  dims [rows, cols], inputs [x, scale?, bias?] (scale/bias: [cols]), out
//   groupnorm:  dims [n, groups, channelsPerGroup, spatial], inputs [x, scale, bias] (per channel), out
//   pool:       geom (2-D; 1-D pools have H = 1), inputs[0], out
//   depthwise:  geom (as pool's); inputs [x [n,c,h,w], w [c,kh,kw], bias? [c]], out [n,c,oh,ow] = act(bias +
//               Σ of the window of each channel times its own kernel)
//   im2col:     geom; inputs[0] = one image's [C, H, W] (a group's channels), out = [C*kh*kw (+1 with ones), oh*ow]
//   col2im:     geom (h, w = the ConvTranspose input; oh, ow = its output); inputs [cols [C*kh*kw, h*w] of one
//               image, bias? [C]], out = [C, oh, ow] = bias + Σ of the contributions (a gather: no atomics)
//   copy:       shape; inputs[0] with strides (any, may be 0 or negative); out with outStrides
//   fill:       count, out
//   gather:     dims [outer, axisLen, inner, nIdx]; inputs [data, indices(i64/i32)], out = [outer, nIdx, inner]
//   gather_table: count, inputs [data, table (i32, weights arena)], out
//   conv:       geom (n = 1: one image), dims [m] (output channels); inputs [x [c,h,w], w [m, kh, kw, c] (taps outer,
//               channels inner: ONNX's [m, c, kh, kw] reordered), then bias [m]
//               when op.bias, then residual [m, oh*ow] when op.residual] (f32, contiguous), out [m, oh*ow]
//   squeeze_excite: dims [n, c, spatial, hidden]; inputs [x [n,c,spatial], w1 [hidden,c], b1 [hidden], w2 [c,hidden],
//               b2 [c]] (f32, contiguous), out [n,c,spatial] = x · act2(w2 · act1(w1 · mean_spatial(x) + b1) + b2)
interface SegmentBase {
  readonly tenant: number;
  readonly inputs: readonly TensorView[];
  readonly out: Ref;
  readonly outDType: DType;
}
export interface ShapeSegment extends SegmentBase {
  readonly shape: readonly number[];
}
export interface EltwiseSegment extends ShapeSegment {
  readonly params?: readonly number[]; // absent: the program has no 'param' (at most ELT_MAX_PARAMS)
}
export interface CopySegment extends ShapeSegment {
  readonly outStrides?: readonly number[]; // absent: out is contiguous
}
export interface DimsSegment extends SegmentBase {
  readonly dims: readonly number[];
}
export interface GeomSegment extends SegmentBase {
  readonly geom: PoolGeometry;
}
export interface ConvSegment extends SegmentBase {
  readonly geom: PoolGeometry;
  readonly dims: readonly number[]; // [m]
}
export interface CountSegment extends SegmentBase {
  readonly count: number;
}

// The segment form of each KernelOp; every op must have one (the mapped type makes a missing one an error).
interface SegmentByOp {
  readonly eltwise: EltwiseSegment;
  readonly reduce: DimsSegment;
  readonly softmax: DimsSegment;
  readonly layernorm: DimsSegment;
  readonly groupnorm: DimsSegment;
  readonly pool: GeomSegment;
  readonly depthwise: GeomSegment;
  readonly im2col: GeomSegment;
  readonly col2im: GeomSegment;
  readonly copy: CopySegment;
  readonly fill: CountSegment;
  readonly gather: DimsSegment;
  readonly gather_table: CountSegment;
  readonly squeeze_excite: DimsSegment;
  readonly conv: ConvSegment;
}
export type SegmentOf<K extends KernelOpName> = SegmentByOp[K];
// A kernel launch's segments all have the form of its op: the tag is the launch's `op.op` (plan.json keeps
// segments untagged). Narrow with segmentsOf / segmentOf after switching on the op.
export type Segment = SegmentByOp[KernelOpName];

// A segment as read from plan.json before validation: any of the op-specific fields may be present.
export type UncheckedSegment = SegmentBase & Partial<Omit<EltwiseSegment & CopySegment & DimsSegment & GeomSegment & CountSegment, keyof SegmentBase>>;

// The same, as data: the fields beyond tenant/inputs/out/outDType that each op's segments carry
// (codegen/validate.ts requires them; `optional` ones may be absent).
export const SEGMENT_FIELDS = {
  eltwise: { required: ['shape'], optional: ['params'] },
  reduce: { required: ['dims'], optional: [] },
  softmax: { required: ['dims'], optional: [] },
  layernorm: { required: ['dims'], optional: [] },
  groupnorm: { required: ['dims'], optional: [] },
  pool: { required: ['geom'], optional: [] },
  depthwise: { required: ['geom'], optional: [] },
  im2col: { required: ['geom'], optional: [] },
  col2im: { required: ['geom'], optional: [] },
  copy: { required: ['shape'], optional: ['outStrides'] },
  fill: { required: ['count'], optional: [] },
  gather: { required: ['dims'], optional: [] },
  gather_table: { required: ['count'], optional: [] },
  squeeze_excite: { required: ['dims'], optional: [] },
  conv: { required: ['geom', 'dims'], optional: [] },
} as const satisfies { readonly [K in KernelOpName]: { readonly required: readonly string[]; readonly optional: readonly string[] } };

// One segment viewed as its op's form. Sound once the plan was validated (codegen/validate.ts checks the
// fields of SEGMENT_FIELDS) or built by the planner, which sets exactly those fields.
export function segmentOf<O extends KernelOp>(_op: O, s: Segment): SegmentOf<O['op']> {
  return s as SegmentOf<O['op']>;
}

export type PoolGeometry = { readonly [F in (typeof POOL_GEOMETRY_FIELDS)[number]]: number };

// ---- launches --------------------------------------------------------------------------------------
// What a launch covers, for inspect and the cost model (not read by backends).
export interface LaunchInfo {
  readonly stage: number;
  readonly label: string; // e.g. "gemm 512x784 (8 tenants)"
  readonly tenants: readonly number[];
  readonly sources: readonly string[]; // "tenant/node" of the IR nodes it implements
  readonly flops: number;
  readonly bytes: number; // bytes read + written
  readonly predictedUs: number; // cost model, as one launch
  readonly ungroupedUs: number; // cost model, the same work as one launch per tenant
}

// Where a launch runs in the tick's DAG (absent on single-lane plans: every launch on lane 0, in order). Lanes
// are parallel streams forked from the tick's stream; launches of one lane run in plan order, and a launch
// also waits for the launches named in `after` (ids of earlier launches on other lanes). A backend without
// streams may ignore both: plan order is always a valid order.
export interface LaunchOrder {
  readonly lane?: number;
  readonly after?: readonly number[];
}

export type Launch = LaunchOrder &
  (
    | {
        readonly kind: 'gemm';
        readonly id: number;
        readonly dtype: DType;
        readonly problem: GemmProblem;
        readonly entries: readonly GemmEntry[];
        readonly strides: GemmStrides | null;
        readonly info: LaunchInfo;
      }
    | {
        readonly kind: 'gemm_grouped';
        readonly id: number;
        readonly dtype: DType;
        readonly groups: ReadonlyArray<{ readonly problem: GemmProblem; readonly entries: readonly GemmEntry[] }>;
        readonly info: LaunchInfo;
      }
    | {
        readonly kind: 'kernel';
        readonly id: number;
        readonly kernel: string;
        readonly op: KernelOp;
        readonly segments: readonly Segment[];
        readonly info: LaunchInfo;
      }
  );

export type LaunchKind = Launch['kind'];

// The lists above and the unions they name must agree (a compile error here means one was edited alone).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type AllTrue<T extends boolean> = false extends T ? false : true;
export const CONTRACT_LISTS_AGREE: readonly true[] = [
  true satisfies Same<KernelOp['op'], KernelOpName>,
  true satisfies Same<LaunchKind, (typeof LAUNCH_KINDS)[number]>,
  true satisfies Same<Activation['kind'], (typeof ACTIVATION_KINDS)[number]>,
  true satisfies Same<EltInstr['op'], (typeof ELT_OPERAND_OPS)[number] | EltUnary | EltBinary>,
  true satisfies AllTrue<{ [K in KernelOpName]: Same<Exclude<keyof SegmentOf<K>, keyof SegmentBase>, SegmentFieldNames<K>> }[KernelOpName]>,
];
type SegmentFieldNames<K extends KernelOpName> = (typeof SEGMENT_FIELDS)[K]['required'][number] | (typeof SEGMENT_FIELDS)[K]['optional'][number];

// Rows of one image's im2col columns: c·kh·kw, and with `ones` the row of ones after them.
export function im2colRows(op: Extract<KernelOp, { op: 'im2col' }>, g: PoolGeometry): number {
  return g.c * g.kh * g.kw + (op.ones === true ? 1 : 0);
}
