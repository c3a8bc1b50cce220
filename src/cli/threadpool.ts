// libuv's thread pool runs every tick (the addon's AsyncWorker holds a pool thread for the tick's duration), and
// it is sized once, from UV_THREADPOOL_SIZE, when first used. `loom serve` over N shards runs N tick loops at
// once, so bin/loom.js sizes the pool before anything uses it: one thread per shard plus libuv's default 4 for
// file, DNS and zlib work. Without it, the fifth shard's tick waits for one of the first four to end.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const UV_DEFAULT_POOL = 4;
const MAX_POOL = 1024; // libuv's own cap

// The pool size `argv` (after `node bin/loom.js`) needs, or null to leave libuv's default (or an explicit
// UV_THREADPOOL_SIZE) alone.
export function threadpoolSizeFor(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): number | null {
  if (env.UV_THREADPOOL_SIZE !== undefined || argv[0] !== 'serve') return null;
  const shards = shardCount(argv.slice(1));
  return shards > 1 ? Math.min(MAX_POOL, UV_DEFAULT_POOL + shards) : null;
}

function shardCount(args: readonly string[]): number {
  const at = args.findIndex((a) => a === '--devices' || a.startsWith('--devices='));
  if (at >= 0) {
    const v = args[at]!.includes('=') ? args[at]!.slice('--devices='.length) : (args[at + 1] ?? '');
    return v.split(',').length;
  }
  const dir = args.find((a) => !a.startsWith('-'));
  if (dir === undefined || !existsSync(path.join(dir, 'shards.json'))) return 1;
  try {
    const shards = (JSON.parse(readFileSync(path.join(dir, 'shards.json'), 'utf8')) as { shards?: unknown[] }).shards;
    return Array.isArray(shards) ? shards.length : 1; // a bad file is reported by `loom serve` itself
  } catch {
    return 1;
  }
}

// How many ticks can run at once in this process's pool.
export function threadpoolSize(env: Readonly<Record<string, string | undefined>>): number {
  const n = Number(env.UV_THREADPOOL_SIZE);
  return Number.isInteger(n) && n > 0 ? Math.min(n, MAX_POOL) : UV_DEFAULT_POOL;
}
