// The planner's internal form between lowering and launch building: every tenant's IR becomes a DAG of
// steps (one GEMM or one kernel over that tenant's tensors), reading and writing abstract buffers that the
// memory plan places in arenas later. Not part of the Plan contract.
import type { DType } from '../../ir/dtype.js';
import { stridesOf } from '../../ir/shape.js';
import type { Tensor } from '../../ir/tensor.js';
import type { GemmProblem, KernelOp, PoolGeometry } from '../../ir/contract/launch.js';

export type BufKind = 'input' | 'output' | 'act' | 'weight';

export interface Buf {
  readonly id: number;
  readonly tenant: number;
  kind: BufKind; // 'act' may become 'output' when a graph output is computed straight into its slot (set by lowering)
  readonly bytes: number;
  readonly name: string;
  readonly weight?: Tensor; // kind 'weight': the bytes as launches read them
  io?: number; // kind 'input'/'output': index into the tenant's inputs/outputs
}

// A byte offset into one buffer.
export interface LRef {
  readonly buf: number;
  readonly offset: number;
}

export interface LView {
  readonly ref: LRef;
  readonly dtype: DType;
  readonly strides: readonly number[];
}

// launch.ts Segment with buffer-relative refs (the tenant is the step's).
export interface DraftSegment {
  readonly shape?: readonly number[];
  readonly dims?: readonly number[];
  readonly count?: number;
  readonly geom?: PoolGeometry;
  readonly inputs: readonly LView[];
  readonly out: LRef;
  readonly outDType: DType;
  readonly outStrides?: readonly number[];
}

export interface DraftGemmEntry {
  readonly a: LRef;
  readonly b: LRef;
  readonly c: LRef;
  readonly bias: LRef | null;
  readonly residual?: LRef; // exactly when the problem has residual (launch.ts GemmProblem)
}

// What one GEMM entry reads besides its weights' arena: A, B, the bias and the residual.
export function gemmEntryReads(e: DraftGemmEntry): number[] {
  return [e.a.buf, e.b.buf, ...(e.bias ? [e.bias.buf] : []), ...(e.residual ? [e.residual.buf] : [])];
}

interface StepBase {
  readonly id: number; // global, in lowering order
  readonly tenant: number;
  readonly deps: readonly number[]; // step ids that must run in an earlier stage
  readonly source: string; // "tenant/node"
  readonly flops: number;
  readonly bytes: number;
}

export interface GemmStep extends StepBase {
  readonly kind: 'gemm';
  readonly dtype: DType;
  readonly problem: GemmProblem;
  readonly entries: readonly DraftGemmEntry[];
  readonly key: string; // the GEMM signature: steps with equal keys may share one strided launch
  // m = rowsUnit · the tenant's rows, rows outermost (row-local.ts); absent: m never scales. Not in `key`, so it
  // never splits a launch: a launch's problem carries it only when all its steps agree (launches.ts).
  readonly rowsUnit?: number;
}

export interface KernelStep extends StepBase {
  readonly kind: 'kernel';
  readonly op: KernelOp;
  // op + program + dtypes, eltwise constants without their values (eltwise-params.ts): steps with equal
  // keys share one launch
  readonly key: string;
  readonly exactKey: string; // the same with the constants' values: equal exact keys share one program as is
  readonly segments: readonly DraftSegment[];
}

export type Step = GemmStep | KernelStep;

export function stepReads(s: Step): number[] {
  if (s.kind === 'gemm') return s.entries.flatMap(gemmEntryReads);
  return s.segments.flatMap((g) => g.inputs.map((v) => v.ref.buf));
}

export function stepWrites(s: Step): number[] {
  if (s.kind === 'gemm') return s.entries.map((e) => e.c.buf);
  return s.segments.map((g) => g.out.buf);
}

// A kernel key: "<op>_<hash>|<op text>|<input dtypes>><output dtype>"; its part before '|' names the
// launch's kernel.
export function kernelKey(op: KernelOp['op'], opText: string, s0: DraftSegment): string {
  const text = `${opText}|${s0.inputs.map((v) => v.dtype).join(',')}>${s0.outDType}`;
  return `${op}_${hashKey(text)}|${text}`;
}

export const kernelNameOf = (key: string): string => key.slice(0, key.indexOf('|'));

// FNV-1a over a string: short stable names for kernel keys.
export function hashKey(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

// A dense row-major layout's strides: ir/shape.ts stridesOf, under the name the planner's callers use.
export const contiguousStrides = stridesOf;

export const ALIGN = 256;
export const alignUp = (n: number, a = ALIGN): number => Math.ceil(n / a) * a;
