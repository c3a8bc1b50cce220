import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// CLI tests run the real `bin/loom.js`, which needs the compiled dist/. CI builds before testing;
// a developer's first `npm test` builds here. A failed build only fails the CLI tests, not the run.
// `loom compile` caches tenants by default (~/.cache/loom/tenants): the tests' compiles (the CLI children
// inherit the variable) use a folder of this run's instead, removed at the end.
export default function setup(): () => void {
  const cache = mkdtempSync(path.join(os.tmpdir(), 'loom-test-tenant-cache-'));
  process.env.LOOM_TENANT_CACHE = cache;
  const teardown = () => rmSync(cache, { recursive: true, force: true });
  const root = path.resolve(import.meta.dirname, '..');
  if (existsSync(path.join(root, 'dist/src/cli/main.js'))) return teardown;
  try {
    execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'pipe' });
  } catch (e) {
    process.stderr.write(`global setup: build failed; CLI tests will fail:\n${String((e as { stdout?: Buffer }).stdout ?? e)}\n`);
  }
  return teardown;
}
