#!/usr/bin/env node
// Thin launcher: the CLI lives in src/cli (compiled to dist/ by `npm run build`, which `npm ci` runs via prepare).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const main = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
if (!existsSync(main)) {
  process.stderr.write('loom: not built yet; run `npm run build` (npm ci does it for you)\n');
  process.exit(2);
}
// `loom import … | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});
// `loom serve` over shards: size libuv's pool (one tick per shard at a time) before anything uses it
const { threadpoolSizeFor } = await import(new URL('../dist/src/cli/threadpool.js', import.meta.url).href);
const pool = threadpoolSizeFor(process.argv.slice(2), process.env);
if (pool !== null) process.env.UV_THREADPOOL_SIZE = String(pool);
const { runCli } = await import(main);
process.exitCode = await runCli(process.argv);
