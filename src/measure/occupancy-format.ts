// The `loom bench --occupancy` table: one row per fraction, each against the full tick, then the target line.
import { fmtUs } from '../fleet/summary.js';
import type { OccupancyResult } from './occupancy.js';

export function formatOccupancy(r: OccupancyResult): string {
  const hasDevice = r.full.deviceTickUs !== null || r.rows.some((x) => x.deviceTickUs !== null);
  const f = r.fleet;
  const head = [
    `loom bench --occupancy ${r.planDir}`,
    `backend      ${r.backend} on ${r.device}${r.backend === 'cpu' ? ` (${r.host.cpus} logical CPUs${r.settings.threads !== null ? `, ${r.settings.threads} threads` : ''})` : ''}`,
    `fleet        ${f.tenants} tenants of ${f.kinds} kind${f.kinds === 1 ? '' : 's'}, ${f.launches} launches per tick, ${f.rowsPerTick} rows in a full tick`,
    `host load    ${r.host.loadAverage.map((x) => x.toFixed(2)).join(' → ')} (1-minute load average before → after)`,
    `ticks        ${r.settings.warmup} warm-up + ${r.settings.ticks} timed per row, interleaved; live tenants chosen round robin over kinds, each at maxBatch rows${hasDevice ? '; device = CUDA events around a replay of the captured tick' : ''}`,
  ];
  const header = ['occupancy', 'live tenants', 'live rows', 'tick p50', 'tick p99', 'vs full', ...(hasDevice ? ['device p50', 'device vs full'] : [])];
  const full = [
    'full (1.0)',
    String(f.tenants),
    String(f.rowsPerTick),
    fmtUs(r.full.tickUs.p50),
    fmtUs(r.full.tickUs.p99),
    '1.00x',
    ...(hasDevice ? [r.full.deviceTickUs ? fmtUs(r.full.deviceTickUs.p50) : '-', '1.00x'] : []),
  ];
  const rows = r.rows.map((x) => [
    `${+(x.fraction * 100).toFixed(2)}%`,
    String(x.live.length),
    String(x.liveRows),
    fmtUs(x.tickUs.p50),
    fmtUs(x.tickUs.p99),
    `${x.relativeToFull.toFixed(2)}x`,
    ...(hasDevice ? [x.deviceTickUs ? fmtUs(x.deviceTickUs.p50) : '-', x.deviceRelativeToFull !== null ? `${x.deviceRelativeToFull.toFixed(2)}x` : '-'] : []),
  ]);
  const all = [full, ...rows];
  const widths = header.map((h, i) => Math.max(h.length, ...all.map((c) => c[i]!.length)));
  const line = (c: readonly string[]) =>
    c
      .map((s, i) => (i === 0 ? s.padEnd(widths[i]!) : s.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const t = r.target;
  const verdict = t.met === null ? `not measured (add ${t.fraction} to --occupancy)` : `${t.met ? 'met' : 'missed'} (${t.ratio!.toFixed(2)}x, ${t.measure})`;
  return [
    ...head,
    '',
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...all.map(line),
    '',
    ...r.rows.map((x) => `  ${`${+(x.fraction * 100).toFixed(2)}%`.padEnd(7)} live: ${x.live.join(', ')}`),
    `outputs: every live tenant's outputs equal the full tick's (worst rel. error ${Math.max(0, ...r.rows.map((x) => x.maxRelErrorVsFull)).toExponential(2)})`,
    `target: ${t.fraction * 100}% occupancy <= ${t.maxRatio}x full: ${verdict}`,
  ].join('\n');
}
