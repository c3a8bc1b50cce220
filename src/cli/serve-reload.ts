// `loom serve <plan-dir>` reloads on SIGHUP (and POST /v2/repository/reload): what it re-reads. The plan
// directory named on the command line is resolved to its real path once per load, so a symbolic link
// switched to a new plan mid-read cannot mix two plans' files; a shards directory reloads the whole shard set
// on the same --devices. With --auth the auth file is re-read and checked against the new plan's tenants
// (so a token may name a tenant the reload adds); any failure leaves the old plan and auth serving.
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { fail } from '../../ir/errors.js';
import { type AuthConfig, loadAuthFile } from '../../runtime/serve/index.js';
import type { ServedPlan } from '../../runtime/serve/server.js';
import { type LoadedServe, planSha } from '../../runtime/serve/swap.js';
import { isShardsDir, readShardsFile } from '../fleet/shards-file.js';
import { loadServed } from './serve-shards.js';

export interface ServeSource {
  readonly dir: string; // as given on the command line (may be a symbolic link)
  readonly backend: 'auto' | 'cpu' | 'cuda';
  readonly devices?: string;
  readonly threads?: number;
  readonly auth?: string; // --auth FILE
}

function realDir(dir: string): string {
  try {
    return realpathSync(dir);
  } catch (e) {
    fail('IO', `cannot resolve the plan directory '${dir}': ${(e as Error).message}`);
  }
}

// The sha256 of plan.json, or for a shards directory of its shards' plan.json digests in shard order.
export function servedSha(real: string): string {
  if (!isShardsDir(real)) return planSha(real);
  const h = createHash('sha256');
  for (const s of readShardsFile(real).shards) h.update(planSha(path.join(real, s.dir)));
  return h.digest('hex');
}

// Loads what `src` names now: the plan (or shard set) and, with --auth, the auth file checked against it.
export async function loadServeSource(src: ServeSource): Promise<LoadedServe<ServedPlan> & { readonly tenants: readonly string[] }> {
  const real = realDir(src.dir);
  const sha = servedSha(real);
  const loaded = await loadServed(real, {
    backend: src.backend,
    ...(src.devices !== undefined ? { devices: src.devices } : {}),
    ...(src.threads !== undefined ? { threads: src.threads } : {}),
  });
  let auth: AuthConfig | null = null;
  try {
    if (src.auth !== undefined) auth = loadAuthFile(src.auth, loaded.tenants);
  } catch (e) {
    loaded.close();
    throw e;
  }
  // without --auth the server's auth stays as it is (undefined), never replaced by "no authentication"
  const value: ServedPlan = { ...(loaded.single ? { runner: loaded.single } : { shards: loaded.shards! }), ...(src.auth !== undefined ? { auth } : {}) };
  const source = real === path.resolve(src.dir) ? real : `${src.dir} -> ${real}`;
  return { value, source, sha, tenants: loaded.tenants, close: () => loaded.close() };
}
