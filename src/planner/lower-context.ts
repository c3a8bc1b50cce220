// State of lowering one tenant: where each IR value lives (a buffer and a byte offset, so free views alias
// their input), the buffers and steps created so far, and the dependency bookkeeping between steps.
import { placeConstant } from '../../ir/deferred.js';
import { byteSize, type DType, f32ToBf16, f32ToF16 } from '../../ir/dtype.js';
import { fail } from '../../ir/errors.js';
import { DEFAULT_LIMITS, LIMIT_FLAGS, type SizeLimits, formatBytes } from '../../ir/limits.js';
import type { Graph, Node, ValueId } from '../../ir/graph.js';
import { type GraphIndex, indexGraph } from '../../ir/passes/rewrite.js';
import { numel } from '../../ir/shape.js';
import { type Tensor, makeTensor } from '../../ir/tensor.js';
import type { GemmProblem, KernelOp } from '../../ir/contract/launch.js';
import { gemmWork, kernelWork } from './work.js';
import { type Buf, type BufKind, type DraftGemmEntry, type DraftSegment, type LRef, type Step, contiguousStrides, gemmEntryReads, kernelKey } from './steps.js';
import { constantsAbstracted } from './eltwise-params.js';

// How an f32 conv that needs im2col runs (PlanOptions.convKernel): an im2col launch and a GEMM, or one generated
// implicit-GEMM kernel (KernelOp conv).
export const CONV_KERNELS = ['im2col', 'implicit'] as const;
export type ConvKernel = (typeof CONV_KERNELS)[number];

export interface Loc {
  readonly ref: LRef;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

// Buffers and steps of the whole fleet (ids are global so tenants never collide).
export interface FleetState {
  readonly bufs: Buf[];
  readonly steps: Step[];
  // Dtype of GEMM operands A and B (the plan's precision: bf16 → bf16, fp16 → f16, else f32). GEMM outputs
  // and biases are f32 whatever it is.
  readonly gemmDType?: 'f32' | 'bf16' | 'f16';
  readonly limits?: SizeLimits; // default DEFAULT_LIMITS
  readonly squeezeExcite?: boolean; // default true: squeeze-and-excite blocks as one kernel (lower-excite.ts)
  readonly residualEpilogue?: boolean; // default true: residual adds in the GEMM epilogue (lower-residual.ts)
  readonly convBiasInGemm?: boolean; // default true: an im2col conv's bias as one more k row (lower-gemm.ts)
  readonly convKernel?: ConvKernel; // default 'im2col': how an f32 conv that needs im2col runs (lower-gemm.ts)
}

const BUF_LIMIT: Readonly<Record<BufKind, { key: 'maxWeightsBytes' | 'maxActivationsBytes' | 'maxIoBytes'; what: string; arena: string }>> = {
  weight: { key: 'maxWeightsBytes', what: 'constant', arena: 'weights' },
  act: { key: 'maxActivationsBytes', what: 'activation', arena: 'activation' },
  input: { key: 'maxIoBytes', what: 'input', arena: 'io' },
  output: { key: 'maxIoBytes', what: 'output', arena: 'io' },
};

export class TenantLowering {
  private readonly locs = new Map<ValueId, Loc>();
  private readonly writers = new Map<number, number[]>();
  private readonly weightOf = new Map<ValueId, number>();
  private readonly halfWeightOf = new Map<ValueId, Loc>();
  private readonly castOf = new Map<string, Loc>();
  private index: GraphIndex | undefined;
  node: Node | null = null; // the node being lowered, for sources and messages
  // The residual the next gemm() adds in its epilogue (lower-residual.ts), set around one GEMM node's lowering.
  private residual: { readonly loc: Loc; readonly out: ValueId } | null = null;

  constructor(
    readonly fleet: FleetState,
    readonly tenant: number,
    readonly tenantId: string,
    readonly g: Graph,
    // row-local.ts: the values that keep the tenant's request rows apart, rows outermost (null: none scale)
    private readonly rowValues: ReadonlySet<ValueId> | null = null,
    private readonly maxBatch = 1,
  ) {}

