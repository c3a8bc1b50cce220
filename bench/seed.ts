// The seed table of issue 5, reproduced through Loom: fleets of R tenants, each one linear layer whose one
// GEMM has the seed study's shape, run in Loom's three modes (time-only, space-only, space-time) by the
// bench library, next to torch.bmm under a CUDA graph (bench/peers/seed_torch.py, run first in the same call).
//
// A tenant is MatMul(x[rows, K], W[K, M]) with its own seeded W: Loom lowers it to one GEMM m=rows n=M k=K,
// the seed's (M, N, K) problem transposed (same FLOPs, same weight bytes):
//   matvec   M=512 N=1   K=512   (RNN matrix-vector: 1 row)
//   conv2_2  M=256 N=128 K=1152  (ResNet-18 conv2_2 as GEMM: weights [256,1152] × columns [1152,128])
//   square   M=N=K=256
//
//   usage: tsx bench/seed.ts [--backend cpu|cuda] [--r 2,5,10] [--shapes matvec,conv2_2,square]
//          [--precision fp32,bf16] [--ticks N] [--warmup N] [--torch peer.json] [--out file.json] [--gemm-only]
//   --gemm-only: no bench modes; the device µs of the GEMM launches alone (eager, events per launch) of the
//   space-time plan and of the time-only plan, i.e. without the tick's host↔device input/output copies
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fromNumbers } from '../ir/tensor.js';
import { loadPlan } from '../runtime/index.js';
import { type BenchResult, benchFleet } from '../src/measure/index.js';
import { writePlanDir } from '../codegen/index.js';
import { writeManifestCopy } from '../src/fleet/manifest-copy.js';
import { type Manifest, manifestFromFiles } from '../src/fleet/manifest.js';
import { loadTenants } from '../src/fleet/tenants.js';
import { planFleet } from '../src/planner/index.js';
import type { Plan } from '../ir/contract/plan.js';
import { encodeModel } from '../src/onnx/write.js';
import type { Launch } from '../ir/contract/launch.js';
import { alignTable, geomean, median, resultFile, runIfMain } from './common.js';

export { geomean };

export const SEED_SHAPES = {
  matvec: { M: 512, N: 1, K: 512, seedSpeedup: '2.48x over time-only' },
  conv2_2: { M: 256, N: 128, K: 1152, seedSpeedup: '3.23x over space-only' },
  square: { M: 256, N: 256, K: 256, seedSpeedup: '4.63x over space-only' },
} as const;
export type SeedShape = keyof typeof SEED_SHAPES;
export const SEED_R = [2, 5, 10, 20, 40, 60, 80, 120] as const;
export type SeedPrecision = 'fp32' | 'bf16';

// One tenant: y[rows, M] = x[rows, K] · W[K, M], W uniform in [-1/√K, 1/√K) from a per-tenant seed.
export function seedModel(shape: SeedShape, seed: number): Uint8Array {
  const { M, K } = SEED_SHAPES[shape];
  const w = new Float64Array(K * M);
  let s = (seed * 2654435761 + 12345) >>> 0;
  const scale = 2 / Math.sqrt(K);
  for (let i = 0; i < w.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    w[i] = (s / 4294967296 - 0.5) * scale;
  }
  return encodeModel({
    name: `seed-${shape}-${seed}`,
    inputs: [{ name: 'x', dtype: 'f32', shape: ['N', K] }],
    outputs: [{ name: 'y', dtype: 'f32', shape: ['N', M] }],
    nodes: [{ op: 'MatMul', inputs: ['x', 'W'], outputs: ['y'], name: 'linear' }],
    initializers: { W: fromNumbers('f32', [K, M], w) },
  });
}

