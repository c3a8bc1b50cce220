// What the benchmark programs under bench/ share: running as a program, parsing their flags, result files
// (names, writing), small statistics and the column layout and cells of their tables.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { fail } from '../ir/errors.js';
import { writeZooModel } from '../models/index.js';
import { fmtUs } from '../src/fleet/summary.js';
import { percentile } from '../src/measure/stats.js';

const ROOT = path.resolve(import.meta.dirname, '..');

// Runs `main` when this module is the program node started (not when a test imports it); errors exit 1.
export function runIfMain(moduleUrl: string, main: () => Promise<void>): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  });
}

// "NVIDIA H100 80GB HBM3" → "NVIDIA-H100-80GB-HBM3": a device name as a file name part.
export function cardSlug(device: string): string {
  return device.replace(/[^A-Za-z0-9.]+/g, '-').replace(/^-|-$/g, '');
}

// bench/results/<date>-<card>-<name>.<ext>, the date of `now` (UTC).
export function resultFile(dir: string, device: string, name: string, ext: string, now: Date = new Date()): string {
  return path.join(dir, `${now.toISOString().slice(0, 10)}-${cardSlug(device)}-${name}.${ext}`);
}

// A bench that prints one table and writes it with its JSON (bench/space-time.ts, bench/fleet-table.ts): --help
// or -h prints `usage`; otherwise the flags are parsed, what runs is logged, the table printed, both files written
// and where logged. Returns the result (null after --help) for the program's exit status.
export async function tableBenchMain<O extends { readonly log?: (msg: string) => void }, R extends { readonly table: string }>(
  argv: readonly string[],
  bench: {
    readonly usage: string;
    readonly parse: (argv: readonly string[]) => { opts: O; out: string };
    readonly describe: (opts: O) => string;
    readonly run: (opts: O) => Promise<R>;
    readonly write: (result: R, outDir: string) => { json: string; txt: string };
  },
): Promise<R | null> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(bench.usage);
    return null;
  }
  const { opts, out } = bench.parse(argv);
  const t0 = Date.now();
  opts.log?.(bench.describe(opts));
  const result = await bench.run(opts);
  process.stdout.write(`${result.table}\n`);
  const files = bench.write(result, out);
  opts.log?.(`wrote ${files.json} and ${files.txt} (${((Date.now() - t0) / 1e3).toFixed(0)} s)`);
  return result;
}

// The flags bench/space-time.ts and bench/fleet-table.ts share (for parseArgs); one --work default, so both
// reuse the same fleet directories.
export const FLEET_BENCH_FLAGS = {
  work: { type: 'string', default: path.join(os.tmpdir(), 'loom-fleet-table') },
  backend: { type: 'string', default: 'cuda' },
  'tenants-scale': { type: 'string', default: '1' },
  fresh: { type: 'boolean', default: false },
  out: { type: 'string', default: path.join(import.meta.dirname, 'results') },
} as const;

// --backend of a bench that names its backend: cpu or cuda.
export function backendFlag(v: string): 'cpu' | 'cuda' {
  if (v !== 'cpu' && v !== 'cuda') fail('USAGE', `--backend must be cpu or cuda, got '${v}'`);
  return v;
}

// An integer flag of at least `min`.
export function intFlag(name: string, v: string, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) fail('USAGE', `--${name} must be an integer ≥ ${min}, got '${v}'`);
  return n;
}

// A comma-separated flag's items, trimmed, the empty ones dropped.
export function listFlag(v: string): string[] {
  return v
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0);
}

// <out>/<date>-<card>-<name>.json (the whole result) and .txt (its table), dated by the result's date.
export function writeTableResult(
  result: { readonly date: string; readonly table: string },
  outDir: string,
  card: string,
  name: string,
): { json: string; txt: string } {
  mkdirSync(outDir, { recursive: true });
  const json = resultFile(outDir, card, name, 'json', new Date(result.date));
  const txt = resultFile(outDir, card, name, 'txt', new Date(result.date));
  writeFileSync(json, `${JSON.stringify(result, null, 1)}\n`);
  writeFileSync(txt, `${result.table}\n`);
  return { json, txt };
}

// What every load bench's JSON starts with (bench/serve-load.ts, bench/tenant-scale.ts, bench/serve-intake.ts).
export function runHeader(benchmark: string, device: string): { benchmark: string; date: string; device: string; cores: number; node: string } {
  return { benchmark, date: new Date().toISOString(), device, cores: os.cpus().length, node: process.version };
}

// Writes `json` to <out>/<date>-<card>-<name>.json, says so on stdout and copies it into $OUT when that is set
// (the GPU machine's folder that comes back); returns the file.
export function writeResultJson(outDir: string, device: string, name: string, json: unknown): string {
  const text = `${JSON.stringify(json, null, 2)}\n`;
  mkdirSync(outDir, { recursive: true });
  const file = resultFile(outDir, device, name, 'json');
  writeFileSync(file, text);
  process.stdout.write(`wrote ${path.relative(ROOT, file)}\n`);
  if (process.env.OUT) {
    mkdirSync(process.env.OUT, { recursive: true });
    writeFileSync(path.join(process.env.OUT, path.basename(file)), text);
  }
  return file;
}

// The lower median: a sample that was measured, not an average of two (nearest-rank p50, as tickStats).
export function median(xs: readonly number[]): number {
  return percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );
}

// The sample at rank round(q · (n − 1)) of the sorted samples (q in [0, 1]).
export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))))]!;
}

export function geomean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);
}

// Header, a rule and the rows, each column as wide as its widest cell; the first `leftColumns` columns are
// left-aligned (names), the rest right-aligned (numbers).
export function alignTable(head: readonly string[], body: ReadonlyArray<readonly string[]>, leftColumns: number): string[] {
  const w = head.map((h, i) => Math.max(h.length, ...body.map((c) => (c[i] ?? '').length)));
  const line = (c: readonly string[]) =>
    c
      .map((s, i) => (i < leftColumns ? s.padEnd(w[i]!) : s.padStart(w[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), w.map((x) => '-'.repeat(x)).join('  '), ...body.map(line)];
}

// Table cells: '-' where a number is missing.
export const usCell = (x: number | null | undefined): string => (x === null || x === undefined ? '-' : fmtUs(x));
export const ratioCell = (x: number | null): string => (x === null ? '-' : `${x.toFixed(2)}x`);
export const yesNoCell = (x: boolean | null): string => (x === null ? '-' : x ? 'y' : 'n');

// `count` zoo MLPs of the given layer widths at maxBatch `maxBatch` (default 1; seeds 5000 + i) and their manifest
// under `dir`; returns the manifest's path.
export function writeMlpFleet(dir: string, sizes: readonly number[], count = 64, maxBatch = 1): string {
  mkdirSync(path.join(dir, 'models'), { recursive: true });
  const tenants = Array.from({ length: count }, (_, i) => {
    const model = `models/mlp-${i}.onnx`;
    writeZooModel('mlp', { seed: 5000 + i, sizes }, path.join(dir, model));
    return { id: `mlp-${i}`, model, maxBatch };
  });
  const manifest = path.join(dir, 'fleet.json');
  writeFileSync(manifest, JSON.stringify({ tenants, precision: 'fp32' }));
  return manifest;
}
