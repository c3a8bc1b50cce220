// A/B of backend settings on one GPU, one process: each plan loaded once per setting of LOOM_CUDA_* variables
// (read when a plan loads), then their captured ticks timed in interleaved rounds so drift falls on all of them.
// For switches such as the skinny-GEMM weight prefetch (LOOM_CUDA_PDL=prefetch|noprefetch|off) that a default
// should follow only once measured.
//   usage: node --import tsx bench/env-ab.ts --settings 'LOOM_CUDA_PDL=prefetch;LOOM_CUDA_PDL=noprefetch'
//          [--fleets mlp-b1,zoo-mix,...] [--work DIR] [--iters 100] [--rounds 5] [PLAN_DIR ...]
//   --settings: settings separated by ';', each a ','-separated list of VAR=value (an empty one: the defaults).
//   Prints device tick p50 per plan and setting (median of the rounds' p50s) and each against the first setting;
//   writes <date>-<card>-env-ab.json under bench/results (and $OUT).
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fail } from '../ir/errors.js';
import { type LoadedPlan, loadPlan, withBackendEnv } from '../runtime/index.js';
import { alignTable, quantile, resultFile, runIfMain } from './common.js';
import { prepareFleet } from './fleet-table/prepare.js';
import { fleetByName } from './fleet-table/specs.js';

export type Setting = Readonly<Record<string, string>>;

// 'A=1,B=x;A=2' → [{A: '1', B: 'x'}, {A: '2'}]; '' between ';' is the defaults ({}).
export function parseSettings(text: string): Setting[] {
  const out = text.split(';').map((one, i) => {
    const s: Record<string, string> = {};
    for (const kv of one
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean)) {
      const eq = kv.indexOf('=');
      const name = eq > 0 ? kv.slice(0, eq) : '';
      if (!/^LOOM_[A-Z0-9_]+$/.test(name)) fail('USAGE', `--settings: setting ${i + 1}: '${kv}' is not LOOM_VAR=value`);
      if (name in s) fail('USAGE', `--settings: setting ${i + 1} sets ${name} twice`);
      s[name] = kv.slice(eq + 1);
    }
    return s;
  });
  if (out.length < 2) fail('USAGE', '--settings: give at least two settings separated by ;');
  return out;
}

export function settingLabel(s: Setting): string {
  const kv = Object.entries(s).map(([k, v]) => `${k}=${v}`);
  return kv.length > 0 ? kv.join(',') : 'defaults';
}

// The backendInfo() notes that say what a variable did on the loaded plan (printed per plan and setting, so a
// row's number comes with what ran: the paths chosen, the launches made programmatic, the lanes).
const NOTES: ReadonlyArray<readonly [RegExp, string]> = [
  [/^LOOM_CUDA_PDL/, 'pdlNote'],
  [/^LOOM_CUDA_(TILE|SPLIT_K|LT|FUSE|GEMV.*)$/, 'gemmPathsNote'],
  [/^LOOM_CUDA_LANES$|^LOOM_CUDA_PRIORITY$/, 'lanesNote'],
];

// The notes the setting's variables name, each once, from a loaded plan's backendInfo().
export function settingNotes(s: Setting, info: Readonly<Record<string, unknown>>): string[] {
  const keys = new Set<string>();
  for (const name of Object.keys(s)) for (const [re, key] of NOTES) if (re.test(name)) keys.add(key);
  return [...keys].filter((k) => info[k] !== undefined && info[k] !== '').map((k) => `${k}: ${String(info[k])}`);
}

interface Row {
  readonly plan: string;
  readonly setting: string;
  readonly deviceP50Us: number;
  readonly rounds: readonly number[];
  readonly vsFirst: number;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      settings: { type: 'string' },
      fleets: { type: 'string', default: '' },
      work: { type: 'string', default: path.join(os.tmpdir(), 'loom-fleet-table') },
      iters: { type: 'string', default: '100' },
      rounds: { type: 'string', default: '5' },
    },
  });
  if (values.settings === undefined) fail('USAGE', "env-ab: --settings 'LOOM_X=a;LOOM_X=b' is required");
  const settings = parseSettings(values.settings);
  const iters = Number(values.iters);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(iters) || iters < 1 || !Number.isInteger(rounds) || rounds < 1) fail('USAGE', '--iters and --rounds must be positive integers');
  const plans = positionals.map((d) => ({ name: path.basename(path.resolve(d)), dir: d }));
  for (const name of values.fleets.split(',').filter(Boolean)) {
    const f = await prepareFleet(fleetByName(name), { work: values.work, precision: 'fp32', nvcc: 'auto', log: (m) => process.stderr.write(`${m}\n`) });
    plans.push({ name, dir: f.planDir });
  }
  if (plans.length === 0) fail('USAGE', 'env-ab: no plans (give plan dirs or --fleets NAMES)');

  const rows: Row[] = [];
  let card = 'unknown';
  for (const p of plans) {
    const loaded: LoadedPlan[] = [];
    try {
      for (const s of settings) loaded.push(await withBackendEnv(s, () => loadPlan(p.dir, { backend: 'cuda' })));
      card = String(loaded[0]!.backendInfo().device ?? card);
      settings.forEach((s, i) => {
        for (const note of settingNotes(s, loaded[i]!.backendInfo())) process.stdout.write(`${p.name}, ${settingLabel(s)}: ${note}\n`);
      });
      for (const l of loaded) l.benchTick(Math.min(iters, 30)); // warm-up
      const p50s = loaded.map(() => [] as number[]);
      for (let r = 0; r < rounds; r++) loaded.forEach((l, i) => p50s[i]!.push(quantile(l.benchTick(iters).deviceUs, 0.5)));
      const medians = p50s.map((v) => quantile(v, 0.5));
      settings.forEach((s, i) =>
        rows.push({ plan: p.name, setting: settingLabel(s), deviceP50Us: medians[i]!, rounds: p50s[i]!, vsFirst: medians[i]! / medians[0]! }),
      );
    } finally {
      for (const l of loaded) l.close();
    }
  }
  process.stdout.write(`env A/B on ${card}, ${new Date().toISOString().slice(0, 10)}: device tick p50 (CUDA events), ${rounds} rounds x ${iters} replays\n`);
  const table = alignTable(
    ['plan', 'setting', 'device p50 us', 'vs first', 'rounds'],
    rows.map((r) => [r.plan, r.setting, r.deviceP50Us.toFixed(1), `${r.vsFirst.toFixed(3)}x`, r.rounds.map((x) => x.toFixed(1)).join(' ')]),
    2,
  );
  process.stdout.write(`${table.join('\n')}\n`);
  const resultsDir = path.resolve(import.meta.dirname, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const out = resultFile(resultsDir, card, 'env-ab', 'json');
  writeFileSync(out, `${JSON.stringify({ card, date: new Date().toISOString(), iters, rounds, settings, rows }, null, 2)}\n`);
  if (process.env.OUT) copyFileSync(out, path.join(process.env.OUT, path.basename(out)));
}

runIfMain(import.meta.url, main);