export interface SeedRow {
  readonly shape: SeedShape;
  readonly M: number;
  readonly N: number;
  readonly K: number;
  readonly R: number;
  readonly precision: SeedPrecision;
  readonly planGemms: ReadonlyArray<{ readonly kind: string; readonly m: number; readonly n: number; readonly k: number; readonly batch: number }>;
  readonly launches: { readonly timeOnly: number; readonly spaceOnly: number; readonly spaceTime: number };
  // device p50 = CUDA events around a replay of the captured tick (space-only: every tenant's plan's graph
  // launched together, each on its own stream; null: not measured, e.g. the CPU backend); wall p50 = host
  // clock around one runTick (inputs in → outputs out)
  readonly deviceUs: { readonly timeOnly: number | null; readonly spaceOnly: number | null; readonly spaceTime: number | null };
  readonly wallUs: { readonly timeOnly: number; readonly spaceOnly: number; readonly spaceTime: number };
  readonly torchBmmGraphUs: number | null;
  readonly speedupVsTimeOnly: number; // device p50 where both measured, else wall p50
  readonly speedupVsSpaceOnly: number; // device p50 where both measured, else wall p50
  readonly torchOverLoom: number | null; // torch.bmm+graph µs / Loom space-time device µs (≥ 0.95 = within 5%)
  readonly weightBytes: number;
  readonly weightGBps: number | null; // weight bytes / space-time device p50
  readonly maxRelErrorVsSpaceTime: number;
}

export interface SeedOptions {
  readonly backend: 'cpu' | 'cuda';
  readonly shapes: readonly SeedShape[];
  readonly rs: readonly number[];
  readonly precisions: readonly SeedPrecision[];
  readonly ticks: number;
  readonly warmup: number;
  readonly torch?: TorchPeer | null;
  readonly onRow?: (row: SeedRow, bench: BenchResult) => void;
  readonly onError?: (msg: string) => void;
  readonly stopOnError?: boolean;
}

export interface SeedError {
  readonly shape: SeedShape;
  readonly R: number;
  readonly precision: SeedPrecision;
  readonly message: string;
}

export interface TorchPeer {
  readonly device: string;
  readonly copyBandwidthGBps: number; // device-to-device cudaMemcpy: 2 × bytes / time (read + write)
  readonly rows: ReadonlyArray<{ shape: string; R: number; precision: string; us: number }>;
}