  // Producers and consumers of the graph's values, built on first use (the multi-node matchers: lower-excite.ts,
  // lower-residual.ts; lower.ts's fusion of a producer into its one eltwise consumer; used()).
  get graphIndex(): GraphIndex {
    return (this.index ??= indexGraph(this.g));
  }

  // Whether a node or the graph's outputs read v (an optional output nobody reads may be left unlowered).
  used(v: ValueId): boolean {
    return this.graphIndex.consumers(v).length > 0 || this.graphIndex.isGraphOutput(v);
  }

  where(): string {
    const n = this.node;
    return n ? `tenant '${this.tenantId}': node '${n.name}' (${n.op})` : `tenant '${this.tenantId}'`;
  }

  get limits(): SizeLimits {
    return this.fleet.limits ?? DEFAULT_LIMITS;
  }

  // Every buffer's bytes are checked against its arena's limit as it is created, before the plan lays it out
  // (a batch dim of 10^15 stops here, naming the tenant, node and value, not at serve start).
  newBuf(kind: BufKind, name: string, bytes: number, weight?: Tensor): number {
    const lim = BUF_LIMIT[kind];
    const max = this.limits[lim.key];
    if (!(bytes <= max)) {
      fail(
        'LIMIT',
        `${this.where()}: ${lim.what} '${name}' would take ${formatBytes(bytes)}, past the ${lim.arena} limit of ${formatBytes(max)} (${LIMIT_FLAGS[lim.key]})`,
      );
    }
    const id = this.fleet.bufs.length;
    this.fleet.bufs.push({ id, tenant: this.tenant, kind, bytes, name: `${this.tenantId}/${name}`, ...(weight ? { weight } : {}) });
    return id;
  }

  buf(id: number): Buf {
    return this.fleet.bufs[id]!;
  }

  shapeOf(v: ValueId): number[] {
    return this.g.values.get(v)!.type.shape as number[];
  }

  dtypeOf(v: ValueId): DType {
    return this.g.values.get(v)!.type.dtype;
  }

  constantOf(v: ValueId | null | undefined): Tensor | undefined {
    return v == null ? undefined : this.g.constants.get(v);
  }

  // A constant of one element (inlined into programs as a number), else undefined: only its size is looked at
  // otherwise, so a constant a cached tenant left on disk stays there (ir/deferred.ts).
  scalarConstantOf(v: ValueId | null | undefined): Tensor | undefined {
    if (v == null) return undefined;
    const c = placeConstant(this.g, v);
    return c !== undefined && c.data.length === 1 ? this.constantOf(v) : undefined;
  }

  has(v: ValueId): boolean {
    return this.locs.has(v) || this.g.constants.has(v);
  }

  // Where a value lives; constants become weight buffers on first use.
  loc(v: ValueId): Loc {
    const l = this.locs.get(v);
    if (l !== undefined) return l;
    const c = placeConstant(this.g, v); // laid out, not read: a deferred constant's bytes stay where they are (ir/deferred.ts)
    if (c === undefined) fail('VERIFY', `${this.where()}: value '${this.g.values.get(v)?.name ?? v}' has no location`);
    let b = this.weightOf.get(v);
    if (b === undefined) {
      b = this.newBuf('weight', this.g.values.get(v)!.name, c.data.byteLength, c);
      this.weightOf.set(v, b);
    }
    const loc: Loc = { ref: { buf: b, offset: 0 }, dtype: c.dtype, shape: c.shape };
    this.locs.set(v, loc);
    return loc;
  }

  get gemmDType(): 'f32' | 'bf16' | 'f16' {
    return this.fleet.gemmDType ?? 'f32';
  }

