// The micro-benchmarks as one LaunchPlan per GEMM math: every grid point becomes the same launch repeated,
// each repetition on its own operands (a rotating window over one random weights region and the activation
// arena, wider than a GPU's L2, so a launch reads its weights from memory as it does in a real tick, where
// the fleet's weights do not fit the cache; a point larger than the window reuses one copy). Layout 'pair' (CUDA): per point a tenant with N/2 repetitions
// and one with N, so the difference of their masked ticks is N/2 launches with every fixed cost of a tick
// cancelled; 'single' (CPU): one tenant of N repetitions, each launch timed on its own.
import { byteSize } from '../../ir/dtype.js';
import type { GemmEntry, GemmProblem, Launch, LaunchInfo, Ref, Segment } from '../../ir/contract/launch.js';
import type { PlannedTenant, Plan, Precision } from '../../ir/contract/plan.js';
import { makeTensor } from '../../ir/tensor.js';
import type { GemmMath } from '../planner/cost.js';
import { type Work, gemmEpilogueBytes, gemmWork, kernelWork } from '../planner/work.js';
import type { BenchPoint, GemmShape, KernelShape } from './grid.js';

export type BenchLayout = 'pair' | 'single';

export interface PointTenants {
  readonly point: BenchPoint;
  readonly work: Work & { readonly epilogueBytes: number }; // of one launch
  readonly short: string | null; // tenant id with `shortCount` launches ('pair' only)
  readonly long: string; // tenant id with `longCount` launches
  readonly shortCount: number;
  readonly longCount: number;
  readonly longLaunchIds: readonly number[];
}

export interface BenchPlan {
  readonly plan: Plan;
  readonly points: readonly PointTenants[];
}

const ALIGN = 256;
const MIN_REPS = { pair: 4, single: 2 } as const;
const MAX_REPS = { pair: 32, single: 16 } as const;

const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

export function precisionOf(math: GemmMath): Precision {
  return math === 'tf32' ? 'tf32' : math === 'bf16' ? 'bf16' : math === 'f16' ? 'fp16' : 'fp32';
}

function gemmDType(math: GemmMath): 'f32' | 'bf16' | 'f16' {
  return math === 'bf16' ? 'bf16' : math === 'f16' ? 'f16' : 'f32';
}

function problemOf(s: GemmShape, epilogue: boolean): GemmProblem {
  return {
    m: s.m,
    n: s.n,
    k: s.k,
    transA: false,
    transB: false,
    lda: s.k,
    ldb: s.n,
    ldc: s.n,
    alpha: 1,
    beta: 1,
    bias: epilogue ? 'col' : 'none', // a conv's per-channel bias: the epilogue cuBLASLt cannot fuse (grid.ts)
    ldBias: 0,
    activation: epilogue ? { kind: 'relu' } : null,
  };
}

// Bytes one repetition reads from the weights region and writes into the activation arena.
function footprint(p: BenchPoint): { input: number; output: number } {
  const gemm = (s: GemmShape, math: GemmMath, epilogue: boolean) => ({
    input: align(s.batch * ((s.m * s.k + s.k * s.n) * byteSize(gemmDType(math)) + (epilogue ? s.m * 4 : 0))),
    output: align(s.batch * s.m * s.n * 4),
  });
  switch (p.kind) {
    case 'gemm':
      return gemm(p.shape, p.math, p.epilogue);
    case 'gemm_grouped':
      return p.shapes.map((s) => gemm(s, p.math, false)).reduce((a, b) => ({ input: a.input + b.input, output: a.output + b.output }));
    case 'kernel':
      return { input: p.kernel.inputs.reduce((a, v) => a + align(v.elems * 4), 0), output: align(p.kernel.outElems * 4) };
  }
}

export function repetitions(p: BenchPoint, layout: BenchLayout, rotateBytes: number): number {
  const f = footprint(p);
  const n = Math.ceil(rotateBytes / Math.max(1, f.input + f.output));
  const clamped = Math.min(MAX_REPS[layout], Math.max(MIN_REPS[layout], n));
  return layout === 'pair' ? clamped + (clamped % 2) : clamped;
}

