// readPlanDir / loadWeights: the runtime's entry to a LaunchPlan directory. Everything read is validated;
// a corrupt, truncated, foreign or newer plan is a PLAN_INVALID error that says which and where.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fail } from '../ir/errors.js';
import { sha256Hex } from './build.js';
import { PLAN_FILE, type LaunchPlan } from './format.js';
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

export function loadWeights(dir: string, plan: LaunchPlan): Uint8Array {
  const file = path.join(dir, plan.weights.file);
  const buf = readFile(file, 'weights file');
  if (buf.byteLength !== plan.weights.bytes) fail('PLAN_INVALID', `${file} has ${buf.byteLength} bytes, plan.json expects ${plan.weights.bytes} (truncated or from another plan?)`);
  const sha = sha256Hex(buf);
  if (sha !== plan.weights.sha256) fail('PLAN_INVALID', `${file} is corrupt: sha256 ${sha.slice(0, 16)}… differs from plan.json's ${plan.weights.sha256.slice(0, 16)}…`);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}