export async function runSeed(opts: SeedOptions): Promise<{ rows: SeedRow[]; errors: SeedError[]; device: string }> {
  const rows: SeedRow[] = [];
  const errors: SeedError[] = [];
  let device = '';
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'loom-seed-'));
  try {
    for (const precision of opts.precisions) {
      for (const shape of opts.shapes) {
        for (const R of opts.rs) {
          const dir = path.join(scratch, `${shape}-${precision}-${R}`);
          try {
            mkdirSync(path.join(dir, 'models'), { recursive: true });
            const files: string[] = [];
            for (let i = 0; i < R; i++) {
              const f = path.join(dir, 'models', `t${String(i).padStart(3, '0')}.onnx`);
              writeFileSync(f, seedModel(shape, 1000 * R + i));
              files.push(f);
            }
            const { M, N, K } = SEED_SHAPES[shape];
            const manifest = manifestFromFiles(files, { maxBatch: N, precision });
            const planDir = path.join(dir, 'plan');
            const plan = await compileSeedFleet(manifest, planDir);
            const planGemms = plan.launches.flatMap((l) => gemmDims(l));
            const b = await benchFleet(planDir, { backend: opts.backend, ticks: opts.ticks, warmup: opts.warmup });
            device = b.device;
            const mode = (m: string) => b.modes.find((x) => x.mode === m)!;
            const to = mode('time-only');
            const so = mode('space-only');
            const st = mode('space-time');
            const dTo = to.deviceTickUs?.p50 ?? null;
            const dSt = st.deviceTickUs?.p50 ?? null;
            const dSo = so.deviceTickUs?.p50 ?? null;
            const torch = opts.torch?.rows.find((r) => r.shape === shape && r.R === R && r.precision === precision)?.us ?? null;
            const weightBytes = R * K * M * (precision === 'bf16' ? 2 : 4);
            const row: SeedRow = {
              shape,
              M,
              N,
              K,
              R,
              precision,
              planGemms,
              launches: { timeOnly: to.launchesPerTick, spaceOnly: so.launchesPerTick, spaceTime: st.launchesPerTick },
              deviceUs: { timeOnly: dTo, spaceOnly: dSo, spaceTime: dSt },
              wallUs: { timeOnly: to.tickUs.p50, spaceOnly: so.tickUs.p50, spaceTime: st.tickUs.p50 },
              torchBmmGraphUs: torch,
              speedupVsTimeOnly: dTo !== null && dSt !== null ? dTo / dSt : to.tickUs.p50 / st.tickUs.p50,
              speedupVsSpaceOnly: dSo !== null && dSt !== null ? dSo / dSt : so.tickUs.p50 / st.tickUs.p50,
              torchOverLoom: torch !== null && dSt !== null ? torch / dSt : null,
              weightBytes,
              weightGBps: dSt !== null ? weightBytes / dSt / 1e3 : null,
              maxRelErrorVsSpaceTime: Math.max(...b.modes.map((m) => m.maxRelErrorVsSpaceTime)),
            };
            rows.push(row);
            opts.onRow?.(row, b);
          } catch (e) {
            // one failing fleet (e.g. a precision the backend cannot run) must not lose the others' rows
            if (opts.stopOnError) throw e;
            const message = (e as Error).message;
            errors.push({ shape, R, precision, message });
            opts.onError?.(`${precision} ${shape} R=${R}: ${message}`);
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        }
      }
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return { rows, errors, device };
}

// compileFleet's steps without its typed client: rendering that with ts-morph takes ~15 s for 120 tenants,
// which would dominate the device call; the plan directory (plan.json, weights, manifest copy) is the same.
async function compileSeedFleet(manifest: Manifest, dir: string): Promise<Plan> {
  const plan = planFleet(loadTenants(manifest), { precision: manifest.precision });
  await writePlanDir(plan, dir, { nvcc: 'off' });
  writeManifestCopy(manifest, dir);
  return plan;
}

function gemmDims(l: Launch): SeedRow['planGemms'] {
  switch (l.kind) {
    case 'gemm':
      return [{ kind: 'gemm', m: l.problem.m, n: l.problem.n, k: l.problem.k, batch: l.entries.length }];
    case 'gemm_grouped':
      return l.groups.map((g) => ({ kind: 'gemm_grouped', m: g.problem.m, n: g.problem.n, k: g.problem.k, batch: g.entries.length }));
    default:
      return [{ kind: l.kind, m: 0, n: 0, k: 0, batch: 0 }];
  }
}

// GEMM-only device time: eager ticks with a CUDA event around every launch (LoadedPlan.profileTick), the
// GEMM launches' µs summed per tick, median over `reps` ticks. Excludes the tick's host↔device copies of
// inputs and outputs, so it compares with torch.bmm on device-resident tensors.
export interface GemmOnlyRow {
  readonly shape: SeedShape;
  readonly R: number;
  readonly precision: SeedPrecision;
  readonly spaceTimeGemmUs: number; // the plan's batched GEMM launch(es)
  readonly timeOnlyGemmUs: number; // the R per-tenant GEMM launches of the grouping-'none' plan, summed
  readonly otherLaunchUs: number; // space-time's non-GEMM launches (bf16: the input cast)
  readonly torchBmmGraphUs: number | null;
  readonly torchOverLoom: number | null;
  readonly weightGBps: number;
}

export async function runGemmOnly(
  opts: Omit<SeedOptions, 'ticks' | 'warmup' | 'onRow'> & { reps?: number; onGemmRow?: (r: GemmOnlyRow) => void },
): Promise<GemmOnlyRow[]> {
  const out: GemmOnlyRow[] = [];
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'loom-seed-gemm-'));
  const reps = opts.reps ?? 9;
  try {
    for (const precision of opts.precisions) {
      for (const shape of opts.shapes) {
        for (const R of opts.rs) {
          const dir = path.join(scratch, `${shape}-${precision}-${R}`);
          mkdirSync(dir, { recursive: true });
          const files: string[] = [];
          for (let i = 0; i < R; i++) {
            const f = path.join(dir, `t${String(i).padStart(3, '0')}.onnx`);
            writeFileSync(f, seedModel(shape, 1000 * R + i));
            files.push(f);
          }
          const { M, N, K } = SEED_SHAPES[shape];
          const tenants = loadTenants(manifestFromFiles(files, { maxBatch: N, precision }));
          const prof = async (grouping: 'none' | undefined, sub: string) => {
            const plan = planFleet(tenants, { precision, ...(grouping ? { grouping } : {}) });
            await writePlanDir(plan, path.join(dir, sub), { nvcc: 'off' });
            const isGemm = new Set(plan.launches.filter((l) => l.kind === 'gemm' || l.kind === 'gemm_grouped').map((l) => l.id));
            const loaded = await loadPlan(path.join(dir, sub), { backend: opts.backend });
            try {
              const g: number[] = [];
              const o: number[] = [];
              loaded.profileTick();
              for (let i = 0; i < reps; i++) {
                const p = loaded.profileTick();
                g.push(p.filter((x) => isGemm.has(x.id)).reduce((a, x) => a + x.us, 0));
                o.push(p.filter((x) => !isGemm.has(x.id)).reduce((a, x) => a + x.us, 0));
              }
              return { gemm: median(g), other: median(o) };
            } finally {
              loaded.close();
            }
          };
          const st = await prof(undefined, 'st');
          const to = await prof('none', 'to');
          const torch = opts.torch?.rows.find((r) => r.shape === shape && r.R === R && r.precision === precision)?.us ?? null;
          const row: GemmOnlyRow = {
            shape,
            R,
            precision,
            spaceTimeGemmUs: st.gemm,
            timeOnlyGemmUs: to.gemm,
            otherLaunchUs: st.other,
            torchBmmGraphUs: torch,
            torchOverLoom: torch !== null ? torch / st.gemm : null,
            weightGBps: (R * K * M * (precision === 'bf16' ? 2 : 4)) / st.gemm / 1e3,
          };
          out.push(row);
          opts.onGemmRow?.(row);
          rmSync(dir, { recursive: true, force: true });
        }
      }
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return out;
}

const us = (x: number | null) => (x === null ? '-' : x.toFixed(1));

export function formatSeed(rows: readonly SeedRow[], copyGBps: number | null): string {
  const head = [
    'prec',
    'shape',
    'R',
    'launches TO/SO/ST',
    'time-only dev µs',
    'space-only dev µs',
    'space-only wall µs',
    'space-time dev µs',
    'ST wall µs',
    'torch.bmm+graph µs',
    'ST vs TO',
    'ST vs SO',
    'torch/ST',
    'weights GB/s',
  ];
  const body = rows.map((r) => [
    r.precision,
    r.shape,
    String(r.R),
    `${r.launches.timeOnly}/${r.launches.spaceOnly}/${r.launches.spaceTime}`,
    us(r.deviceUs.timeOnly),
    us(r.deviceUs.spaceOnly),
    us(r.wallUs.spaceOnly),
    us(r.deviceUs.spaceTime),
    us(r.wallUs.spaceTime),
    us(r.torchBmmGraphUs),
    `${r.speedupVsTimeOnly.toFixed(2)}x`,
    `${r.speedupVsSpaceOnly.toFixed(2)}x`,
    r.torchOverLoom === null ? '-' : r.torchOverLoom.toFixed(2),
    r.weightGBps === null ? '-' : `${r.weightGBps.toFixed(0)}${copyGBps ? ` (${((100 * r.weightGBps) / copyGBps).toFixed(0)}%)` : ''}`,
  ]);
  const out = [...alignTable(head, body, 2), ''];
  for (const g of summarize(rows)) {
    out.push(
      `geomean ${g.precision} ${g.shape.padEnd(8)} ST vs TO ${g.vsTimeOnly.toFixed(2)}x  ST vs SO ${g.vsSpaceOnly.toFixed(2)}x  torch/ST ${Number.isNaN(g.torchOverLoom) ? '-' : g.torchOverLoom.toFixed(2)}`,
    );
  }
  return out.join('\n');
}

export function summarize(
  rows: readonly SeedRow[],
): Array<{ precision: string; shape: string; vsTimeOnly: number; vsSpaceOnly: number; torchOverLoom: number }> {
  const keys = [...new Set(rows.map((r) => `${r.precision}|${r.shape}`))];
  return keys.map((k) => {
    const rs = rows.filter((r) => `${r.precision}|${r.shape}` === k);
    const t = rs.map((r) => r.torchOverLoom).filter((x): x is number => x !== null);
    return {
      precision: rs[0]!.precision,
      shape: rs[0]!.shape,
      vsTimeOnly: geomean(rs.map((r) => r.speedupVsTimeOnly)),
      vsSpaceOnly: geomean(rs.map((r) => r.speedupVsSpaceOnly)),
      torchOverLoom: t.length === rs.length ? geomean(t) : NaN,
    };
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const backend = (arg('--backend') ?? 'cuda') as 'cpu' | 'cuda';
  const shapes = (arg('--shapes')?.split(',') ?? Object.keys(SEED_SHAPES)) as SeedShape[];
  for (const s of shapes) if (!(s in SEED_SHAPES)) throw new Error(`unknown shape '${s}'`);
  const rs = arg('--r')?.split(',').map(Number) ?? [...SEED_R];
  const precisions = (arg('--precision')?.split(',') ?? ['fp32']) as SeedPrecision[];
  const torchFile = arg('--torch');
  const torch = torchFile ? (JSON.parse(readFileSync(torchFile, 'utf8')) as TorchPeer) : null;
  const t0 = Date.now();
  if (args.includes('--gemm-only')) {
    const g = await runGemmOnly({
      backend,
      shapes,
      rs,
      precisions,
      torch,
      onGemmRow: (r) =>
        process.stdout.write(
          `${r.precision} ${r.shape.padEnd(8)} R=${String(r.R).padStart(3)}  ST gemm ${r.spaceTimeGemmUs.toFixed(1)} µs  TO gemms ${r.timeOnlyGemmUs.toFixed(1)} µs (${(r.timeOnlyGemmUs / r.spaceTimeGemmUs).toFixed(2)}x)  other ${r.otherLaunchUs.toFixed(1)}  torch ${r.torchBmmGraphUs?.toFixed(1) ?? '-'} (torch/ST ${r.torchOverLoom?.toFixed(2) ?? '-'})  ${r.weightGBps.toFixed(0)} GB/s  (${((Date.now() - t0) / 1e3).toFixed(0)} s)\n`,
        ),
    });
    const out = arg('--out') ?? path.join(import.meta.dirname, 'results', 'seed-gemm-only.json');
    writeFileSync(out, `${JSON.stringify({ format: 'loom-seed-gemm-only', version: 1, date: new Date().toISOString(), backend, torch, rows: g }, null, 1)}\n`);
    return;
  }
  const { rows, errors, device } = await runSeed({
    backend,
    shapes,
    rs,
    precisions,
    ticks: Number(arg('--ticks') ?? 100),
    warmup: Number(arg('--warmup') ?? 10),
    torch,
    onError: (m) => process.stderr.write(`seed: FAILED ${m}\n`),
    onRow: (r) =>
      process.stderr.write(
        `seed: ${r.precision} ${r.shape} R=${r.R} gemms=${JSON.stringify(r.planGemms)} TO ${us(r.deviceUs.timeOnly)} SO ${us(r.deviceUs.spaceOnly ?? r.wallUs.spaceOnly)} ST ${us(r.deviceUs.spaceTime)} (${((Date.now() - t0) / 1e3).toFixed(0)} s)\n`,
      ),
  });
  const copy = torch?.copyBandwidthGBps ?? null;
  process.stdout.write(`loom seed table — ${backend} on ${device}${copy ? `; copy bandwidth ${copy.toFixed(0)} GB/s (torch D2D memcpy)` : ''}\n`);
  process.stdout.write(`${formatSeed(rows, copy)}\n`);
  const out = arg('--out') ?? resultFile(path.join(import.meta.dirname, 'results'), device, 'seed', 'json');
  const json = {
    format: 'loom-seed',
    version: 1,
    date: new Date().toISOString(),
    backend,
    device,
    copyBandwidthGBps: copy,
    torch,
    rows,
    errors,
    geomeans: summarize(rows),
  };
  writeFileSync(out, `${JSON.stringify(json, null, 1)}\n`);
  process.stderr.write(`seed: wrote ${out}\n`);
}

runIfMain(import.meta.url, main);
