// Compiles a fixed set of fleets (the demo, its small form, one fleet per zoo kind, a bf16 and a mixed fleet)
// and prints the sha256 of every file a plan directory holds. A refactor that must leave plans unchanged is
// checked by comparing this output before and after (test/golden/plan-hashes.test.ts does it in CI).
// usage: npx tsx tools/plan-hashes.ts [--only NAME,…] [--write test/golden/plan-hashes.json]
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HASHED_FILES, PLAN_FLEETS, writeHashFleet } from './plan-fleets.js';
import { compileFleet } from '../src/fleet/compile.js';

export async function planHashes(name: string): Promise<Record<string, string>> {
  const dir = mkdtempSync(path.join(tmpdir(), `loom-hash-${name}-`));
  try {
    const manifest = writeHashFleet(name, dir);
    const out = path.join(dir, 'plan');
    await compileFleet(manifest, out, { nvcc: 'off' });
    const hashes: Record<string, string> = {};
    for (const f of HASHED_FILES)
      hashes[f] = createHash('sha256')
        .update(readFileSync(path.join(out, f)))
        .digest('hex');
    return hashes;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1]!.split(',') : Object.keys(PLAN_FLEETS);
  const writeTo = args.includes('--write') ? args[args.indexOf('--write') + 1] : undefined;
  const all: Record<string, Record<string, string>> = {};
  for (const name of only) {
    const t0 = Date.now();
    all[name] = await planHashes(name);
    process.stderr.write(`${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  const text = `${JSON.stringify(all, null, 1)}\n`;
  if (writeTo) writeFileSync(writeTo, text);
  else process.stdout.write(text);
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) await main();