export function buildBenchPlan(points: readonly BenchPoint[], precision: Precision, layout: BenchLayout, rotateBytes: number, seed = 1): BenchPlan {
  const reps = points.map((p) => repetitions(p, layout, rotateBytes));
  const feet = points.map(footprint);
  // the window: wide enough for the rotation and for the largest point; a point cycles through as many
  // copies of its operands as fit (one, for a point past the window: too big for a cache anyway)
  const region = align(Math.max(rotateBytes, ...feet.map((f) => f.input)));
  const act = align(Math.max(rotateBytes, ...feet.map((f) => f.output)));
  const slot = (bytes: number, window: number, j: number) => (bytes > 0 ? (j % Math.max(1, Math.floor(window / bytes))) * bytes : 0);
  const tenants: PlannedTenant[] = [];
  const launches: Launch[] = [];
  const out: PointTenants[] = [];
  const addTenant = (id: string, layers: number): number => {
    const t = tenants.length;
    const io = (name: string, offset: number) => ({
      name,
      dtype: 'f32' as const,
      shape: [1, 4],
      batchAxis: 0,
      ref: { arena: 'io' as const, offset },
      bytes: 16,
    });
    tenants.push({ id, model: 'loom calibrate', maxBatch: 1, sloMs: null, layers, inputs: [io('x', t * 64)], outputs: [io('y', t * 64 + 32)] });
    return t;
  };
  points.forEach((p, i) => {
    const n = reps[i]!;
    const f = feet[i]!;
    const half = layout === 'pair' ? n / 2 : 0;
    const short = layout === 'pair' ? `p${i}-short` : null;
    const long = layout === 'pair' ? `p${i}-long` : `p${i}`;
    const ids: number[] = [];
    let work: PointTenants['work'] = { flops: 0, bytes: 0, epilogueBytes: 0 };
    const emit = (tenant: number, count: number, record: boolean) => {
      for (let j = 0; j < count; j++) {
        const l = launchOf(p, launches.length, tenant, slot(f.input, region, j), slot(f.output, act, j), `${tenants[tenant]!.id}/${p.label}#${j}`);
        work = { flops: l.info.flops, bytes: l.info.bytes, epilogueBytes: epilogueOf(l) };
        if (record) ids.push(l.id);
        launches.push(l);
      }
    };
    if (short !== null) emit(addTenant(short, half), half, false);
    emit(addTenant(long, n), n, true);
    out.push({ point: p, work, short, long, shortCount: half, longCount: n, longLaunchIds: ids });
  });
  const plan: Plan = {
    precision,
    tenants,
    launches: launches.map((l, stage) => ({ ...l, info: { ...l.info, stage } })),
    stages: launches.length,
    arenas: { weights: region, act, io: tenants.length * 64, actWithoutReuse: act },
    weights: [{ offset: 0, tensor: makeTensor('u8', [region], randomHalfwords(region, seed)) }],
    cost: { predictedTickUs: 0, ungroupedTickUs: 0, floorUs: 0, device: 'loom calibrate micro-benchmarks' },
  };
  return { plan, points: out };
}

function epilogueOf(l: Launch): number {
  if (l.kind === 'gemm') return gemmEpilogueBytes(l.problem, l.entries.length);
  if (l.kind === 'gemm_grouped') return l.groups.reduce((a, g) => a + gemmEpilogueBytes(g.problem, g.entries.length), 0);
  return 0;
}

function info(label: string, tenant: number, source: string, w: Work): LaunchInfo {
  return { stage: 0, label, tenants: [tenant], sources: [source], flops: w.flops, bytes: w.bytes, predictedUs: 0, ungroupedUs: 0 };
}

// Entries of one GEMM shape: A's, then B's, then the biases, from `inBase` in the weights region; C's from
// `outBase` in act. Returns the entries and the bytes used on each side.
function gemmEntries(s: GemmShape, dtype: 'f32' | 'bf16' | 'f16', epilogue: boolean, tenant: number, inBase: number, outBase: number) {
  const es = byteSize(dtype);
  const aBytes = s.m * s.k * es;
  const bBytes = s.k * s.n * es;
  const biasBase = inBase + s.batch * (aBytes + bBytes);
  const w = (offset: number): Ref => ({ arena: 'weights', offset });
  const entries: GemmEntry[] = Array.from({ length: s.batch }, (_, e) => ({
    tenant,
    a: w(inBase + e * aBytes),
    b: w(inBase + s.batch * aBytes + e * bBytes),
    c: { arena: 'act', offset: outBase + e * s.m * s.n * 4 },
    bias: epilogue ? w(biasBase + e * s.m * 4) : null,
  }));
  return {
    entries,
    strides: { a: aBytes, b: bBytes, c: s.m * s.n * 4, bias: epilogue ? s.m * 4 : 0 },
    input: align(s.batch * (aBytes + bBytes + (epilogue ? s.m * 4 : 0))),
    output: align(s.batch * s.m * s.n * 4),
  };
}

function launchOf(p: BenchPoint, id: number, tenant: number, inBase: number, outBase: number, source: string): Launch {
  switch (p.kind) {
    case 'gemm': {
      const dtype = gemmDType(p.math);
      const problem = problemOf(p.shape, p.epilogue);
      const g = gemmEntries(p.shape, dtype, p.epilogue, tenant, inBase, outBase);
      const strides = p.shape.batch > 1 ? g.strides : { ...g.strides, a: 0, b: 0, c: 0, bias: 0 };
      return { kind: 'gemm', id, dtype, problem, entries: g.entries, strides, info: info(p.label, tenant, source, gemmWork(dtype, problem, p.shape.batch)) };
    }
    case 'gemm_grouped': {
      const dtype = gemmDType(p.math);
      let inAt = inBase;
      let outAt = outBase;
      let flops = 0;
      let bytes = 0;
      const groups = p.shapes.map((s) => {
        const problem = problemOf(s, false);
        const g = gemmEntries(s, dtype, false, tenant, inAt, outAt);
        inAt += g.input;
        outAt += g.output;
        const w = gemmWork(dtype, problem, s.batch);
        flops += w.flops;
        bytes += w.bytes;
        return { problem, entries: g.entries };
      });
      return { kind: 'gemm_grouped', id, dtype, groups, info: info(p.label, tenant, source, { flops, bytes }) };
    }
    case 'kernel':
      return kernelLaunch(p.kernel, p.label, id, tenant, inBase, outBase, source);
  }
}

