// Where the tenant cache lives and what it may hold. `loom compile --cache DIR` names it; otherwise
// $LOOM_TENANT_CACHE, else $XDG_CACHE_HOME/loom/tenants, else ~/.cache/loom/tenants (beside the kernel cache,
// ~/.cache/loom/kernels).
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const TENANT_CACHE_ENV = 'LOOM_TENANT_CACHE';

// Bumped whenever the cached form changes (the entry layout, the IR text, what a lowered tenant holds): an
// entry of another format is never read, and the pruning drops it in time.
export const CACHE_FORMAT = 1;

// The cache is pruned to this after every compile that used it (least recently used entries first).
export const DEFAULT_CACHE_MAX_BYTES = 20 * 1024 ** 3;

export function defaultTenantCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const own = env[TENANT_CACHE_ENV];
  if (own) return path.resolve(own);
  const xdg = env.XDG_CACHE_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache'); // the XDG spec ignores relative values
  return path.join(base, 'loom', 'tenants');
}

let version: string | undefined;

// Loom's package version (package.json above this file, in src/ and in dist/ alike): part of every key, so
// an upgraded compiler never reads what an older one lowered.
export function loomVersion(): string {
  if (version !== undefined) return version;
  for (let dir = import.meta.dirname; ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'loom' && typeof pkg.version === 'string') return (version = pkg.version);
    } catch {
      // no package.json here: look further up
    }
    if (path.dirname(dir) === dir) return (version = 'unknown');
  }
}
