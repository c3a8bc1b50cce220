// Writes that readers never see half done: a temporary file beside the target, renamed over it. Two compiles
// sharing a cache may write the same entry at once; each renames a complete file and the last one stays.
import { closeSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

const CHUNK = 256 * 1024; // one multi-MB write from cold memory runs slowly here (codegen/write.ts says the same)

export function writeAtomic(file: string, parts: readonly Uint8Array[]): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  const fd = openSync(tmp, 'w', 0o644);
  try {
    for (const p of parts) {
      for (let off = 0; off < p.byteLength; ) off += writeSync(fd, p, off, Math.min(CHUNK, p.byteLength - off));
    }
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
