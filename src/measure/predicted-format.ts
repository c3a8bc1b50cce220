// `loom bench`'s "predicted vs measured" section: the tick, the launches by kind, then the launches the model
// misses most (every launch with --all-launches).
import { fmtUs } from '../fleet/summary.js';
import type { PredictionCheck } from './predicted.js';

export const TOP_LAUNCHES = 15;

const pct = (e: number) => `${e >= 0 ? '+' : ''}${e.toFixed(1)}%`;

export function formatPredictions(p: PredictionCheck, all: boolean): string {
  const head = [
    `predicted vs measured (cost model: ${p.costModel}${p.profile ? '' : '; calibrate with `loom calibrate` and compile with --profile'})`,
    `  tick         predicted ${fmtUs(p.tick.predictedUs)}, measured ${fmtUs(p.tick.measuredUs)} (${p.tick.measured}): error ${pct(p.tick.errorPct)}`,
  ];
  if (p.gemmPaths) head.push(`  gemm paths   ${p.gemmPaths}`);
  if (p.launches.length === 0) return [...head, '  per launch: not measured (the backend cannot profile launches)'].join('\n');
  const s = p.launchSum!;
  head.push(`  launches     sum predicted ${fmtUs(s.predictedUs)}, sum measured ${fmtUs(s.measuredUs)} (${p.launchTiming}): error ${pct(s.errorPct)}`);
  const kindTable = table(
    ['by kind', 'launches', 'predicted', 'measured', 'error'],
    p.byKind.map((k) => [k.kind, String(k.launches), fmtUs(k.predictedUs), fmtUs(k.measuredUs), pct(k.errorPct)]),
  );
  const shown = all
    ? p.launches
    : [...p.launches].sort((a, b) => Math.abs(b.predictedUs - b.measuredUs) - Math.abs(a.predictedUs - a.measuredUs)).slice(0, TOP_LAUNCHES);
  const title = all ? 'launch' : `launch (the ${shown.length} furthest off of ${p.launches.length}; --all-launches for every one)`;
  // a GEMM launch's path as the backend chose it at load (CUDA), with the time that choice measured
  const paths = p.launches.some((l) => l.path !== undefined);
  const launchTable = table(
    [title, 'stage', 'kind', 'predicted', 'measured', 'error', ...(paths ? ['path (chosen at load)'] : [])],
    shown.map((l) => [
      `${l.id} ${l.label}`,
      String(l.stage),
      `${l.kind} ${l.op}`,
      fmtUs(l.predictedUs),
      fmtUs(l.measuredUs),
      pct(l.errorPct),
      ...(paths ? [l.path ?? ''] : []),
    ]),
    [0, 2, 6],
  );
  return [...head, '', ...kindTable, '', ...launchTable].join('\n');
}

function table(header: readonly string[], rows: readonly (readonly string[])[], left: readonly number[] = [0]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (c: readonly string[]) =>
    c
      .map((x, i) => (left.includes(i) ? x.padEnd(widths[i]!) : x.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}
