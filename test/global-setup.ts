import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

// CLI tests run the real `bin/loom.js`, which needs the compiled dist/. CI builds before testing;
// a developer's first `npm test` builds here. A failed build only fails the CLI tests, not the run.
export default function setup(): void {
  const root = path.resolve(import.meta.dirname, '..');
  if (existsSync(path.join(root, 'dist/src/cli/main.js'))) return;
  try {
    execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'pipe' });
  } catch (e) {
    process.stderr.write(`global setup: build failed; CLI tests will fail:\n${String((e as { stdout?: Buffer }).stdout ?? e)}\n`);
  }
}
