// Small numeric helpers of `loom calibrate`: medians, rounding for the profile, progress formatting.
import { fail } from '../../ir/errors.js';

export function median(xs: readonly number[]): number {
  if (xs.length === 0) fail('EVAL', 'calibrate: a measurement came back empty');
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function round(v: number): number {
  return Number(v.toPrecision(6));
}

export function fmtUs(us: number): string {
  return us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(us < 10 ? 2 : 1)} us`;
}

export function fmtMiB(b: number): string {
  return `${(b / 2 ** 20).toFixed(1)} MiB`;
}

export const yieldLoop = () => new Promise<void>((r) => setImmediate(r));