  // Value v as a GEMM operand in gemmDType: itself in f32 plans; in bf16/f16 plans a constant becomes a
  // weight converted at compile time (its f32 form is not stored unless something else reads it), an
  // activation a copy cast by an eltwise step. Both are made once per value/location.
  gemmOperand(v: ValueId): Loc {
    const dt = this.gemmDType;
    if (dt === 'f32') return this.loc(v);
    const c = this.g.constants.get(v);
    if (c === undefined) return this.castForGemm(this.loc(v));
    let l = this.halfWeightOf.get(v);
    if (l === undefined) {
      const t = makeTensor(dt, c.shape);
      const src = c.data as Float32Array;
      const dst = t.data as Uint16Array;
      const cvt = dt === 'bf16' ? f32ToBf16 : f32ToF16;
      for (let i = 0; i < src.length; i++) dst[i] = cvt(src[i]!);
      l = this.weight(`${this.g.values.get(v)!.name}_${dt}`, t);
      this.halfWeightOf.set(v, l);
    }
    return l;
  }

  // An f32 activation (or a view of one) cast to gemmDType by an elementwise step (round to nearest even).
  castForGemm(loc: Loc): Loc {
    const dt = this.gemmDType;
    if (dt === 'f32' || loc.dtype === dt) return loc;
    if (loc.dtype !== 'f32') fail('UNSUPPORTED_FEATURE', `${this.where()}: GEMM operands must be f32 to be cast to ${dt}, got ${loc.dtype}`);
    const key = `${loc.ref.buf}:${loc.ref.offset}:${loc.shape.join(',')}`;
    let out = this.castOf.get(key);
    if (out === undefined) {
      out = this.temp(`${this.buf(loc.ref.buf).name.slice(this.tenantId.length + 1)}_${dt}`, dt, loc.shape);
      const shape = loc.shape.length === 0 ? [1] : loc.shape;
      this.kernel({ op: 'eltwise', program: [{ op: 'in', i: 0 }], computeF32: true }, [
        { shape, inputs: [{ ref: loc.ref, dtype: 'f32', strides: contiguousStrides(shape) }], out: out.ref, outDType: dt },
      ]);
      this.castOf.set(key, out);
    }
    return out;
  }

  setLoc(v: ValueId, loc: Loc): void {
    this.locs.set(v, loc);
  }

  // A fresh activation buffer holding the whole of value v.
  newValue(v: ValueId): Loc {
    const shape = this.shapeOf(v);
    const dtype = this.dtypeOf(v);
    const loc = this.temp(this.g.values.get(v)!.name, dtype, shape);
    this.locs.set(v, loc);
    return loc;
  }

  temp(name: string, dtype: DType, shape: readonly number[]): Loc {
    const bytes = Math.max(1, numel(shape)) * byteSize(dtype);
    return { ref: { buf: this.newBuf('act', name, bytes), offset: 0 }, dtype, shape };
  }

  // A compile-time tensor laid out for a launch (a derived constant: broadcast bias, index table, ...).
  weight(name: string, t: Tensor): Loc {
    return { ref: { buf: this.newBuf('weight', name, t.data.byteLength, t), offset: 0 }, dtype: t.dtype, shape: t.shape };
  }

  // A view of `loc` starting `elems` elements in, with a new shape (free: no step).
  view(loc: Loc, shape: readonly number[], elems = 0, dtype: DType = loc.dtype): Loc {
    return { ref: { buf: loc.ref.buf, offset: loc.ref.offset + elems * byteSize(loc.dtype) }, dtype, shape };
  }

  private depsFor(reads: readonly number[], writes: readonly number[], after: readonly number[]): number[] {
    const deps = new Set<number>(after);
    for (const b of reads) for (const s of this.writers.get(b) ?? []) deps.add(s);
    // writers of one buffer are ordered only when asked (`after`: fill then copy); concat parts are disjoint
    void writes;
    return [...deps].sort((a, b) => a - b);
  }

  private record(step: Step, writes: readonly number[]): Step {
    this.fleet.steps.push(step);
    for (const b of new Set(writes)) {
      let list = this.writers.get(b);
      if (list === undefined) this.writers.set(b, (list = []));
      list.push(step.id);
    }
    return step;
  }

