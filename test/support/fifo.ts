import { spawnSync } from 'node:child_process';

// A named pipe with no writer: opening it for reading the ordinary way blocks forever.
export function makeFifo(file: string): void {
  const r = spawnSync('mkfifo', [file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mkfifo ${file} failed: ${r.stderr}`);
}
