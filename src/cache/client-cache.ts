// The typed client (client.ts) of a plan's tenants, kept in the tenant cache: rendering it loads ts-morph
// (TypeScript's compiler, ~0.7 s on the 2-core machine), which would otherwise be most of a warm recompile.
// Keyed by the tenants exactly as the plan records them and the code's build id; the text is stored with its
// sha256 and checked on every read.
import { createHash } from 'node:crypto';
import { readFileSync, utimesSync } from 'node:fs';
import path from 'node:path';
import type { PlannedTenant } from '../../ir/contract/plan.js';
import { writeAtomic } from './atomic.js';
import { CACHE_FORMAT, loomBuildId } from './location.js';

export const CLIENTS_DIR = 'clients';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

// `onFile` is told the file it used (the pruning keeps it).
export async function cachedClient(
  cacheDir: string,
  tenants: readonly PlannedTenant[],
  render: () => Promise<string>,
  onFile: (file: string) => void = () => {},
): Promise<string> {
  const key = sha256(JSON.stringify({ format: CACHE_FORMAT, loom: loomBuildId(), tenants }));
  const file = path.join(cacheDir, CLIENTS_DIR, `${key}.json`);
  onFile(file);
  try {
    const rec = JSON.parse(readFileSync(file, 'utf8')) as { key?: string; sha256?: string; text?: string };
    if (rec.key === key && typeof rec.text === 'string' && rec.sha256 === sha256(rec.text)) {
      const now = new Date();
      utimesSync(file, now, now); // recently used: pruned last
      return rec.text;
    }
  } catch {
    // missing or unreadable: render it
  }
  const text = await render();
  try {
    writeAtomic(file, [Buffer.from(JSON.stringify({ key, sha256: sha256(text), text }))]);
  } catch {
    // a read-only or full cache only loses the shortcut
  }
  return text;
}
