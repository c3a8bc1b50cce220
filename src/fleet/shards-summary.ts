// The shards of a `loom compile --shards N` directory side by side (`loom inspect DIR`, the compile's last lines).
import type { ShardsFile } from './shards-file.js';
import { fmtBytes, fmtUs } from './summary.js';

const TENANTS_SHOWN = 6;

export function formatShards(f: ShardsFile): string {
  const rows: [string, (s: ShardsFile['shards'][number]) => string][] = [
    ['tenants', (s) => String(s.tenants.length)],
    ['launches', (s) => String(s.launches)],
    ['predicted tick', (s) => fmtUs(s.predictedTickUs)],
    ['weights', (s) => fmtBytes(s.weightsBytes)],
    ['activations', (s) => fmtBytes(s.activationBytes)],
    ['io', (s) => fmtBytes(s.ioBytes)],
    ['device memory', (s) => fmtBytes(s.deviceBytes)],
    ['of budget', (s) => `${((100 * s.deviceBytes) / f.deviceMemoryBytes).toFixed(s.deviceBytes * 1000 < f.deviceMemoryBytes ? 3 : 1)}%`],
  ];
  const header = ['', ...f.shards.map((s) => `shard ${s.id}`)];
  const cells = rows.map(([name, cell]) => [name, ...f.shards.map(cell)]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]) => c.map((s, i) => (i === 0 ? s.padEnd(widths[i]!) : s.padStart(widths[i]!))).join('  ');
  const ticks = f.shards.map((s) => s.predictedTickUs);
  const spread = Math.min(...ticks) > 0 ? `, slowest/fastest predicted tick ${(Math.max(...ticks) / Math.min(...ticks)).toFixed(2)}x` : '';
  return [
    `${f.shards.length} shards of ${f.manifest} (${f.precision}), device memory budget ${f.deviceMemoryBytes / 1e9} GB (${fmtBytes(f.deviceMemoryBytes)}) per shard${spread}`,
    `cost model: ${f.costModel}`,
    '',
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...cells.map(line),
    '',
    ...f.shards.map((s) => {
      const more = s.tenants.length > TENANTS_SHOWN ? `, … (${s.tenants.length - TENANTS_SHOWN} more)` : '';
      return `shard ${s.id} (${s.dir}/): ${s.tenants.slice(0, TENANTS_SHOWN).join(', ')}${more}`;
    }),
  ].join('\n');
}
