// readPlanDir / loadWeights: the runtime's entry to a LaunchPlan directory. Everything read is validated;
// a corrupt, truncated, foreign or newer plan is a PLAN_INVALID error that says which and where.
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fail } from '../ir/errors.js';
import { MAX_TEXT_BYTES, type RegularFile, checkJsonDepth, openRegularFile, readTextFile } from '../ir/files.js';
import { PLAN_FILE, type LaunchPlan } from '../ir/contract/launch-plan.js';
import { parsePlanJson } from './json.js';
import { checkLaunchPlan, checkStructure } from './validate.js';

// plan.json is read whole as one string: at most what V8 can hold (512 MiB; a 120-tenant fleet's is ~10 MB).
export const MAX_PLAN_JSON_BYTES = MAX_TEXT_BYTES;

function readPlanText(file: string): string {
  if (!existsSync(file)) fail('IO', `plan '${file}' does not exist (is this a directory written by loom compile?)`);
  return readTextFile(file, { what: 'plan', maxBytes: MAX_PLAN_JSON_BYTES });
}

export function parseLaunchPlan(text: string, source = PLAN_FILE): LaunchPlan {
  checkJsonDepth(text, { what: source, code: 'PLAN_INVALID' }); // the reviver and validators recurse
  let json: unknown;
  try {
    json = parsePlanJson(text);
  } catch (e) {
    fail('PLAN_INVALID', `${source} is not valid JSON (truncated or corrupt?): ${(e as Error).message}`);
  }
  const plan = checkStructure(json);
  checkLaunchPlan(plan);
  return plan;
}

export function readPlanDir(dir: string): LaunchPlan {
  const file = path.join(dir, PLAN_FILE);
  return parseLaunchPlan(readPlanText(file), file);
}

// Read in chunks into one array: readFileSync refuses files over 2 GiB, and a 120-tenant LSTM fleet's
// weights are ~4 GB. The sha256 is computed on the way.
const WEIGHT_CHUNK = 64 << 20;
// loadWeightsAsync's chunk: hashing one chunk is what holds the event loop (a 64 MiB chunk about 100 ms on the
// 2-core machine, 8 MiB about 15 ms), so a server loading a new plan beside the one it serves keeps answering
// (runtime/serve/swap.ts). The reads overlap the hashing, so the smaller chunk costs little.
export const WEIGHT_CHUNK_ASYNC = 8 << 20;

export function loadWeights(dir: string, plan: LaunchPlan): Uint8Array {
  const { file, f } = openWeights(dir, plan);
  try {
    const size = f.size;
    const out = new Uint8Array(size);
    const check = new WeightsCheck(file, plan);
    for (let at = 0; at < size; ) {
      const n = Math.min(WEIGHT_CHUNK, size - at);
      f.read(at, n, out.subarray(at, at + n));
      check.update(out.subarray(at, at + n));
      at += n;
    }
    check.finish();
    return out;
  } finally {
    f.close();
  }
}

// As loadWeights, reading the next chunk while the last one is hashed (a plan of gigabytes loads in about the
// time of the slower of the two, not their sum). Into one JS array: at most what a typed array may hold
// (4 GiB on Node 20); loadPlan streams into the backend instead (streamWeights).
export async function loadWeightsAsync(dir: string, plan: LaunchPlan): Promise<Uint8Array> {
  const out = new Uint8Array(plan.weights.bytes);
  await streamWeights(dir, plan, { window: (at, n) => out.subarray(at, at + n), commit: () => {} });
  return out;
}

// Where streamWeights puts weights.bin's bytes, chunk by chunk in file order: `window` gives the memory a
// chunk is read into (null: streamWeights reads it into a buffer of its own and hands that to commit); at most
// two windows are open at once (the next chunk is read while the last is hashed); `commit` once a chunk's
// bytes are in.
export interface WeightsSink {
  window(offset: number, bytes: number): Uint8Array | null;
  commit(offset: number, bytes: number, data: Uint8Array | null): void;
}

