// The work one GEMM or kernel step does, in FLOPs and bytes read + written: what LaunchInfo reports and the
// cost model prices. One definition, used by lowering (every step) and by `loom calibrate` (its
// micro-benchmarks), so a calibrated model is fitted on exactly the numbers it is later asked about.
import { byteSize, type DType } from '../../ir/dtype.js';
import { numel } from '../../ir/shape.js';
import { type GemmProblem, type KernelOp, type PoolGeometry, im2colRows } from '../../ir/contract/launch.js';

export interface Work {
  readonly flops: number;
  readonly bytes: number;
}

// A and B in `dtype`; C, bias and residual always f32. `entries` problems of the same shape.
export function gemmWork(dtype: DType, problem: GemmProblem, entries: number): Work {
  const ab = (problem.m * problem.k + problem.k * problem.n) * byteSize(dtype);
  const biasElems = problem.bias === 'none' ? 0 : problem.bias === 'full' ? problem.m * problem.n : problem.bias === 'row' ? problem.n : problem.m;
  const residualElems = problem.residual === true ? problem.m * problem.n : 0;
  const cb = (problem.m * problem.n + biasElems + residualElems) * 4;
  return { flops: 2 * problem.m * problem.n * problem.k * entries, bytes: (ab + cb) * entries };
}

// How a GEMM spreads over the GPU's SMs: its output in GEMM_BLOCK x GEMM_BLOCK blocks (a typical cuBLAS CTA's
// tile at these sizes), each a CTA walking all of k. `blocks` over every entry, `blockFlops` the largest block's
// multiply-adds. A GEMM with fewer blocks than SMs and a deep k (a conv late in a small-image network: 128 x 64
// outputs, k = 1152) runs as long as one block takes, whatever its total FLOPs (cost-fit.ts waveUs).
export const GEMM_BLOCK = 64;
export interface GemmBlocks {
  readonly blocks: number;
  readonly blockFlops: number;
}
export function gemmBlocks(problem: Pick<GemmProblem, 'm' | 'n' | 'k'>, entries: number): GemmBlocks {
  const { m, n, k } = problem;
  return {
    blocks: entries * Math.ceil(m / GEMM_BLOCK) * Math.ceil(n / GEMM_BLOCK),
    blockFlops: 2 * Math.min(m, GEMM_BLOCK) * Math.min(n, GEMM_BLOCK) * k,
  };
}

// The bytes of C a GEMM writes when it adds a bias or a residual or applies an activation (a backend may run
// that as an epilogue after the product): 0 for a plain product.
export function gemmEpilogueBytes(problem: GemmProblem, entries: number): number {
  return problem.bias === 'none' && problem.activation === null && problem.residual !== true ? 0 : problem.m * problem.n * 4 * entries;
}

// What the work of a kernel segment depends on (launch Segment and the planner's DraftSegment both fit).
export interface SegmentShape {
  readonly shape?: readonly number[];
  readonly dims?: readonly number[];
  readonly count?: number;
  readonly geom?: PoolGeometry;
  readonly inputs: ReadonlyArray<{ readonly dtype: DType }>;
  readonly outDType: DType;
}

export function kernelWork(op: KernelOp, segments: readonly SegmentShape[]): Work {
  if (segments.length === 0) return { flops: 0, bytes: 0 };
  if (op.op === 'squeeze_excite') {
    // x read twice (the mean, the scale), out written once, both weight matrices read once per image
    let flops = 0;
    let elemsMoved = 0;
    for (const g of segments) {
      const [n = 0, c = 0, sp = 0, h = 0] = g.dims ?? [];
      flops += n * (3 * c * sp + 4 * c * h);
      elemsMoved += 3 * n * c * sp + n * (2 * c * h + c + h);
    }
    return { flops, bytes: elemsMoved * 4 };
  }
  if (op.op === 'conv') {
    // an implicit GEMM per image: the image, the filter and out once each (the columns are never written), bias
    // and residual where present
    let flops = 0;
    let elemsMoved = 0;
    for (const g of segments) {
      const q = g.geom;
      const m = g.dims?.[0] ?? 0;
      if (q === undefined) continue;
      const k = q.c * q.kh * q.kw;
      const p = q.oh * q.ow;
      flops += 2 * m * k * p;
      elemsMoved += q.c * q.h * q.w + m * k + m * p + (op.bias ? m : 0) + (op.residual ? m * p : 0);
    }
    return { flops, bytes: elemsMoved * 4 };
  }
  let elems = 0;
  for (const g of segments) elems += segmentElements(op, g);
  const inBytes = segments.reduce((a, g) => a + g.inputs.reduce((b, v) => b + byteSize(v.dtype), 0), 0) / segments.length;
  return {
    flops: elems * (op.op === 'eltwise' ? Math.max(1, op.program.length) : 2),
    bytes: elems * (inBytes + byteSize(segments[0]!.outDType)),
  };
}

function segmentElements(op: KernelOp, g: SegmentShape): number {
  if (g.count !== undefined) return g.count;
  if (g.shape !== undefined) return numel(g.shape);
  if (g.geom !== undefined) {
    const q = g.geom;
    return op.op === 'im2col' ? q.n * im2colRows(op, q) * q.oh * q.ow : q.n * q.c * q.oh * q.ow * (op.op === 'pool' || op.op === 'depthwise' ? q.kh * q.kw : 1);
  }
  if (g.dims !== undefined) {
    // gather dims are [outer, axisLen, inner, nIdx]: it moves only the rows it picks, not the whole table
    if (op.op === 'gather') return g.dims[0]! * g.dims[2]! * g.dims[3]!;
    return numel(g.dims);
  }
  return 0;
}
