// `loom compile`'s tenant cache flags (--cache, --no-cache, --cache-max-mb) and its summary lines.
import { fail } from '../../ir/errors.js';
import { formatBytes } from '../../ir/files.js';
import { defaultTenantCacheDir } from '../cache/location.js';
import type { TenantCacheReport } from '../fleet/compile.js';

export interface CacheFlags {
  readonly cache?: string | false; // --cache DIR, or false from --no-cache
  readonly cacheMaxMb?: string;
}

const mib = (bytes: number): string => String(bytes / (1024 * 1024));

// --cache / --no-cache / --cache-max-mb → compileFleet's options. The cache serves full compiles (and --emit
// of lower or later); --from and --dump-after run without it.
export function cacheFrom(flags: CacheFlags, emit: string | undefined, from: string | undefined, dumpAfter: string | undefined) {
  let maxBytes: number | undefined;
  if (flags.cacheMaxMb !== undefined) {
    const mb = Number(flags.cacheMaxMb);
    if (!Number.isFinite(mb) || mb < 0) fail('USAGE', `--cache-max-mb must be a non-negative number of MiB, got '${flags.cacheMaxMb}'`);
    maxBytes = Math.floor(mb * 1024 * 1024);
  }
  if (flags.cache === false) {
    if (maxBytes !== undefined) fail('USAGE', '--cache-max-mb has no cache to bound with --no-cache');
    return {};
  }
  if (flags.cache === '') fail('USAGE', '--cache needs a folder');
  const early = emit === 'import' || emit === 'canonicalize' || emit === 'ir';
  if (from !== undefined || early || dumpAfter !== undefined) return {};
  return { tenantCache: flags.cache ?? defaultTenantCacheDir(), ...(maxBytes !== undefined ? { tenantCacheMaxBytes: maxBytes } : {}) };
}

export function cacheSummary(c: TenantCacheReport): string {
  const lines = [
    `loom: tenant cache ${c.dir}: ${c.hits} reused, ${c.misses} compiled` +
      (c.written > 0 ? `, ${c.written} written (${formatBytes(c.bytesWritten)})` : '') +
      (c.pruned.removed > 0 ? `, ${c.pruned.removed} old entries pruned (${formatBytes(c.pruned.freedBytes)})` : ''),
  ];
  const w = c.weights;
  if (w?.reuse !== undefined) {
    const r = w.reuse;
    lines.push(
      `loom: weights.bin: kept ${r.keptBlobs} of ${r.keptBlobs + r.rewrittenBlobs} blobs from ${r.from}; wrote ${r.rewrittenBlobs} (${formatBytes(r.rewrittenBytes)}) and hashed ${r.hashedChunks} of ${r.totalChunks} chunks`,
    );
  } else if (w?.fullBecause !== undefined) lines.push(`loom: weights.bin: written in full (${w.fullBecause})`);
  for (const n of w?.passedOver ?? []) lines.push(`loom: weights.bin: did not keep ${n}`);
  if (w?.recordError !== undefined) lines.push(`loom: tenant cache: could not record this plan for the next compile: ${w.recordError}`);
  for (const r of c.rejected) lines.push(`loom: tenant cache: entry for '${r.tenant}' ${r.reason}; recompiled it`);
  for (const e of c.writeErrors) lines.push(`loom: tenant cache: could not write ${e}`);
  if (c.pruned.keptBytes > c.pruned.maxBytes)
    lines.push(
      `loom: tenant cache holds ${formatBytes(c.pruned.keptBytes)}, past --cache-max-mb ${mib(c.pruned.maxBytes)}: this fleet's entries alone need it`,
    );
  return `${lines.join('\n')}\n`;
}
