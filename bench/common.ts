// What the benchmark programs under bench/ share: running as a program, result file names, small statistics
// and the column layout of their tables.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeZooModel } from '../models/index.js';
import { percentile } from '../src/measure/stats.js';

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
