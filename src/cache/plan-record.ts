// Records of the plans the tenant cache helped write, so that the next compile of the fleet can keep their
// weights.bin bytes instead of writing and hashing every byte again (`loom compile --cache`).
//
// A record names a weights.bin by its real path and its stat (size, mtime, ctime, inode, device), and holds its
// chunk hashes (plan.json's weights.chunks) and, per blob in offset order, its offset, size and source: the
// cache key of the tenant whose lowering made it and its place among that tenant's weights (`<key>#<seq>`).
// A blob's bytes depend on its tenant's lowered graph alone, which the key names (model bytes, dims, maxBatch,
// precision, Loom's build), so a blob of the new plan with the same source, offset and size as one of the
// recorded plan holds the same bytes. A record is used only when the whole layout is the same (arena size,
// every blob's offset and size): the bytes between blobs are then the same zeros too.
//
// Trust: the file is trusted by its stat, as the model files are (file-hashes.ts): one whose size, times,
// inode or device changed since the record was made is not used (a compile writing into that plan directory
// renames a new file over it: a new inode). A record is written at least RACY_NS after the file's last change
// (the compile waits out the rest), so a write within the same timestamp tick cannot go unnoticed. Records
// carry a sha256 of their own text; one that fails it, or does not parse, is ignored and deleted. The loader
// still checks every chunk of the new weights.bin against plan.json when it loads the plan.
//
// Layout: <cache>/plans/<sha256 of the weights.bin path, 40 hex>.json; the MAX_RECORDS newest are kept.
import { createHash } from 'node:crypto';
import { type BigIntStats, readFileSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { PreviousWeights } from '../../codegen/format.js';
import type { LaunchPlan, WeightChunks } from '../../ir/contract/launch-plan.js';
import { writeAtomic } from './atomic.js';
import { statOrNull } from './file-hashes.js';

export const PLANS_DIR = 'plans';
const FORMAT = 'loom-plan-record';
const VERSION = 1;
const MAX_RECORDS = 8;
// ext4/xfs/btrfs/APFS timestamps have sub-second precision and move at least every jiffy (≤ 10 ms); a file
// system with whole-second timestamps needs the 2 s file-hashes.ts waits
const RACY_NS = 50_000_000n;
const RACY_COARSE_NS = 2_000_000_000n;

interface StatFields {
  readonly size: string;
  readonly mtimeNs: string;
  readonly ctimeNs: string;
  readonly ino: string;
  readonly dev: string;
}

interface Body {
  readonly format: string;
  readonly version: number;
  readonly weightsFile: string;
  readonly fleet?: string; // sha256 of the tenant ids in manifest order: which fleet the plan served
  readonly stat: StatFields;
  readonly recordedNs: string;
  readonly bytes: number;
  readonly chunks: WeightChunks;
  readonly blobs: readonly (readonly [number, number, string | null])[]; // offset, bytes, source
}

interface Stored extends Body {
  readonly check: string; // sha256 of JSON.stringify(Body)
}

// The new plan's blobs, in offset order: offset, bytes and source (null: no source known, always rewritten).
export type BlobSource = readonly [number, number, string | null];

export interface PreviousPlan extends PreviousWeights {
  readonly keptBytes: number;
}

export interface Lookup {
  readonly found?: PreviousPlan;
  readonly notes: readonly string[]; // why records were passed over (shown with --verbose-like progress)
}

// The recorded plan whose weights.bin holds the most of `blobs`' bytes, if any holds at least half the arena.
export function findPreviousPlan(cacheDir: string, arenaBytes: number, blobs: readonly BlobSource[], exclude?: string): Lookup {
  const notes: string[] = [];
  let best: PreviousPlan | undefined;
  for (const { file, rec } of readRecords(cacheDir, notes)) {
    if (exclude !== undefined && rec.weightsFile === exclude) continue;
    const why = unusable(rec, arenaBytes, blobs);
    if (why !== null) {
      notes.push(`${rec.weightsFile}: ${why}`);
      if (why.startsWith('changed') || why.startsWith('gone')) rmSync(file, { force: true });
      continue;
    }
    let keptBytes = 0;
    const keep = blobs.map(([, bytes, src], i) => {
      const same = src !== null && rec.blobs[i]![2] === src;
      if (same) keptBytes += bytes;
      return same;
    });
    const stillSame = () => (unusable(rec, arenaBytes, blobs) === null ? null : `${rec.weightsFile} changed while it was copied`);
    if (best === undefined || keptBytes > best.keptBytes) best = { file: rec.weightsFile, chunks: rec.chunks, keep, keptBytes, stillSame };
  }
  if (best !== undefined && best.keptBytes * 2 < arenaBytes) {
    notes.push(`${best.file}: holds only ${best.keptBytes} of ${arenaBytes} bytes`);
    best = undefined;
  }
  return best === undefined ? { notes } : { found: best, notes };
}

// Records the plan just written (its weights.bin and plan.json's weights table); keeps the newest records.
// Returns why not, when it could not (the compile succeeded either way).
export async function recordPlan(
  cacheDir: string,
  weightsPath: string,
  plan: LaunchPlan,
  sources: readonly (string | null)[],
  tenantIds: readonly string[],
): Promise<string | null> {
  const chunks = plan.weights.chunks;
  if (chunks === undefined) return 'the plan has no chunk hashes';
  let weightsFile: string;
  try {
    weightsFile = realpathSync(weightsPath);
  } catch (e) {
    return (e as Error).message;
  }
  let st = statOrNull(weightsFile);
  if (st === null) return `${weightsFile} is gone`;
  // wait out the racy window once (a few ms after a compile's last writes), so the record can be trusted
  const wait = maxTime(st) + racyNs(st) - nowNs();
  if (wait > 0n) {
    if (wait > 100_000_000n) return null; // a file system with coarse timestamps: not worth waiting 2 s for
    await new Promise((r) => setTimeout(r, Number(wait / 1_000_000n) + 1));
    st = statOrNull(weightsFile);
    if (st === null) return `${weightsFile} is gone`;
  }
  const body: Body = {
    format: FORMAT,
    version: VERSION,
    weightsFile,
    fleet: fleetHash(tenantIds),
    stat: statFields(st),
    recordedNs: String(nowNs()),
    bytes: plan.weights.bytes,
    chunks,
    blobs: plan.weights.blobs.map((b, i) => [b.offset, b.bytes, sources[i] ?? null] as const),
  };
  const json = JSON.stringify(body);
  const stored = `${json.slice(0, -1)},"check":"${sha256(json)}"}`;
  try {
    writeAtomic(recordFile(cacheDir, weightsFile), [Buffer.from(stored)]);
  } catch (e) {
    return (e as Error).message;
  }
  const notes: string[] = [];
  const all = readRecords(cacheDir, notes).sort((a, b) => (BigInt(b.rec.recordedNs) > BigInt(a.rec.recordedNs) ? 1 : -1));
  for (const old of all.slice(MAX_RECORDS)) rmSync(old.file, { force: true });
  return null;
}

// The weights.bin of the newest plan recorded for these tenants whose file is unchanged: the likely source of
// the next compile's bytes, worth copying before the plan is known (findPreviousPlan decides later).
export function likelyPreviousWeights(cacheDir: string, tenantIds: readonly string[], notes: string[]): string | undefined {
  const fleet = fleetHash(tenantIds);
  const mine = readRecords(cacheDir, notes)
    .filter(({ rec }) => rec.fleet === fleet)
    .sort((a, b) => (BigInt(b.rec.recordedNs) > BigInt(a.rec.recordedNs) ? 1 : -1));
  for (const { rec } of mine) if (unusable(rec, rec.bytes, rec.blobs) === null) return rec.weightsFile;
  return undefined;
}

function fleetHash(tenantIds: readonly string[]): string {
  return sha256(JSON.stringify(tenantIds));
}

function readRecords(cacheDir: string, notes: string[]): { file: string; rec: Body }[] {
  const dir = path.join(cacheDir, PLANS_DIR);
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  return names.flatMap((n) => {
    const file = path.join(dir, n);
    const rec = parseRecord(file);
    if (rec === null) {
      notes.push(`plan record ${n}: corrupt; deleted`);
      rmSync(file, { force: true });
      return [];
    }
    return [{ file, rec }];
  });
}

function parseRecord(file: string): Body | null {
  let s: Stored;
  try {
    s = JSON.parse(readFileSync(file, 'utf8')) as Stored;
  } catch {
    return null;
  }
  if (s === null || typeof s !== 'object' || typeof s.check !== 'string') return null;
  const { check, ...body } = s;
  const json = JSON.stringify(body);
  if (sha256(json) !== check) return null;
  if (body.format !== FORMAT || body.version !== VERSION || !Array.isArray(body.blobs) || !Array.isArray(body.chunks?.sha256)) return null;
  return body;
}

// Why a record cannot serve this plan, or null.
function unusable(rec: Body, arenaBytes: number, blobs: readonly BlobSource[]): string | null {
  const st = statOrNull(rec.weightsFile);
  if (st === null) return 'gone';
  const now = statFields(st);
  if ((Object.keys(now) as (keyof StatFields)[]).some((k) => now[k] !== rec.stat[k])) return 'changed since it was written (size, times or inode)';
  if (BigInt(rec.recordedNs) - maxTime(st) < racyNs(st)) return 'recorded too soon after it was written to be trusted';
  if (rec.bytes !== arenaBytes) return `another layout (its arena is ${rec.bytes} bytes, this plan's ${arenaBytes})`;
  if (rec.blobs.length !== blobs.length) return `another layout (${rec.blobs.length} blobs, this plan has ${blobs.length})`;
  const k = blobs.findIndex(([o, b], i) => rec.blobs[i]![0] !== o || rec.blobs[i]![1] !== b);
  if (k >= 0) return `another layout (blob ${k} differs)`;
  return null;
}

function statFields(st: BigIntStats): StatFields {
  return { size: String(st.size), mtimeNs: String(st.mtimeNs), ctimeNs: String(st.ctimeNs), ino: String(st.ino), dev: String(st.dev) };
}

function maxTime(st: BigIntStats): bigint {
  return st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs;
}

// Whole-second timestamps (both times on a second) need the long window.
function racyNs(st: BigIntStats): bigint {
  return st.mtimeNs % 1_000_000_000n === 0n && st.ctimeNs % 1_000_000_000n === 0n ? RACY_COARSE_NS : RACY_NS;
}

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

function recordFile(cacheDir: string, weightsFile: string): string {
  return path.join(cacheDir, PLANS_DIR, `${sha256(weightsFile).slice(0, 40)}.json`);
}