  source(): string {
    return `${this.tenantId}/${this.node?.name ?? 'output'}`;
  }

  // GemmStep.rowsUnit for a GEMM that reads value `a` whole as its untransposed A [m, k]: m / maxBatch when `a`
  // is row-local (its dim-0 blocks are the request rows, so the GEMM's row blocks are too), else undefined.
  rowsUnit(a: ValueId, m: number, k: number): number | undefined {
    if (this.rowValues === null || !this.rowValues.has(a) || m % this.maxBatch !== 0 || m === 0) return undefined;
    if (numel(this.shapeOf(a)) !== m * k) return undefined;
    return m / this.maxBatch;
  }

  // Runs `lower` (one GEMM node writing value `out`) with `residual` added in its GEMM's epilogue: each entry's
  // residual sits where its C sits, relative to `out` (both f32 of one shape).
  withResidual(residual: Loc, out: ValueId, lower: () => void): void {
    this.residual = { loc: residual, out };
    try {
      lower();
      if (this.residual !== null) fail('VERIFY', `${this.where()}: the residual add found no GEMM to fold into`);
    } finally {
      this.residual = null;
    }
  }

  // The residual withResidual() set, taken by a lowering that adds it itself instead of in a GEMM's epilogue (the
  // conv kernel): null when none is pending.
  takeResidual(): { readonly loc: Loc; readonly out: ValueId } | null {
    const res = this.residual;
    this.residual = null;
    return res;
  }

  gemm(dtype: DType, problem0: GemmProblem, entries0: readonly DraftGemmEntry[], after: readonly number[] = [], rowsUnit?: number): Step {
    let [problem, entries] = [problem0, entries0];
    const res = this.takeResidual();
    if (res !== null) {
      const Y = this.loc(res.out).ref;
      entries = entries.map((e) => {
        if (e.c.buf !== Y.buf) fail('VERIFY', `${this.where()}: a residual GEMM entry writes outside its output`);
        return { ...e, residual: { buf: res.loc.ref.buf, offset: res.loc.ref.offset + e.c.offset - Y.offset } };
      });
      problem = { ...problem, residual: true };
    }
    const reads = entries.flatMap(gemmEntryReads);
    const writes = entries.map((e) => e.c.buf);
    const work = gemmWork(dtype, problem, entries.length);
    const step: Step = {
      kind: 'gemm',
      id: this.fleet.steps.length,
      tenant: this.tenant,
      deps: this.depsFor(reads, writes, after),
      source: this.source(),
      flops: work.flops,
      bytes: work.bytes,
      dtype,
      problem,
      entries,
      key: `gemm|${dtype}|${JSON.stringify(problem)}`,
      ...(rowsUnit !== undefined && entries.length === 1 ? { rowsUnit } : {}),
    };
    return this.record(step, writes);
  }

  kernel(op: KernelOp, segments: readonly DraftSegment[], after: readonly number[] = []): Step | null {
    if (segments.length === 0) return null;
    const reads = segments.flatMap((g) => g.inputs.map((v) => v.ref.buf));
    const writes = segments.map((g) => g.out.buf);
    const s0 = segments[0]!;
    const work = kernelWork(op, segments);
    // a conv kernel is compiled for its geometry and output channels: only convs of one shape share a launch
    const shapeKey = op.op === 'conv' ? `|${JSON.stringify(s0.geom)}|${JSON.stringify(s0.dims)}` : '';
    const step: Step = {
      kind: 'kernel',
      id: this.fleet.steps.length,
      tenant: this.tenant,
      deps: this.depsFor(reads, writes, after),
      source: this.source(),
      flops: work.flops,
      bytes: work.bytes,
      op,
      key: kernelKey(op.op, constantsAbstracted(op) + shapeKey, s0),
      exactKey: kernelKey(op.op, JSON.stringify(op) + shapeKey, s0),
      segments,
    };
    return this.record(step, writes);
  }

  contiguous(shape: readonly number[]): number[] {
    return contiguousStrides(shape);
  }
}
