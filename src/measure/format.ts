// The `loom bench` table: one row per mode, the plan's row last, ratios against it.
import { fmtBytes, fmtUs } from '../fleet/summary.js';
import type { BenchResult, ModeResult } from './run.js';
import { formatPredictions } from './predicted-format.js';

export function formatBench(r: BenchResult, opts: { readonly allLaunches?: boolean } = {}): string {
  const f = r.fleet;
  const head = [
    `loom bench ${r.planDir}`,
    `backend      ${r.backend} on ${r.device}${r.backend === 'cpu' ? ` (${r.host.cpus} logical CPUs${r.settings.threads !== null ? `, ${r.settings.threads} threads per plan` : ''})` : ''}`,
    `fleet        ${f.tenantCount} tenants, ${f.rowsPerTick} rows per tick (every tenant at maxBatch), ${f.tenantLayers} tenant steps, ${fmtCount(f.flops)}FLOP and ${fmtBytes(f.bytes)} per tick`,
    `host load    ${r.host.loadAverage.map((x) => x.toFixed(2)).join(' → ')} (1-minute load average before → after, ${r.host.cpus} CPUs)`,
    `ticks        ${r.settings.warmup} warm-up + ${r.settings.ticks} timed per mode, timed ticks interleaved across modes; tick time = wall clock around one tick (inputs in → outputs out)${r.modes.some((m) => m.deviceTickUs) ? '; device = CUDA events around a replay of the captured tick' : ''}`,
  ];
  const hasDevice = r.modes.some((m) => m.deviceTickUs !== null);
  const header = [
    'mode',
    'launches/tick',
    'tick p50',
    'tick p99',
    ...(hasDevice ? ['device p50'] : []),
    'inferences/s',
    'FLOP/s',
    'bytes/s',
    'space-time speedup',
  ];
  const rows = r.modes.map((m) => [
    m.mode,
    String(m.launchesPerTick),
    fmtUs(m.tickUs.p50),
    fmtUs(m.tickUs.p99),
    ...(hasDevice ? [m.deviceTickUs ? fmtUs(m.deviceTickUs.p50) : '-'] : []),
    fmtCount(m.inferencesPerSec).trimEnd(),
    `${fmtCount(m.flopsPerSec)}FLOP/s`,
    `${fmtCount(m.bytesPerSec)}B/s`,
    m.mode === 'space-time' ? '1.00x (the plan)' : `${m.spaceTimeSpeedup.toFixed(2)}x`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((c) => c[i]!.length)));
  const line = (c: readonly string[]) =>
    c
      .map((s, i) => (i === 0 || i === c.length - 1 ? s.padEnd(widths[i]!) : s.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const table = [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
  const notes = r.modes.map((m: ModeResult) => `  ${m.mode.padEnd(10)}  ${m.semantics}`);
  const worst = Math.max(...r.modes.map((m) => m.maxRelErrorVsSpaceTime));
  return [
    ...head,
    '',
    ...table,
    '',
    'modes:',
    ...notes,
    `outputs: all three modes agree on every tenant's outputs (worst rel. error vs space-time ${worst.toExponential(2)})`,
    '',
    formatPredictions(r.predictions, opts.allLaunches === true),
  ].join('\n');
}

// 1234567 → "1.23 M" (SI prefixes; FLOP counts and rates).
export function fmtCount(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const units: ReadonlyArray<readonly [number, string]> = [
    [1e12, 'T'],
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'K'],
  ];
  for (const [v, u] of units) if (x >= v) return `${(x / v).toFixed(2)} ${u}`;
  return `${x.toFixed(x < 10 ? 2 : 0)} `;
}
