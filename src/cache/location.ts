// Where the tenant cache lives and what it may hold. `loom compile --cache DIR` names it; otherwise
// $LOOM_TENANT_CACHE, else $XDG_CACHE_HOME/loom/tenants, else ~/.cache/loom/tenants (beside the kernel cache,
// ~/.cache/loom/kernels).
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const TENANT_CACHE_ENV = 'LOOM_TENANT_CACHE';

// Bumped whenever the cached form changes (the entry layout, the IR text, what a lowered tenant holds): an
// entry of another format is never read, and the pruning drops it in time.
export const CACHE_FORMAT = 2; // 2: a crc32 per blob (entries whose large blobs are read only where needed)

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

// The code that decides a lowered tenant, relative to the tree this module runs from (the repository under
// tsx, or dist/): a developer's change to a pass or the importer must not read entries an older build wrote
// while the package version stays the same.
const COMPILER_CODE = ['ir', 'src/onnx', 'src/planner', 'src/cache', 'src/fleet/tenants', 'codegen/client'];

let buildId: string | undefined;

// Loom's version plus a hash of its compiler code (read once per process, a few hundred small files).
export function loomBuildId(): string {
  if (buildId !== undefined) return buildId;
  const tree = path.resolve(import.meta.dirname, '..', '..');
  const h = createHash('sha256').update(loomVersion());
  const files: string[] = [];
  const walk = (rel: string): void => {
    let names: string[];
    try {
      names = readdirSync(path.join(tree, rel)).sort();
    } catch {
      return;
    }
    for (const n of names) {
      const r = path.join(rel, n);
      if (/\.(ts|js)$/.test(n) && !n.endsWith('.d.ts')) files.push(r);
      else if (!n.includes('.')) walk(r);
    }
  };
  for (const c of COMPILER_CODE) {
    walk(c);
    for (const ext of ['.ts', '.js']) {
      try {
        readFileSync(path.join(tree, c + ext));
        files.push(c + ext);
      } catch {
        // a folder, or the other extension
      }
    }
  }
  if (files.length === 0) return (buildId = `${loomVersion()}+unknown-tree`);
  for (const f of files) h.update(`\0${f}\0`).update(readFileSync(path.join(tree, f)));
  return (buildId = `${loomVersion()}+${h.digest('hex').slice(0, 16)}`);
}