function kernelLaunch(k: KernelShape, label: string, id: number, tenant: number, inBase: number, outBase: number, source: string): Launch {
  let at = inBase;
  const inputs = k.inputs.map((v) => {
    const view = { ref: { arena: 'weights' as const, offset: at }, dtype: 'f32' as const, strides: v.strides };
    at += align(v.elems * 4);
    return view;
  });
  const segment = {
    tenant,
    inputs,
    out: { arena: 'act', offset: outBase },
    outDType: 'f32',
    ...(k.shape !== undefined ? { shape: k.shape } : {}),
    ...(k.dims !== undefined ? { dims: k.dims } : {}),
    ...(k.count !== undefined ? { count: k.count } : {}),
    ...(k.geom !== undefined ? { geom: k.geom } : {}),
  } as Segment; // exactly the op's fields (SEGMENT_FIELDS); the plan's validation checks them on write
  return { kind: 'kernel', id, kernel: `calibrate_${k.op.op}`, op: k.op, segments: [segment], info: info(label, tenant, source, kernelWork(k.op, [segment])) };
}

// Random data that reads as finite, moderate numbers in every float dtype the launches read it as: every
// 16-bit half-word is ±0x3000..0x3FFF (f16 ≈ 2^-3..2^0, bf16 ≈ 2^-31..2^0; f32 words ≈ 2^-31..2^0).
function randomHalfwords(bytes: number, seed: number): Uint8Array {
  const u8 = new Uint8Array(bytes);
  const h = new Uint16Array(u8.buffer, 0, Math.floor(bytes / 2));
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < h.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    h[i] = 0x3000 | (x & 0x0fff) | ((x >>> 16) & 0x8000);
  }
  return u8;
}

// The tick's own cost: one tenant per size, its input slot `size` bytes (an f32 row), its output 16 bytes,
// and one tiny GEMM (1x4x4) as its only launch. A tick of one tenant then costs the fixed cost of a tick, the
// copies of its slots and that launch.
export function buildIoPlan(sizes: readonly number[]): { plan: Plan; tenants: ReadonlyArray<{ readonly id: string; readonly ioBytes: number }> } {
  const tenants: PlannedTenant[] = [];
  const launches: Launch[] = [];
  let io = 0;
  sizes.forEach((size, t) => {
    const elems = Math.max(1, Math.floor(size / 4));
    const x = { name: 'x', dtype: 'f32' as const, shape: [1, elems], batchAxis: 0, ref: { arena: 'io' as const, offset: io }, bytes: elems * 4 };
    io = align(io + elems * 4);
    const y = { name: 'y', dtype: 'f32' as const, shape: [1, 4], batchAxis: 0, ref: { arena: 'io' as const, offset: io }, bytes: 16 };
    io = align(io + 16);
    tenants.push({ id: `io-${t}`, model: 'loom calibrate', maxBatch: 1, sloMs: null, layers: 1, inputs: [x], outputs: [y] });
    const shape = { m: 1, n: 4, k: 4, batch: 1 };
    const g = gemmEntries(shape, 'f32', false, t, 0, t * ALIGN);
    const problem = problemOf(shape, false);
    launches.push({
      kind: 'gemm',
      id: t,
      dtype: 'f32',
      problem,
      entries: g.entries,
      strides: { a: 0, b: 0, c: 0, bias: 0 },
      info: { ...info('gemm 1x4x4 (tick probe)', t, `io-${t}/probe`, gemmWork('f32', problem, 1)), stage: t },
    });
  });
  const plan: Plan = {
    precision: 'fp32',
    tenants,
    launches,
    stages: launches.length,
    arenas: { weights: ALIGN, act: ALIGN * sizes.length, io: Math.max(io, ALIGN), actWithoutReuse: ALIGN * sizes.length },
    weights: [{ offset: 0, tensor: makeTensor('u8', [ALIGN], randomHalfwords(ALIGN, 7)) }],
    cost: { predictedTickUs: 0, ungroupedTickUs: 0, floorUs: 0, device: 'loom calibrate tick probe' },
  };
  return { plan, tenants: tenants.map((t) => ({ id: t.id, ioBytes: t.inputs[0]!.bytes + t.outputs[0]!.bytes })) };
}
