// What `loom calibrate` measures: the launch kinds and shapes the planner emits, as a grid of points.
//   gemm.<math>          strided-batched GEMM over (m, n, k, batch) — m the rows (a tenant's batch, or a
//                        conv's output channels), batch the tenants (× images) sharing the launch
//   gemm_matvec.<math>   the same at m = 1 (MATVEC_ROWS: matrix-vector products, bandwidth-bound, fitted apart)
//   gemm.epilogue        the same GEMMs with a per-row (a conv's per-channel, `col`) bias and ReLU, priced as the
//                        difference: the epilogue no cuBLASLt call fuses, so the load-time choice runs it as an
//                        epilogue launch or a Loom kernel's store (a row bias and ReLU fuse into cuBLASLt and
//                        measured ~0.4 µs on an H100, 2026-12-07, while 17 of the demo's 67 GEMM launches kept
//                        an epilogue launch)
//   gemm_grouped.<math>  grouped GEMMs whose groups are several of those shapes
//   kernel.<op>          generated kernels (elementwise, reduce, softmax, layernorm, pool, im2col, copy,
//                        fill) by bytes moved
// --quick keeps a coarse grid (under a minute on a GPU, seconds on a CPU).
import type { KernelOp, PoolGeometry } from '../../ir/contract/launch.js';
import type { GemmMath } from '../planner/cost.js';
import { gemmKey } from '../planner/cost-fit.js';

export interface GemmShape {
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly batch: number;
}

// One kernel segment's shape; bench-plan.ts places its inputs and output.
export interface KernelShape {
  readonly op: KernelOp;
  readonly inputs: ReadonlyArray<{ readonly elems: number; readonly strides: readonly number[] }>; // f32 views
  readonly outElems: number;
  readonly shape?: readonly number[];
  readonly dims?: readonly number[];
  readonly count?: number;
  readonly geom?: PoolGeometry;
}

export type BenchPoint =
  | { readonly kind: 'gemm'; readonly key: string; readonly math: GemmMath; readonly shape: GemmShape; readonly epilogue: boolean; readonly label: string }
  | { readonly kind: 'gemm_grouped'; readonly key: string; readonly math: GemmMath; readonly shapes: readonly GemmShape[]; readonly label: string }
  | { readonly kind: 'kernel'; readonly key: string; readonly kernel: KernelShape; readonly label: string };

export interface GridOptions {
  readonly backend: 'cpu' | 'cuda';
  readonly quick: boolean;
}

// GEMM operand bytes one point may read (A and B of every entry): the weights region is at least this big.
const MAX_GEMM_BYTES = { cuda: { quick: 160 * 2 ** 20, full: 256 * 2 ** 20 }, cpu: { quick: 16 * 2 ** 20, full: 48 * 2 ** 20 } } as const;
// FLOPs one launch may do: a CPU point past this takes too long to repeat.
const MAX_GEMM_FLOPS = { cuda: 4e11, cpu: 4e9 } as const;

export function gemmMaths(o: GridOptions): GemmMath[] {
  if (o.backend === 'cpu') return o.quick ? ['f32'] : ['f32', 'bf16'];
  return o.quick ? ['f32', 'tf32', 'bf16'] : ['f32', 'tf32', 'bf16', 'f16'];
}

function gemmShapes(o: GridOptions): GemmShape[] {
  const cpu = o.backend === 'cpu';
  const ms = o.quick ? (cpu ? [1, 32] : [1, 16, 128]) : cpu ? [1, 8, 64, 256] : [1, 4, 16, 64, 256, 1024];
  const nk: Array<[number, number]> = o.quick
    ? cpu
      ? [
          [256, 256],
          [1024, 512],
        ]
      : [
          [256, 256],
          [1024, 1024],
          [3136, 576], // a conv's output pixels x its im2col rows
          [4096, 1024],
        ]
    : cpu
      ? [
          [128, 128],
          [512, 512],
          [1024, 1024],
          [784, 576],
          [4096, 512],
        ]
      : [
          [128, 128],
          [512, 512],
          [1024, 1024],
          [2048, 2048],
          [3136, 576],
          [784, 1152],
          [4096, 1024],
          [1024, 4096],
        ];
  const batches = o.quick ? (cpu ? [1, 8] : [1, 16]) : cpu ? [1, 4, 16] : [1, 4, 16, 64];
  const out: GemmShape[] = [];
  for (const m of ms) for (const [n, k] of nk) for (const batch of batches) out.push({ m, n, k, batch });
  return out;
}

const gemmLabel = (s: GemmShape, math: string) => `${s.m}x${s.n}x${s.k} x${s.batch} ${math}`;

export function gemmFits(s: GemmShape, math: GemmMath, o: GridOptions): boolean {
  const es = math === 'bf16' || math === 'f16' ? 2 : 4;
  return (
    s.batch * (s.m * s.k + s.k * s.n) * es <= MAX_GEMM_BYTES[o.backend][o.quick ? 'quick' : 'full'] &&
    2 * s.m * s.n * s.k * s.batch <= MAX_GEMM_FLOPS[o.backend]
  );
}

