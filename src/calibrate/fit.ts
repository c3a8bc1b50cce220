// Fitting one launch kind's cost function (src/planner/cost-fit.ts) to measurements: the roofline part
// (overhead, effective FLOP/s, effective bytes/s) by least squares on log time (relative errors count alike
// for a 3 µs launch and a 3 ms one), with Nelder-Mead over the logs of the parameters; then the correction:
// the ratio measured / roofline of the points, averaged (geometrically) over up to CORRECTION_BINS runs of
// points ordered by their roofline time, which the model interpolates between.
import { fail } from '../../ir/errors.js';
import { type KindFit, rooflinePartUs } from '../planner/cost-fit.js';

export interface Measurement {
  readonly flops: number;
  readonly bytes: number;
  readonly us: number; // measured time of one launch
}

export interface FitOptions {
  // fit an effective FLOP rate (GEMMs); false: the kind is priced by bytes only (generated kernels, epilogues)
  readonly compute: boolean;
  readonly correction?: boolean; // default true
}

export const CORRECTION_BINS = 12;
const MIN_US = 1e-3; // measurements below this (timer resolution) count as this

// The extra time of a GEMM's epilogue, measured as a difference of two timings (noisy, and zero or below where
// the backend fuses it): a straight line us = overhead + bytes / rate, robust to outliers (Theil-Sen: the
// median of the pairwise slopes, then the median intercept), both terms kept non-negative, no correction.
export function fitLinear(points: readonly Measurement[]): KindFit {
  const pts = points.filter((p) => Number.isFinite(p.us) && p.bytes >= 0);
  if (pts.length === 0) fail('USAGE', 'fitLinear: no usable measurements');
  const slopes: number[] = [];
  for (let i = 0; i < pts.length; i++)
    for (let j = i + 1; j < pts.length; j++) {
      const dx = pts[j]!.bytes - pts[i]!.bytes;
      if (dx !== 0) slopes.push((pts[j]!.us - pts[i]!.us) / dx);
    }
  const slope = Math.max(0, slopes.length > 0 ? median(slopes) : 0); // µs per byte
  const overhead = Math.max(0, median(pts.map((p) => p.us - slope * p.bytes)));
  return { overheadUs: overhead, flopsPerS: 0, bytesPerS: slope > 0 ? 1e6 / slope : NO_COST_RATE, correction: [] };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

// The rate a fit reports for a term that costs nothing measurable.
export const NO_COST_RATE = 1e18;

export function fitKind(points: readonly Measurement[], opts: FitOptions): KindFit {
  const pts = points.filter((p) => Number.isFinite(p.us) && p.us >= 0 && p.bytes >= 0 && p.flops >= 0).map((p) => ({ ...p, us: Math.max(p.us, MIN_US) }));
  if (pts.length === 0) fail('USAGE', 'fitKind: no usable measurements (each needs flops >= 0, bytes >= 0 and a finite us >= 0)');
  const compute = opts.compute && pts.some((p) => p.flops > 0);
  const fitOf = (x: readonly number[]): KindFit => ({
    overheadUs: Math.exp(x[0]!),
    bytesPerS: Math.exp(x[1]!),
    flopsPerS: compute ? Math.exp(x[2]!) : 0,
    correction: [],
  });
  const loss = (x: readonly number[]): number => {
    const f = fitOf(x);
    let s = 0;
    for (const p of pts) {
      const d = Math.log(rooflinePartUs(f, p.flops, p.bytes) / p.us);
      s += d * d;
    }
    return s;
  };
  // start: the fastest launch's half as overhead, the best rates any point reached
  const minUs = Math.min(...pts.map((p) => p.us));
  const bestBytes = Math.max(...pts.map((p) => (p.bytes / p.us) * 1e6), 1);
  const bestFlops = Math.max(...pts.map((p) => (p.flops / p.us) * 1e6), 1);
  let x = [Math.log(minUs / 2), Math.log(bestBytes), ...(compute ? [Math.log(bestFlops)] : [])];
  for (let round = 0; round < 4; round++) x = nelderMead(loss, x, 1.0, 600);
  const roofline = fitOf(x);
  return opts.correction === false ? roofline : { ...roofline, correction: correctionOf(roofline, pts) };
}

// [log10(roofline µs), geometric mean of measured / roofline] per run of points ordered by roofline time.
export function correctionOf(f: KindFit, pts: readonly Measurement[]): Array<[number, number]> {
  const rows = pts
    .map((p) => {
      const base = rooflinePartUs(f, p.flops, p.bytes);
      return { x: Math.log10(Math.max(base, 1e-6)), r: Math.log(Math.max(p.us, MIN_US) / base) };
    })
    .sort((a, b) => a.x - b.x);
  const per = Math.ceil(rows.length / CORRECTION_BINS);
  const out: Array<[number, number]> = [];
  for (let i = 0; i < rows.length; i += per) {
    const bin = rows.slice(i, i + per);
    const x = round6(bin.reduce((a, b) => a + b.x, 0) / bin.length);
    const r = Math.exp(bin.reduce((a, b) => a + b.r, 0) / bin.length);
    const prev = out[out.length - 1];
    // strictly ascending (the profile reader requires it): a bin at the same time as the last one joins it
    if (prev && x <= prev[0]) prev[1] = round6(Math.sqrt(prev[1] * r));
    else out.push([x, round6(r)]);
  }
  return out;
}

function round6(v: number): number {
  return Number(v.toPrecision(6));
}

// Nelder-Mead simplex minimization from `x0` with initial steps `step` along each axis.
export function nelderMead(f: (x: readonly number[]) => number, x0: readonly number[], step: number, iters: number): number[] {
  const n = x0.length;
  let simplex: Array<{ x: number[]; v: number }> = [{ x: [...x0], v: f(x0) }];
  for (let i = 0; i < n; i++) {
    const x = [...x0];
    x[i]! += step;
    simplex.push({ x, v: f(x) });
  }
  const at = (x: number[]) => ({ x, v: f(x) });
  const lerp = (a: readonly number[], b: readonly number[], t: number) => a.map((ai, i) => ai + t * (b[i]! - ai));
  for (let it = 0; it < iters; it++) {
    simplex.sort((a, b) => a.v - b.v);
    const best = simplex[0]!;
    const worst = simplex[n]!;
    if (Math.abs(worst.v - best.v) <= 1e-14 * (1 + Math.abs(best.v))) break;
    const centroid = Array.from({ length: n }, (_, i) => simplex.slice(0, n).reduce((a, s) => a + s.x[i]!, 0) / n);
    const reflected = at(lerp(centroid, worst.x, -1));
    if (reflected.v < best.v) {
      const expanded = at(lerp(centroid, worst.x, -2));
      simplex[n] = expanded.v < reflected.v ? expanded : reflected;
    } else if (reflected.v < simplex[n - 1]!.v) {
      simplex[n] = reflected;
    } else {
      const contracted = at(lerp(centroid, worst.x, reflected.v < worst.v ? -0.5 : 0.5));
      if (contracted.v < Math.min(worst.v, reflected.v)) simplex[n] = contracted;
      else simplex = simplex.map((s, i) => (i === 0 ? s : at(lerp(best.x, s.x, 0.5))));
    }
  }
  simplex.sort((a, b) => a.v - b.v);
  return simplex[0]!.x;
}
