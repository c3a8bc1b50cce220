// What a tick costs at 1 row vs maxBatch rows per tenant (issue 12, item 3: rows per tenant reach the backend).
// A compute-bound fleet — `--tenants` wide MLPs (`--sizes`, default 1024-4096-4096-1024) at maxBatch `--max-batch`
// (default 64) — runs ticks where every tenant carries r rows, r = 1, 2, 4, ... maxBatch; the GEMMs run at the
// tick's row bucket (the most rows of a tenant rounded up to a power of two), so the device work shrinks with r.
// Per r: runTick wall time and the executor's native tick (handleInfo lastTickUs), medians and p90, and the
// bucket the backend ran (lastRowsBucket; on CUDA lastRowsBucketCuda, 0 = every row).
// Writes bench/results/<date>-<cpu or card>-tick-rows.json (and a copy under $OUT when set), prints a table.
//   usage: tsx bench/tick-rows.ts [--backend auto|cpu|cuda] [--iters N] [--tenants N] [--max-batch N] [--sizes a-b-c] [--threads N]
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Tensor } from '../ir/tensor.js';
import { loadPlan, nativeAddonInfo } from '../runtime/index.js';
import { compileFleet } from '../src/fleet/compile.js';
import { exampleInputs } from '../src/fleet/inputs.js';
import { alignTable, quantile, resultFile, runIfMain, writeMlpFleet } from './common.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const BACKEND = (arg('--backend') ?? 'auto') as 'auto' | 'cpu' | 'cuda';
const TENANTS = Number(arg('--tenants') ?? 16);
const MAX_BATCH = Number(arg('--max-batch') ?? 64);
const SIZES = (arg('--sizes') ?? '1024-4096-4096-1024').split('-').map(Number);
const THREADS = arg('--threads') !== undefined ? Number(arg('--threads')) : undefined;

interface RowsResult {
  rows: number;
  bucket: number; // lastRowsBucket: the rows the GEMMs ran at
  cudaBucket: number | null; // lastRowsBucketCuda (0: every row), on CUDA
  runTickUs: { median: number; p90: number };
  nativeUs: { median: number; p90: number };
}

async function main(): Promise<void> {
  const addon = nativeAddonInfo();
  const gpu = BACKEND !== 'cpu' && Boolean(addon.cudaDevices) && addon.backends.includes('cuda');
  const iters = Number(arg('--iters') ?? (gpu ? 500 : 5));
  const work = mkdtempSync(path.join(os.tmpdir(), 'loom-tick-rows-'));
  const results: RowsResult[] = [];
  let backend = '';
  try {
    await compileFleet(writeMlpFleet(work, SIZES, TENANTS, MAX_BATCH), path.join(work, 'plan'), { nvcc: gpu ? 'auto' : 'off' });
    const loaded = await loadPlan(path.join(work, 'plan'), { backend: BACKEND, ...(THREADS !== undefined ? { threads: THREADS } : {}) });
    backend = loaded.backend;
    try {
      for (let rows = 1; rows <= MAX_BATCH; rows = rows * 2 > MAX_BATCH && rows < MAX_BATCH ? MAX_BATCH : rows * 2) {
        const inputs: Record<string, Record<string, Tensor>> = {};
        loaded.plan.tenants.forEach((t, i) => {
          inputs[t.id] = exampleInputs(t, rows, 1000 + i);
        });
        // warm-up: a bucket's first tick runs eagerly and its second is captured (CUDA)
        for (let i = 0; i < Math.min(20, Math.max(3, iters / 10)); i++) await loaded.runTick(inputs);
        const wall: number[] = [];
        const native: number[] = [];
        for (let i = 0; i < iters; i++) {
          const t0 = process.hrtime.bigint();
          await loaded.runTick(inputs);
          wall.push(Number(process.hrtime.bigint() - t0) / 1e3);
          native.push(Number(loaded.backendInfo().lastTickUs));
        }
        const info = loaded.backendInfo();
        results.push({
          rows,
          bucket: Number(info.lastRowsBucket),
          cudaBucket: info.lastRowsBucketCuda === undefined ? null : Number(info.lastRowsBucketCuda),
          runTickUs: { median: quantile(wall, 0.5), p90: quantile(wall, 0.9) },
          nativeUs: { median: quantile(native, 0.5), p90: quantile(native, 0.9) },
        });
      }
    } finally {
      loaded.close();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const date = new Date().toISOString().slice(0, 10);
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  const card = backend === 'cuda' ? String(addon.gpu?.name ?? 'unknown GPU') : null;
  const fleet = `${TENANTS} x MLP ${SIZES.join('-')} at maxBatch ${MAX_BATCH}`;
  const report = {
    date,
    cpu,
    cores: os.cpus().length,
    card,
    backend,
    node: process.version,
    fleet,
    iters,
    command: `tsx bench/tick-rows.ts ${args.join(' ')}`.trim(),
    results,
  };
  const outDir = path.join(ROOT, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const file = resultFile(outDir, card ?? `${os.cpus().length}cpu`, 'tick-rows', 'json');
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  if (process.env.OUT) copyFileSync(file, path.join(process.env.OUT, path.basename(file)));
  const full = results[results.length - 1]!;
  process.stdout.write(`\nLoom tick by rows per tenant — ${fleet}, ${backend} on ${card ?? cpu}, ${date}, ${iters} ticks per row count\n\n`);
  const head = ['rows', 'bucket', 'runTick µs', 'p90', 'native µs', 'p90', 'vs maxBatch'];
  const body = results.map((r) => [
    String(r.rows),
    r.cudaBucket === null ? String(r.bucket) : `${r.bucket} (cuda ${r.cudaBucket === 0 ? 'full' : r.cudaBucket})`,
    r.runTickUs.median.toFixed(1),
    r.runTickUs.p90.toFixed(1),
    r.nativeUs.median.toFixed(1),
    r.nativeUs.p90.toFixed(1),
    `${(r.nativeUs.median / full.nativeUs.median).toFixed(2)}x`,
  ]);
  process.stdout.write(`${alignTable(head, body, 1).join('\n')}\n\nwrote ${path.relative(ROOT, file)}\n`);
}

runIfMain(import.meta.url, main);
