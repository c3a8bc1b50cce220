// `loom compile --cache / --no-cache / --cache-max-mb` through the real bin/loom.js (needs a fresh dist/:
// `npm run build`): two compiles sharing one cache at once both succeed and leave it whole.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { demoFleet, writeDemoFleet } from '../../src/fleet/demo.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'bin/loom.js');
const root = mkdtempSync(path.join(os.tmpdir(), 'loom-cli-cache-'));
const manifest = writeDemoFleet(path.join(root, 'fleet'), demoFleet(true));

function loom(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 300_000, env: { ...process.env, ...env } });
}

function loomAsync(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('loom compile --cache', () => {
  it('two compiles sharing a cache at once both succeed; the next one reads every tenant back intact', async () => {
    const cache = path.join(root, 'shared');
    const [a, b] = await Promise.all(
      ['a', 'b'].map((o) => loomAsync(['compile', manifest, '-o', path.join(root, o), '--no-nvcc', '--cache', cache, '--quiet'])),
    );
    expect(a!.code, a!.stderr).toBe(0);
    expect(b!.code, b!.stderr).toBe(0);
    const c = loom(['compile', manifest, '-o', path.join(root, 'c'), '--no-nvcc', '--cache', cache]);
    expect(c.status, c.stderr).toBe(0);
    expect(c.stderr).toContain(`tenant cache ${cache}: 16 reused, 0 compiled`);
    expect(c.stderr).not.toContain('recompiled');
    // a or b's weights.bin was recorded: c copies it and writes no blob of its own
    expect(c.stderr).toMatch(/loom: weights\.bin: kept (\d+) of \1 blobs from .*\/[ab]\/weights\.bin; wrote 0 \(0 bytes\) and hashed 0 of \d+ chunks/);
    for (const f of ['plan.json', 'weights.bin', 'kernels.cu']) {
      expect(readFileSync(path.join(root, 'c', f)).equals(readFileSync(path.join(root, 'a', f))), f).toBe(true);
    }
  }, 300_000);

  it('defaults to $LOOM_TENANT_CACHE; --no-cache writes nothing there', () => {
    const cache = path.join(root, 'env-cache');
    const off = loom(['compile', manifest, '-o', path.join(root, 'd'), '--no-nvcc', '--no-cache'], { LOOM_TENANT_CACHE: cache });
    expect(off.status, off.stderr).toBe(0);
    expect(off.stderr).not.toContain('tenant cache');
    expect(existsSync(cache)).toBe(false);
    const on = loom(['compile', manifest, '-o', path.join(root, 'e'), '--no-nvcc'], { LOOM_TENANT_CACHE: cache });
    expect(on.status, on.stderr).toBe(0);
    expect(on.stderr).toContain(`tenant cache ${cache}: 0 reused, 16 compiled, 16 written`);
  }, 300_000);

  it('refuses a bad --cache-max-mb, one with --no-cache, and a --cache that is a file', () => {
    const bad = loom(['compile', manifest, '-o', path.join(root, 'f'), '--cache-max-mb', 'lots']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("--cache-max-mb must be a non-negative number of MiB, got 'lots'");
    const both = loom(['compile', manifest, '-o', path.join(root, 'f'), '--no-cache', '--cache-max-mb', '10']);
    expect(both.status).toBe(2);
    expect(both.stderr).toContain('--cache-max-mb has no cache to bound with --no-cache');
    const file = loom(['compile', manifest, '-o', path.join(root, 'f'), '--cache', manifest]);
    expect(file.status).toBe(2);
    expect(file.stderr).toContain(`the tenant cache '${manifest}' is not a folder`);
  });
});
