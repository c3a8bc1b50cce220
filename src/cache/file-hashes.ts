// Content hashes of the files a tenant was compiled from, remembered by their stat (like git's index): a file
// whose size, mtime, ctime, inode and device are what they were when it was hashed is not read again. A
// record made within RACY_NS of the file's last change is not trusted (the file may still have been changing
// within one timestamp tick), nor is one that fails to parse: the file is then hashed again.
import { createHash } from 'node:crypto';
import { type BigIntStats, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { readRegularFile } from '../../ir/files.js';
import { writeAtomic } from './atomic.js';

const RACY_NS = 2_000_000_000n;
const MAX_HASHED_BYTES = Number.MAX_SAFE_INTEGER;

interface StatRecord {
  readonly file: string;
  readonly size: string;
  readonly mtimeNs: string;
  readonly ctimeNs: string;
  readonly ino: string;
  readonly dev: string;
  readonly recordedNs: string;
  readonly sha256: string;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export class FileHashes {
  private readonly known = new Map<string, string>(); // this run's answers, by real path

  constructor(private readonly dir: string) {}

  // The recorded hash of `file` if its stat still matches the record (nothing is read); `seen` says whether
  // there was a record at all (a file never hashed before is best read by the import itself).
  lookup(file: string): { readonly sha256?: string; readonly seen: boolean } {
    const memo = this.known.get(file);
    if (memo !== undefined) return { sha256: memo, seen: true };
    const st = statOrNull(file);
    if (st === null) return { seen: false };
    let rec: Partial<StatRecord>;
    try {
      rec = JSON.parse(readFileSync(this.recordFile(file), 'utf8')) as Partial<StatRecord>;
    } catch {
      return { seen: false };
    }
    const now = statFields(file, st, 0n);
    const same = (['file', 'size', 'mtimeNs', 'ctimeNs', 'ino', 'dev'] as const).every((k) => rec[k] === now[k]);
    if (!same || typeof rec.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(rec.sha256)) return { seen: true };
    if (BigInt(rec.recordedNs ?? '0') - maxTime(st) < RACY_NS) return { seen: true };
    this.known.set(file, rec.sha256);
    return { sha256: rec.sha256, seen: true };
  }

  recorded(file: string): string | undefined {
    return this.lookup(file).sha256;
  }

  // The hash of `file`: recorded, or read and hashed now (and recorded).
  hash(file: string, what = 'external data file'): string {
    const known = this.recorded(file);
    if (known !== undefined) return known;
    return this.remember(file, statOrNull(file), sha256Hex(readRegularFile(file, { what, maxBytes: MAX_HASHED_BYTES })));
  }

  // Records the hash of bytes read from `file`, taken with `before` = its stat before the read; nothing is
  // recorded when the file changed meanwhile.
  remember(file: string, before: BigIntStats | null, sha256: string): string {
    this.known.set(file, sha256);
    const after = statOrNull(file);
    if (before === null || after === null) return sha256;
    const a = statFields(file, before, 0n);
    const b = statFields(file, after, 0n);
    if (JSON.stringify(a) !== JSON.stringify(b)) return sha256;
    const rec: StatRecord = { ...statFields(file, after, nowNs()), sha256 };
    try {
      writeAtomic(this.recordFile(file), [Buffer.from(JSON.stringify(rec))]);
    } catch {
      // a read-only or full cache only loses the shortcut
    }
    return sha256;
  }

  private recordFile(file: string): string {
    return path.join(this.dir, `${createHash('sha256').update(file).digest('hex').slice(0, 40)}.json`);
  }
}

export function statOrNull(file: string): BigIntStats | null {
  try {
    return statSync(file, { bigint: true });
  } catch {
    return null;
  }
}

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

function maxTime(st: BigIntStats): bigint {
  return st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs;
}

function statFields(file: string, st: BigIntStats, recordedNs: bigint): Omit<StatRecord, 'sha256'> {
  return {
    file,
    size: String(st.size),
    mtimeNs: String(st.mtimeNs),
    ctimeNs: String(st.ctimeNs),
    ino: String(st.ino),
    dev: String(st.dev),
    recordedNs: String(recordedNs),
  };
}
