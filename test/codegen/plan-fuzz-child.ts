// The plan-directory fuzz's worker (test/codegen/plan-fuzz.test.ts spawns it, so a native crash or a hang
// cannot take vitest down and is pinned to its case): mutates plan.json (values and structure) and
// weights.bin (bytes and length, with and without a matching sha256 in plan.json) of a small compiled plan,
// then readPlanDir + loadWeights + loadPlan on the CPU backend + one tick. Prints one JSON line before each
// case ({"i", "desc"}) and one after ({"i", "outcome", "ms"}); outcome is 'ran', 'loom:<CODE>' or
// 'untyped:<message>'. Usage: tsx plan-fuzz-child.ts <plan-dir> <work-dir> <seed> <first> <count>
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadWeights, readPlanDir } from '../../codegen/index.js';
import { isLoomError } from '../../ir/errors.js';
import { loadPlan } from '../../runtime/index.js';
import { exampleInputs } from '../../src/fleet/inputs.js';
import { rng } from '../support/tensors.js';

const [planDir, work, seedArg, firstArg, countArg] = process.argv.slice(2);
const SEED = Number(seedArg);
const FIRST = Number(firstArg);
const COUNT = Number(countArg);

const NUMBERS = [
  0,
  -1,
  1,
  2,
  3,
  4,
  7,
  8,
  16,
  255,
  256,
  1023,
  1024,
  4096,
  65536,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32,
  2 ** 40,
  2 ** 53,
  1e300,
  -(2 ** 31),
  0.5,
  -0.5,
  1.5,
];
const STRINGS = ['', 'f32', 'f16', 'i64', 'bool', 'bogus', 'gemm', 'gemm_grouped', 'kernel', 'io', 'act', 'weights', 'eltwise', 'relu', 'NaN', 'Infinity'];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Slot = { parent: Json[] | { [k: string]: Json }; key: string | number; path: string };

function slots(root: Json): Slot[] {
  const out: Slot[] = [];
  const walk = (v: Json, p: string) => {
    if (Array.isArray(v)) {
      v.forEach((x, i) => {
        out.push({ parent: v, key: i, path: `${p}[${i}]` });
        walk(x, `${p}[${i}]`);
      });
    } else if (v !== null && typeof v === 'object') {
      for (const k of Object.keys(v)) {
        out.push({ parent: v, key: k, path: `${p}.${k}` });
        walk(v[k]!, `${p}.${k}`);
      }
    }
  };
  walk(root, '');
  return out;
}

const get = (s: Slot): Json => (s.parent as Record<string | number, Json>)[s.key]!;
const set = (s: Slot, v: Json) => {
  (s.parent as Record<string | number, Json>)[s.key] = v;
};

// One structural or value mutation of the parsed plan.json; returns what it did.
function mutateJson(root: Json, r: () => number): string {
  const all = slots(root);
  // most of plan.json is launches' numbers: favour them, but reach every field
  const s = all[Math.floor(r() * all.length)]!;
  const v = get(s);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  const op = r();
  if (typeof v === 'number') {
    const nv = op < 0.6 ? pick(NUMBERS) : op < 0.75 ? v + (r() < 0.5 ? 1 : -1) : op < 0.85 ? v * 2 : op < 0.92 ? -v : String(v);
    set(s, nv as Json);
    return `${s.path}: ${v} -> ${JSON.stringify(nv)}`;
  }
  if (typeof v === 'string') {
    const strs = all.map(get).filter((x): x is string => typeof x === 'string');
    const nv = op < 0.5 ? pick(STRINGS) : op < 0.9 ? pick(strs) : pick(NUMBERS);
    set(s, nv);
    return `${s.path}: ${JSON.stringify(v)} -> ${JSON.stringify(nv)}`;
  }
  if (Array.isArray(v)) {
    if (op < 0.35 && v.length > 0) {
      const at = Math.floor(r() * v.length);
      v.splice(at, 1);
      return `${s.path}: removed [${at}]`;
    }
    if (op < 0.6 && v.length > 0) {
      const at = Math.floor(r() * v.length);
      v.splice(at, 0, JSON.parse(JSON.stringify(v[at])) as Json);
      return `${s.path}: duplicated [${at}]`;
    }
    if (op < 0.75 && v.length > 1) {
      const a = Math.floor(r() * v.length);
      const b = Math.floor(r() * v.length);
      [v[a], v[b]] = [v[b]!, v[a]!];
      return `${s.path}: swapped [${a}] and [${b}]`;
    }
    const nv = pick<Json>([[], null, 0, {}, 'x']);
    set(s, nv);
    return `${s.path}: array -> ${JSON.stringify(nv)}`;
  }
  if (v !== null && typeof v === 'object') {
    const keys = Object.keys(v);
    if (op < 0.5 && keys.length > 0) {
      const k = pick(keys);
      delete v[k];
      return `${s.path}: deleted .${k}`;
    }
    if (op < 0.7) {
      v[pick(['extra', 'kind', 'op', 'offset', 'bytes', 'tenant'])] = pick<Json>([1, -1, 'x', null, []]);
      return `${s.path}: added a key`;
    }
    const nv = pick<Json>([null, [], 0, 'x']);
    set(s, nv);
    return `${s.path}: object -> ${JSON.stringify(nv)}`;
  }
  const nv = pick<Json>([0, 1, 'x', [], {}, true]);
  set(s, nv);
  return `${s.path}: ${JSON.stringify(v)} -> ${JSON.stringify(nv)}`;
}

