// A device profile as a table: per launch kind its fitted overhead and rates, and how well the fitted
// function matches the kind's own measurements (median |predicted / measured − 1| of the roofline part alone and of the whole function, and the worst).
import { kindUs, rooflinePartUs } from '../planner/cost-fit.js';
import type { DeviceProfile, ProfileKind } from './profile.js';

export interface KindAccuracy {
  readonly rooflineMedianErr: number; // the fitted roofline alone
  readonly medianErr: number; // with the correction
  readonly worstErr: number;
  readonly worstLabel: string;
}

// |predicted / measured - 1| over a kind's own points (gemm.epilogue, a difference of timings: null).
export function kindAccuracy(key: string, k: ProfileKind): KindAccuracy | null {
  if (key === 'gemm.epilogue' || k.points.length === 0) return null;
  const err = (pred: number, us: number) => Math.abs(pred / Math.max(us, 1e-3) - 1);
  const errs = k.points.map((p) => ({ e: err(kindUs(k.fit, p.flops, p.bytes), p.us), label: p.label })).sort((a, b) => a.e - b.e);
  const roof = k.points.map((p) => err(rooflinePartUs(k.fit, p.flops, p.bytes), p.us)).sort((a, b) => a - b);
  const worst = errs[errs.length - 1]!;
  return { rooflineMedianErr: roof[roof.length >> 1]!, medianErr: errs[errs.length >> 1]!.e, worstErr: worst.e, worstLabel: worst.label };
}

export function formatProfile(p: DeviceProfile): string {
  const head = [
    `device profile: ${p.name} (${p.backend}), ${p.date}${p.settings.quick ? ', quick grid' : ''}`,
    `launch overhead ${p.launchOverheadUs.toFixed(2)} us (the smallest launch${p.backend === 'cuda' ? ', inside a captured tick' : ''})`,
    ...p.concurrency.map(
      (c) =>
        `overlap of two independent launches, ${c.label}: ${(c.overlap * 100).toFixed(0)}% (alone ${c.soloUs.toFixed(1)} us, two ${c.pairUs.toFixed(1)} us)`,
    ),
  ];
  const header = ['kind', 'points', 'overhead us', 'GFLOP/s', 'GB/s', 'roofline err', 'fit err', 'worst fit err'];
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const rows = Object.entries(p.kinds).map(([key, k]) => {
    const a = kindAccuracy(key, k);
    return [
      key,
      String(k.points.length),
      k.fit.overheadUs.toFixed(2),
      k.fit.flopsPerS > 0 ? (k.fit.flopsPerS / 1e9).toFixed(0) : '-',
      k.fit.bytesPerS >= 1e17 ? '-' : (k.fit.bytesPerS / 1e9).toFixed(1),
      a ? pct(a.rooflineMedianErr) : '-',
      a ? pct(a.medianErr) : '-',
      a ? `${pct(a.worstErr)} (${a.worstLabel})` : '(a difference of two timings: a straight line, no error column)',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (c: readonly string[]) =>
    c
      .map((s, i) => (i === 0 || i === c.length - 1 ? s.padEnd(widths[i]!) : s.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [...head, '', line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
