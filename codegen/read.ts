// readPlanDir / loadWeights: the runtime's entry to a LaunchPlan directory. Everything read is validated;
// a corrupt, truncated, foreign or newer plan is a PLAN_INVALID error that says which and where.
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fail } from '../ir/errors.js';
import { PLAN_FILE, type LaunchPlan } from '../ir/contract/launch-plan.js';
import { parsePlanJson } from './json.js';
import { checkLaunchPlan, checkStructure } from './validate.js';

function readFile(file: string, what: string): Buffer {
  if (!existsSync(file)) fail('IO', `${what} '${file}' does not exist${what === 'plan' ? ' (is this a directory written by loom compile?)' : ''}`);
  try {
    return readFileSync(file);
  } catch (e) {
    return fail('IO', `cannot read ${what} '${file}': ${(e as Error).message}`);
  }
}

export function parseLaunchPlan(text: string, source = PLAN_FILE): LaunchPlan {
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
  return parseLaunchPlan(readFile(file, 'plan').toString('utf8'), file);
}

// Read in chunks into one array: readFileSync refuses files over 2 GiB, and a 120-tenant LSTM fleet's
// weights are ~4 GB. The sha256 is computed on the way.
const WEIGHT_CHUNK = 64 << 20;

export function loadWeights(dir: string, plan: LaunchPlan): Uint8Array {
  const file = path.join(dir, plan.weights.file);
  if (!existsSync(file)) fail('IO', `weights file '${file}' does not exist`);
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    return fail('IO', `cannot read weights file '${file}': ${(e as Error).message}`);
  }
  try {
    const size = fstatSync(fd).size;
    if (size !== plan.weights.bytes)
      fail('PLAN_INVALID', `${file} has ${size} bytes, plan.json expects ${plan.weights.bytes} (truncated or from another plan?)`);
    const out = new Uint8Array(size);
    const hash = createHash('sha256');
    for (let at = 0; at < size; ) {
      const n = readSync(fd, out, at, Math.min(WEIGHT_CHUNK, size - at), at);
      if (n <= 0) fail('IO', `${file}: unexpected end of file at byte ${at} of ${size}`);
      hash.update(out.subarray(at, at + n));
      at += n;
    }
    const sha = hash.digest('hex');
    if (sha !== plan.weights.sha256)
      fail('PLAN_INVALID', `${file} is corrupt: sha256 ${sha.slice(0, 16)}… differs from plan.json's ${plan.weights.sha256.slice(0, 16)}…`);
    return out;
  } finally {
    closeSync(fd);
  }
}
