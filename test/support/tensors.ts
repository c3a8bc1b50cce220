// Test data and comparisons on IR tensors: seeded random values, literals, error measures and closeness checks.
import { expect } from 'vitest';
import type { DType } from '../../ir/dtype.js';
import { type Tensor, fromNumbers, toNumbers } from '../../ir/tensor.js';
import { relativeError as oracleRelativeError } from '../../src/fleet/oracle.js';

// Seeded RNG (mulberry32), uniform in [0, 1): tests and fuzzing are deterministic.
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Values uniform in [lo, hi) drawn from `rand` (floored to integers with `int`).
export function uniformTensor(rand: () => number, shape: readonly number[], opts: { lo?: number; hi?: number; dtype?: DType; int?: boolean } = {}): Tensor {
  const lo = opts.lo ?? -1;
  const hi = opts.hi ?? 1;
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const x = lo + (hi - lo) * rand();
    v[i] = opts.int ? Math.floor(x) : x;
  }
  return fromNumbers(opts.dtype ?? 'f32', shape, v);
}

export function tensor(dtype: DType, shape: readonly number[], values: readonly number[]): Tensor {
  return fromNumbers(dtype, shape, values);
}

export const i64 = (values: readonly number[], shape: readonly number[] = [values.length]): Tensor => fromNumbers('i64', shape, values);
export const i64s = (v: number): Tensor => fromNumbers('i64', [], [v]);

// Norm-wise relative error max|a-b| / max|b| (integers and bools must match exactly): the product's own
// measure (src/fleet/oracle.ts), except that a dtype or shape mismatch throws with both sides named.
export function relativeError(got: Tensor, want: Tensor): number {
  if (got.dtype !== want.dtype) throw new Error(`dtype ${got.dtype} vs ${want.dtype}`);
  if (got.shape.join(',') !== want.shape.join(',')) throw new Error(`shape [${got.shape}] vs [${want.shape}]`);
  return oracleRelativeError(got, want);
}

// Same dtype and shape, and every element within tol * max(1, |ref|) (absolute near zero, relative above 1);
// NaN must meet NaN. Reports the worst element.
export function expectClose(ours: Tensor, ref: Tensor, tol = 1e-5, label = ''): void {
  expect(ours.dtype, `${label} dtype`).toBe(ref.dtype);
  expect(ours.shape, `${label} shape`).toEqual(ref.shape);
  const a = toNumbers(ours);
  const b = toNumbers(ref);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const nan = Number.isNaN(a[i]!) || Number.isNaN(b[i]!);
    const err = nan ? (Number.isNaN(a[i]!) && Number.isNaN(b[i]!) ? 0 : Infinity) : Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!));
    if (err > worst) {
      worst = err;
      at = i;
    }
  }
  expect(worst, `${label} worst rel. error at flat index ${at}: ours ${a[at]} vs reference ${b[at]}`).toBeLessThanOrEqual(tol);
}

// numpy.allclose-style: |ours - ref| <= rtol * |ref| + rtol / 10 element-wise, NaN meets NaN, i64 exactly.
export function expectAllClose(ours: Tensor, ref: Tensor, rtol: number, label = ''): void {
  expect(ours.dtype, `${label} dtype`).toBe(ref.dtype);
  expect(ours.shape, `${label} shape`).toEqual(ref.shape);
  if (ours.dtype === 'i64') {
    expect(Array.from(ours.data as BigInt64Array), label).toEqual(Array.from(ref.data as BigInt64Array));
    return;
  }
  const a = toNumbers(ours);
  const b = toNumbers(ref);
  const atol = rtol * 0.1;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (Number.isNaN(y) && Number.isNaN(x)) continue;
    if (x === y) continue;
    if (!(Math.abs(x - y) <= rtol * Math.abs(y) + atol)) {
      expect.fail(`${label} element ${i}: ours ${x}, reference ${y} (rtol ${rtol})`);
    }
  }
}
