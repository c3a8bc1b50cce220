// A calibrated cost model: per launch kind one fitted function of a launch's FLOPs and bytes,
//   us = (overheadUs + max(flops / flopsPerS, bytes / bytesPerS) · 1e6) · correction(log10 of that sum),
// a roofline with the kind's own fixed cost and effective rates (least squares on log time over the
// measured grid, src/calibrate/fit.ts), times a piecewise-linear correction through the measured points'
// ratios (measured / roofline), flat past the first and last point. The kinds, as profile keys:
//   gemm.<math>, gemm_grouped.<math>   math = f32 | tf32 | bf16 | f16 (GemmMath)
//   gemm_matvec.<math>                 GEMMs of MATVEC_ROWS (1) row per entry: matrix-vector products
//   gemm.epilogue                      the extra time of a GEMM with a bias or activation, by C's bytes
//   kernel.<op>                        a generated kernel (KernelOp name)
//   tick.io                            a tick's own cost besides its launches: the fixed cost (graph launch,
//                                      events) and copying the tenants' inputs in and outputs out, by bytes
// A kind the profile lacks borrows a measured one (fallbackKeys); 'gemm.f32' or 'gemm_matvec.f32', and
// 'kernel.eltwise', are always there (the profile reader requires them: REQUIRED_KINDS).
import { type GemmMath, type LaunchWork, MATVEC_ROWS } from './cost.js';

export interface KindFit {
  readonly overheadUs: number; // the fixed cost of one launch of this kind (inside a captured tick on CUDA)
  readonly flopsPerS: number; // effective FLOP/s; 0: the kind is not limited by arithmetic (FLOPs ignored)
  readonly bytesPerS: number; // effective bytes/s (read + written)
  // [log10(roofline µs), measured / roofline], ascending in the first; empty: no correction
  readonly correction: ReadonlyArray<readonly [number, number]>;
}

export interface CalibratedCost {
  readonly profile: { readonly name: string; readonly hash: string; readonly date: string };
  readonly fits: Readonly<Record<string, KindFit>>;
  readonly sms?: number; // the card's SMs (profile device.sms): the wave floor of GEMMs with few output blocks
}

// Each entry: the kinds of which a profile needs at least one (every launch then finds a fit: fallbackKeys).
export const REQUIRED_KINDS: ReadonlyArray<readonly string[]> = [['gemm.f32', 'gemm_matvec.f32'], ['kernel.eltwise']];

export function rooflinePartUs(f: KindFit, flops: number, bytes: number): number {
  const compute = f.flopsPerS > 0 ? flops / f.flopsPerS : 0;
  const memory = f.bytesPerS > 0 ? bytes / f.bytesPerS : 0;
  return f.overheadUs + Math.max(compute, memory) * 1e6;
}

export function correctionAt(f: KindFit, us: number): number {
  const c = f.correction;
  if (c.length === 0) return 1;
  const x = Math.log10(Math.max(us, 1e-6));
  if (x <= c[0]![0]) return c[0]![1];
  const last = c[c.length - 1]!;
  if (x >= last[0]) return last[1];
  let i = 1;
  while (c[i]![0] < x) i++;
  const [x0, y0] = c[i - 1]!;
  const [x1, y1] = c[i]!;
  return x1 === x0 ? y1 : y0 + ((y1 - y0) * (x - x0)) / (x1 - x0);
}

export function kindUs(f: KindFit, flops: number, bytes: number): number {
  const base = rooflinePartUs(f, flops, bytes);
  return base * correctionAt(f, base);
}

const MATH_FALLBACK: Readonly<Record<GemmMath, readonly GemmMath[]>> = {
  f32: ['f32'],
  tf32: ['tf32', 'f32'],
  bf16: ['bf16', 'f16', 'f32'],
  f16: ['f16', 'bf16', 'f32'],
};

// The profile keys tried for a launch, most specific first (a matrix-vector GEMM: its own fit, then every GEMM's).
export function fallbackKeys(w: LaunchWork): string[] {
  // a profile calibrated before the conv kernel existed prices it as the f32 GEMM it is
  if (w.kind === 'kernel' && w.op === 'conv') return ['kernel.conv', 'gemm.f32', 'kernel.eltwise'];
  if (w.kind === 'kernel') return [`kernel.${w.op}`, 'kernel.eltwise'];
  const maths = MATH_FALLBACK[w.math];
  const matvec = maths.map((m) => `gemm_matvec.${m}`);
  const plain = maths.map((m) => `gemm.${m}`);
  // a profile may hold only one of the two strided kinds (REQUIRED_KINDS): the other is the last resort
  if (w.kind === 'gemm_grouped') return [...maths.map((m) => `gemm_grouped.${m}`), ...plain, ...matvec];
  return w.rows !== undefined && w.rows <= MATVEC_ROWS ? [...matvec, ...plain] : [...plain, ...matvec];
}