// Reads weights.bin in WEIGHT_CHUNK_ASYNC chunks into `sink`, the next chunk's read (libuv's thread pool)
// overlapping the last one's sha256 (this thread), and refuses a file whose size or sha256 differs from
// plan.json's: the caller must not use what it was given before this resolves. The event loop gets a turn
// between chunks.
export async function streamWeights(dir: string, plan: LaunchPlan, sink: WeightsSink): Promise<void> {
  const { file, f } = openWeights(dir, plan);
  let pending: Promise<void> | null = null;
  try {
    const size = f.size;
    const check = new WeightsCheck(file, plan);
    const own = [new Uint8Array(0), new Uint8Array(0)]; // buffers of our own where the sink gives no window
    const open = (at: number, k: number): { at: number; n: number; into: Uint8Array; mine: boolean } => {
      const n = Math.min(WEIGHT_CHUNK_ASYNC, size - at);
      const w = sink.window(at, n);
      if (w !== null) {
        if (w.byteLength !== n) throw new Error(`weights sink: the window at ${at} has ${w.byteLength} bytes, not ${n}`);
        return { at, n, into: w, mine: false };
      }
      if (own[k]!.byteLength < n) own[k] = new Uint8Array(WEIGHT_CHUNK_ASYNC);
      return { at, n, into: own[k]!.subarray(0, n), mine: true };
    };
    let k = 0;
    let cur = size > 0 ? open(0, k) : null;
    pending = cur ? f.readInto(0, cur.into) : null;
    while (cur) {
      await pending;
      const nextAt = cur.at + cur.n;
      k ^= 1;
      const next = nextAt < size ? open(nextAt, k) : null;
      pending = next ? f.readInto(nextAt, next.into) : null;
      check.update(cur.into);
      sink.commit(cur.at, cur.n, cur.mine ? cur.into : null);
      cur = next;
    }
    pending = null;
    check.finish();
  } finally {
    if (pending) await pending.catch(() => {}); // no read left writing into the sink's memory or using the closed file
    f.close();
  }
}

function openWeights(dir: string, plan: LaunchPlan): { file: string; f: RegularFile } {
  const file = path.join(dir, plan.weights.file);
  if (!existsSync(file)) fail('IO', `weights file '${file}' does not exist`);
  // the size is checked against plan.json's below; the read is bounded by the size fstat reports
  const f = openRegularFile(file, { what: 'weights file', maxBytes: Number.MAX_SAFE_INTEGER });
  if (f.size !== plan.weights.bytes) {
    f.close();
    fail('PLAN_INVALID', `${file} has ${f.size} bytes, plan.json expects ${plan.weights.bytes} (truncated or from another plan?)`);
  }
  return { file, f };
}

// Checks weights.bin's bytes, given in file order, against plan.json: the whole file's sha256 (older plans)
// or each chunk's (weights.chunks), a bad chunk refused as soon as its last byte is in.
class WeightsCheck {
  private readonly whole = createHash('sha256');
  private chunk = createHash('sha256');
  private at = 0; // bytes seen
  private filled = 0; // of the current chunk

  constructor(
    private readonly file: string,
    private readonly plan: LaunchPlan,
  ) {}

  update(bytes: Uint8Array): void {
    const c = this.plan.weights.chunks;
    if (c === undefined) {
      this.whole.update(bytes);
      this.at += bytes.byteLength;
      return;
    }
    for (let i = 0; i < bytes.byteLength; ) {
      const n = Math.min(c.bytes - this.filled, bytes.byteLength - i);
      this.chunk.update(n === bytes.byteLength ? bytes : bytes.subarray(i, i + n));
      this.filled += n;
      i += n;
      this.at += n;
      if (this.filled === c.bytes || this.at === this.plan.weights.bytes) this.endChunk(c.bytes, c.sha256);
    }
  }

  finish(): void {
    const c = this.plan.weights.chunks;
    if (c !== undefined) {
      if (this.filled > 0) this.endChunk(c.bytes, c.sha256);
      return;
    }
    const sha = this.whole.digest('hex');
    const want = this.plan.weights.sha256 ?? '';
    if (sha !== want) fail('PLAN_INVALID', `${this.file} is corrupt: sha256 ${sha.slice(0, 16)}… differs from plan.json's ${want.slice(0, 16)}…`);
  }

  private endChunk(size: number, hashes: readonly string[]): void {
    const k = Math.ceil(this.at / size) - 1;
    const sha = this.chunk.digest('hex');
    this.chunk = createHash('sha256');
    this.filled = 0;
    const want = hashes[k] ?? '';
    if (sha !== want) {
      const from = k * size;
      fail(
        'PLAN_INVALID',
        `${this.file} is corrupt: sha256 of bytes [${from}, ${Math.min(from + size, this.plan.weights.bytes)}) ${sha.slice(0, 16)}… differs from plan.json's ${want.slice(0, 16)}… (weights.chunks.sha256[${k}])`,
      );
    }
  }
}