function mutateWeights(w: Uint8Array, r: () => number): { bytes: Uint8Array; desc: string } {
  const op = r();
  if (op < 0.5 || w.length === 0) {
    const b = Uint8Array.from(w);
    const n = 1 + Math.floor(r() * 16);
    for (let i = 0; i < n && b.length > 0; i++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
    return { bytes: b, desc: `weights: ${n} bytes overwritten` };
  }
  if (op < 0.8) {
    const len = Math.floor(r() * w.length);
    return { bytes: w.slice(0, len), desc: `weights: truncated to ${len}` };
  }
  const extra = 1 + Math.floor(r() * 64);
  const b = new Uint8Array(w.length + extra);
  b.set(w);
  return { bytes: b, desc: `weights: ${extra} bytes appended` };
}

const baseText = readFileSync(path.join(planDir, 'plan.json'), 'utf8');
const baseWeights = new Uint8Array(readFileSync(path.join(planDir, 'weights.bin')));
for (const f of ['kernels.cu']) if (existsSync(path.join(planDir, f))) copyFileSync(path.join(planDir, f), path.join(work, f));

const say = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);

async function runCase(i: number): Promise<void> {
  const r = rng(SEED * 7919 + i);
  const plan = JSON.parse(baseText) as Json;
  let weights: Uint8Array = baseWeights;
  const descs: string[] = [];
  const kind = r();
  if (kind < 0.7) {
    const n = r() < 0.8 ? 1 : 2 + Math.floor(r() * 3);
    for (let k = 0; k < n; k++) descs.push(mutateJson(plan, r));
  } else {
    const m = mutateWeights(weights, r);
    weights = m.bytes;
    descs.push(m.desc);
    if (r() < 0.75) {
      // re-sign: plan.json agrees with the new file, so the bytes reach validation and the backend
      // (as a whole-file sha256: the form plans had before chunk hashes, which still loads)
      const w = (plan as { weights: { bytes: number; sha256?: string; chunks?: unknown } }).weights;
      w.bytes = weights.length;
      delete w.chunks;
      w.sha256 = createHash('sha256').update(weights).digest('hex');
      descs.push('plan.json re-signed');
    }
  }
  writeFileSync(path.join(work, 'plan.json'), JSON.stringify(plan));
  writeFileSync(path.join(work, 'weights.bin'), weights);
  say({ i, desc: descs.join('; ') });
  const t0 = performance.now();
  let outcome = 'ran';
  let msg = '';
  try {
    const p = readPlanDir(work);
    loadWeights(work, p);
    const loaded = await loadPlan(work, { backend: 'cpu', threads: 1 });
    try {
      const inputs: Record<string, ReturnType<typeof exampleInputs>> = {};
      let bytes = 0;
      for (const t of loaded.plan.tenants) {
        for (const io of t.inputs) bytes += io.shape.reduce((a, d) => a * Math.max(1, d), 1) * 8;
        if (bytes > 64 * 2 ** 20) break;
        inputs[t.id] = exampleInputs(t, 1, i, 8);
      }
      if (bytes <= 64 * 2 ** 20) await loaded.runTick(inputs);
      else outcome = 'ran (inputs too big to build, no tick)';
    } finally {
      loaded.close();
    }
  } catch (e) {
    msg = (e instanceof Error ? e.message : String(e)).slice(0, 300);
    outcome = isLoomError(e) ? `loom:${e.code}` : `untyped:${e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e)}`.slice(0, 300);
  }
  say({ i, outcome, msg, ms: Number((performance.now() - t0).toFixed(1)) });
}

for (let i = FIRST; i < FIRST + COUNT; i++) await runCase(i);
say({ done: true });