// The profile key of a GEMM measurement of `rows` rows per entry in `math` (src/calibrate/grid.ts).
export function gemmKey(math: GemmMath, rows: number): string {
  return rows <= MATVEC_ROWS ? `gemm_matvec.${math}` : `gemm.${math}`;
}

export function fitFor(c: CalibratedCost, w: LaunchWork): KindFit {
  for (const k of fallbackKeys(w)) {
    const f = c.fits[k];
    if (f) return f;
  }
  // unreachable for a profile the reader accepted (it requires REQUIRED_KINDS)
  throw new Error(`device profile '${c.profile.name}' has no fit for ${fallbackKeys(w).join(' / ')}`);
}

// The wave floor of a GEMM launch: its output blocks (work.ts gemmBlocks) run GEMM_BLOCK x GEMM_BLOCK per CTA,
// sms at a time, each at its SM's share of the kind's FLOP rate — a launch with fewer blocks than SMs takes as
// long as one block, however few its FLOPs. The fit's roofline prices FLOPs as if every SM shared them (its grid
// GEMMs mostly fill the card), so it priced the demo fleet's `gemm 128x64x1152` over 8 entries (16 blocks,
// k = 1152) at 12 µs where every path took 26 (H100, 2026-12-07; wave floor 27.7 µs). 0 without SMs or blocks,
// for matrix-vector GEMMs (their kernels spread over columns, not blocks) and grouped GEMMs.
export function waveUs(c: CalibratedCost, f: KindFit, w: LaunchWork): number {
  return gemmWave(c, f, w)?.us ?? 0;
}

// The wave floor and the share of the SMs the launch's blocks occupy; null where no floor applies.
function gemmWave(c: CalibratedCost, f: KindFit, w: LaunchWork): { readonly us: number; readonly share: number } | null {
  if (w.kind !== 'gemm' || !w.blocks || !c.sms || !(f.flopsPerS > 0)) return null;
  if (w.rows !== undefined && w.rows <= MATVEC_ROWS) return null;
  const { blocks, blockFlops } = w.blocks;
  return { us: Math.ceil(blocks / c.sms) * (blockFlops / (f.flopsPerS / c.sms)) * 1e6, share: Math.min(1, blocks / c.sms) };
}

// The share of the SMs a launch occupies: its blocks over the SMs where the wave floor sets its time, else all.
export function calibratedOccupancy(c: CalibratedCost, w: LaunchWork): number {
  const f = fitFor(c, w);
  const wave = gemmWave(c, f, w);
  return wave && wave.us > kindUs(f, w.flops, w.bytes) ? wave.share : 1;
}

export function calibratedLaunchUs(c: CalibratedCost, w: LaunchWork): number {
  const f = fitFor(c, w);
  const main = Math.max(kindUs(f, w.flops, w.bytes), waveUs(c, f, w));
  if (w.kind === 'kernel' || w.epilogueBytes <= 0) return main;
  const epi = c.fits['gemm.epilogue'];
  return main + (epi ? kindUs(epi, 0, w.epilogueBytes) : 0);
}

// The fixed part of a launch's time: its kind's overhead, scaled like the rest by the correction at its size,
// and a GEMM's epilogue's own overhead where calibratedLaunchUs adds one. (Counting the epilogue's fixed cost as
// work made every small GEMM with a bias look like a third of the device to lane-sim.ts: the zoo mix's 12
// lanes were predicted at 564 µs against 277 µs without it; measured 329 µs with the tick's io, H100.)
export function calibratedOverheadUs(c: CalibratedCost, w: LaunchWork): number {
  const f = fitFor(c, w);
  const main = f.overheadUs * correctionAt(f, rooflinePartUs(f, w.flops, w.bytes));
  const epi = c.fits['gemm.epilogue'];
  if (w.kind === 'kernel' || w.epilogueBytes <= 0 || !epi) return main;
  return main + epi.overheadUs * correctionAt(epi, rooflinePartUs(epi, 0, w.epilogueBytes));
}

// A tick's cost besides its launches (the fixed cost and the io copies of `ioBytes`); 0 without a tick.io fit.
export function calibratedTickIoUs(c: CalibratedCost, ioBytes: number): number {
  const f = c.fits['tick.io'];
  return f ? kindUs(f, 0, ioBytes) : 0;
}

// The tick's work at the best effective rates the profile measured, without fixed costs.
export function calibratedFloorUs(c: CalibratedCost, flops: number, bytes: number): number {
  const fits = Object.entries(c.fits)
    .filter(([k]) => k !== 'tick.io' && k !== 'gemm.epilogue')
    .map(([, f]) => f);
  const peakFlops = Math.max(0, ...fits.map((f) => f.flopsPerS));
  const peakBytes = Math.max(0, ...fits.map((f) => f.bytesPerS));
  return Math.max(peakFlops > 0 ? flops / peakFlops : 0, peakBytes > 0 ? bytes / peakBytes : 0) * 1e6;
}