export function benchGrid(o: GridOptions): BenchPoint[] {
  const out: BenchPoint[] = [];
  const shapes = gemmShapes(o);
  for (const math of gemmMaths(o)) {
    const fit = shapes.filter((s) => gemmFits(s, math, o));
    for (const s of fit) out.push({ kind: 'gemm', key: gemmKey(math, s.m), math, shape: s, epilogue: false, label: `gemm ${gemmLabel(s, math)}` });
    // grouped: every (m, batch) with the grid's (n, k) shapes as its groups
    const byMB = new Map<string, GemmShape[]>();
    for (const s of fit) {
      const k = `${s.m}x${s.batch}`;
      byMB.set(k, [...(byMB.get(k) ?? []), s]);
    }
    for (const group of byMB.values()) {
      if (group.length < 2) continue;
      out.push({
        kind: 'gemm_grouped',
        key: `gemm_grouped.${math}`,
        math,
        shapes: group,
        label: `gemm_grouped ${group.map((s) => `${s.m}x${s.n}x${s.k}`).join('+')} x${group[0]!.batch} ${math}`,
      });
    }
  }
  // the epilogue: the f32 shapes again with a per-row (`col`) bias and ReLU
  for (const s of shapes.filter((x) => gemmFits(x, 'f32', o)))
    out.push({ kind: 'gemm', key: 'gemm.epilogue', math: 'f32', shape: s, epilogue: true, label: `gemm+bias+relu ${gemmLabel(s, 'f32')}` });
  for (const k of kernelShapes(o)) out.push({ kind: 'kernel', key: `kernel.${k.op.op}`, kernel: k, label: kernelLabel(k) });
  return out;
}

// Input bytes of the tick probes (the tick's own cost: its fixed cost and io copies).
export function ioSizes(o: GridOptions): number[] {
  if (o.backend === 'cpu') return [4096, 262144, 4194304];
  return o.quick ? [4096, 1048576, 16777216] : [4096, 65536, 1048576, 8388608, 33554432];
}

// The smallest launch there is: its time is the fixed cost of a launch.
export const OVERHEAD_PROBE: KernelShape = { op: { op: 'fill', value: 0 }, inputs: [], outElems: 1, count: 1 };

function kernelLabel(k: KernelShape): string {
  const dims = k.shape ?? k.dims ?? (k.count !== undefined ? [k.count] : k.geom ? [k.geom.c, k.geom.h, k.geom.w] : []);
  return `${k.op.op}${k.op.op === 'eltwise' ? `(${k.inputs.length} in)` : ''} ${dims.join('x')}`;
}

function kernelShapes(o: GridOptions): KernelShape[] {
  const sizes = o.quick
    ? o.backend === 'cpu'
      ? [4096, 262144]
      : [4096, 262144, 4194304]
    : o.backend === 'cpu'
      ? [1024, 16384, 262144, 2097152]
      : [1024, 16384, 262144, 2097152, 16777216];
  const out: KernelShape[] = [OVERHEAD_PROBE];
  for (const n of sizes) {
    const cols = Math.min(1024, n);
    const rows = n / cols;
    const flat = { elems: n, strides: [1] };
    const relu = [{ op: 'in', i: 0 }, { op: 'relu' }] as const;
    const add = [{ op: 'in', i: 0 }, { op: 'in', i: 1 }, { op: 'add' }] as const;
    out.push({ op: { op: 'eltwise', program: relu, computeF32: true }, inputs: [flat], outElems: n, shape: [n] });
    out.push({ op: { op: 'eltwise', program: add, computeF32: true }, inputs: [flat, flat], outElems: n, shape: [n] });
    const rowsView = { elems: n, strides: [cols, 1, 1] };
    out.push({ op: { op: 'reduce', reduce: 'sum', selectLast: false }, inputs: [rowsView], outElems: rows, dims: [rows, cols, 1] });
    out.push({ op: { op: 'softmax', log: false }, inputs: [rowsView], outElems: n, dims: [rows, cols, 1] });
    const scale = { elems: cols, strides: [1] };
    out.push({ op: { op: 'layernorm', epsilon: 1e-5 }, inputs: [{ elems: n, strides: [cols, 1] }, scale], outElems: n, dims: [rows, cols] });
    out.push({ op: { op: 'copy' }, inputs: [flat], outElems: n, shape: [n] });
    out.push({ op: { op: 'fill', value: 0 }, inputs: [], outElems: n, count: n });
    // images of 64 channels at the side that gives n elements (at least 4x4)
    const c = 64;
    const side = Math.max(4, Math.round(Math.sqrt(n / c)));
    const image = { elems: c * side * side, strides: [side * side, side, 1] };
    const pool = geometry(c, side, 3, 2, 1);
    out.push({ op: { op: 'pool', mode: 'max', countIncludePad: false }, inputs: [image], outElems: c * pool.oh * pool.ow, geom: pool });
    const conv = geometry(c, side, 3, 1, 1);
    out.push({ op: { op: 'im2col' }, inputs: [image], outElems: c * 9 * conv.oh * conv.ow, geom: conv });
    // the conv kernel (`--conv implicit`): 64 -> 64 channels, 3 x 3, with a bias and ReLU; its FLOPs grow 576x its
    // image, so the largest images are left out (and on the CPU all but the smallest)
    if (n <= (o.backend === 'cpu' ? 16384 : 2097152)) {
      const dense = (elems: number) => ({ elems, strides: [] });
      const inputs = [dense(c * side * side), dense(c * 9 * c), dense(c)];
      const op = { op: 'conv', activation: { kind: 'relu' }, bias: true, residual: false } as const;
      out.push({ op, inputs, outElems: c * conv.oh * conv.ow, geom: conv, dims: [c] });
    }
  }
  return out;
}

function geometry(c: number, side: number, kernel: number, stride: number, pad: number): PoolGeometry {
  const o = Math.floor((side + 2 * pad - kernel) / stride) + 1;
  return {
    n: 1,
    c,
    h: side,
    w: side,
    oh: o,
    ow: o,
    kh: kernel,
    kw: kernel,
    sh: stride,
    sw: stride,
    padTop: pad,
    padLeft: pad,
    padBottom: pad,
    padRight: pad,
    dh: 1,
    dw: 1,
  };
}
