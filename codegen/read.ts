// readPlanDir / loadWeights: the runtime's entry to a LaunchPlan directory. Everything read is validated;
// a corrupt, truncated, foreign or newer plan is a PLAN_INVALID error that says which and where.
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fail } from '../ir/errors.js';
import { MAX_TEXT_BYTES, checkJsonDepth, openRegularFile, readTextFile } from '../ir/files.js';
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
// loadWeightsAsync's chunk: one chunk read and hashed is what holds the event loop (about 15 ms on the 2-core
// machine), so a server loading a new plan beside the one it serves keeps answering (runtime/serve/swap.ts).
const WEIGHT_CHUNK_ASYNC = 8 << 20;

export function loadWeights(dir: string, plan: LaunchPlan): Uint8Array {
  const read = readWeights(dir, plan, WEIGHT_CHUNK);
  for (let r = read.next(); ; r = read.next()) if (r.done) return r.value;
}

// The same, giving the event loop a turn between chunks.
export async function loadWeightsAsync(dir: string, plan: LaunchPlan): Promise<Uint8Array> {
  const read = readWeights(dir, plan, WEIGHT_CHUNK_ASYNC);
  for (let r = read.next(); ; r = read.next()) {
    if (r.done) return r.value;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

// Reads and hashes `chunk` bytes per step; returns the weights once the sha256 matched plan.json's.
function* readWeights(dir: string, plan: LaunchPlan, chunk: number): Generator<void, Uint8Array> {
  const file = path.join(dir, plan.weights.file);
  if (!existsSync(file)) fail('IO', `weights file '${file}' does not exist`);
  // the size is checked against plan.json's below; the read is bounded by the size fstat reports
  const f = openRegularFile(file, { what: 'weights file', maxBytes: Number.MAX_SAFE_INTEGER });
  try {
    const size = f.size;
    if (size !== plan.weights.bytes)
      fail('PLAN_INVALID', `${file} has ${size} bytes, plan.json expects ${plan.weights.bytes} (truncated or from another plan?)`);
    const out = new Uint8Array(size);
    const hash = createHash('sha256');
    for (let at = 0; at < size; ) {
      const n = Math.min(chunk, size - at);
      f.read(at, n, out.subarray(at, at + n));
      hash.update(out.subarray(at, at + n));
      at += n;
      if (at < size) yield;
    }
    const sha = hash.digest('hex');
    if (sha !== plan.weights.sha256)
      fail('PLAN_INVALID', `${file} is corrupt: sha256 ${sha.slice(0, 16)}… differs from plan.json's ${plan.weights.sha256.slice(0, 16)}…`);
    return out;
  } finally {
    f.close();
  }
}
