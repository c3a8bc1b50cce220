// Issues 5, 15 and 18's compile-time table: `loom compile` of each fleet on this machine, wall seconds and
// peak memory (targets: 120 tenants <= 10 s; 1,000 zoo MLPs <= 30 s; 10,000 small MLPs <= 60 s; a recompile
// after one tenant changed <= 20% of the cold compile). Each compile runs the real CLI in a child process, so
// module loading, the weights file and the typed client are all counted; the child's --timings file gives the
// phase breakdown, its peak RSS (process.resourceUsage().maxRSS: the compile process alone, not an nvcc child)
// and the tenant cache's hits.
//
//   usage: node --import tsx bench/compile-time.ts [--fleets mlp-b1,mlp-b16,lstm,resnet18,mixed,mlp-1k,small-10k]
//          [--modes cold,cache,warm] [--tenants 120] [--chains eltwise:20000,eltwise:100000,matmul:20000|none]
//          [--work DIR] [--nvcc auto|off] [--out file.json]
//
// Modes, run in this order per fleet: `cold` compiles with --no-cache; `cache` compiles into an empty tenant
// cache (a cold compile that also writes every entry); `warm` then rewrites the first tenant's model file (the
// fleet's own first.onnx) with another seed of the same kind (new weights) and compiles with that cache: one
// tenant compiled, the rest read back. As in README "Changing the fleet", the `cache` compile's plan directory
// stays (the plan being served) and the `warm` compile writes a new one beside it, so it may keep the earlier
// weights.bin's bytes.
// Before each compile the bench runs `sync`, so no compile pays for the previous one's writes.
// Every row also has the fleet's read+write floor: reading its distinct model files once and writing
// weights.bin's bytes (256 KiB writes, no fsync, as the compile writes it), timed here in the bench process.
// mlp-1k and small-10k have fixed sizes (--tenants does not change them); small-10k reuses 16 model files.
//
// --chains adds one-tenant rows of a single long chain (issue 14: compile time must grow near-linearly with
// graph size): `eltwise` alternates Add and Relu (all fused into one kernel), `matmul` is MatMuls by one 16x16
// weight (one GEMM step each). The row is named chain-<kind>-<nodes>.
//
// The fleets' ONNX files and manifests are written once under --work (untimed) and reused when present.
// --nvcc auto (default) includes the cubin build: its own row says how long nvcc took; the kernel cache is a
// fresh folder per compile, so the cubin really is built (no cache hit from an earlier run).
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type ZooKind, generateModel } from '../models/index.js';
import { type Tensor, fromNumbers } from '../ir/tensor.js';
import { type ModelSpec, encodeModel } from '../src/onnx/write.js';

const ROOT = path.resolve(import.meta.dirname, '..');

interface KindSpec {
  readonly tag: string; // folder of this kind's models under <work>/models
  readonly kind: ZooKind;
  readonly options: Readonly<Record<string, unknown>>;
}

interface FleetSpec {
  readonly name: string;
  readonly maxBatch: number;
  readonly mix: readonly { readonly spec: KindSpec; readonly parts: number }[]; // tenants split by parts
  readonly tenants?: number; // a fixed size (the scale points); else --tenants
  readonly files?: number; // distinct model files per kind, reused round-robin; default one per tenant
}

const MLP: KindSpec = { tag: 'mlp-784-512-512-10', kind: 'mlp', options: {} };
const LSTM: KindSpec = { tag: 'lstm-h1024-i1024-s1', kind: 'lstm', options: { hidden: 1024, inputSize: 1024, seqLen: 1 } };
const RESNET: KindSpec = { tag: 'resnet18-224', kind: 'resnet18', options: { resolution: 224 } };
const ENCODER: KindSpec = { tag: 'encoder-seq64', kind: 'encoder', options: { seq: 64 } };
const SMALL_MLP: KindSpec = { tag: 'mlp-256-256-256-256', kind: 'mlp', options: { sizes: [256, 256, 256, 256] } };

export const FLEETS: readonly FleetSpec[] = [
  { name: 'mlp-b1', maxBatch: 1, mix: [{ spec: MLP, parts: 1 }] },
  { name: 'mlp-b16', maxBatch: 16, mix: [{ spec: MLP, parts: 1 }] },
  { name: 'lstm', maxBatch: 1, mix: [{ spec: LSTM, parts: 1 }] },
  { name: 'resnet18', maxBatch: 1, mix: [{ spec: RESNET, parts: 1 }] },
  {
    name: 'mixed',
    maxBatch: 1,
    mix: [
      { spec: ENCODER, parts: 1 },
      { spec: RESNET, parts: 1 },
      { spec: MLP, parts: 2 },
    ],
  },
  { name: 'mlp-1k', maxBatch: 1, tenants: 1000, mix: [{ spec: MLP, parts: 1 }] },
  { name: 'small-10k', maxBatch: 1, tenants: 10000, files: 16, mix: [{ spec: SMALL_MLP, parts: 1 }] },
];

export const MODES = ['cold', 'cache', 'warm'] as const;
export type Mode = (typeof MODES)[number];

export const CHAIN_KINDS = ['eltwise', 'matmul'] as const;
export type ChainKind = (typeof CHAIN_KINDS)[number];
export const DEFAULT_CHAINS = 'eltwise:20000,eltwise:100000,matmul:20000';

// One model, x [N,16] → `nodes` nodes in a line → y [N,16].
export function chainModelSpec(kind: ChainKind, nodes: number): ModelSpec {
  const list: { op: string; name: string; inputs: string[]; outputs: string[] }[] = [];
  let prev = 'x';
  for (let i = 0; i < nodes; i++) {
    const out = i === nodes - 1 ? 'y' : `v${i}`;
    const name = `n${i}`;
    if (kind === 'matmul') list.push({ op: 'MatMul', name, inputs: [prev, 'w'], outputs: [out] });
    else list.push(i % 2 === 0 ? { op: 'Add', name, inputs: [prev, 'b'], outputs: [out] } : { op: 'Relu', name, inputs: [prev], outputs: [out] });
    prev = out;
  }
  const initializers: Record<string, Tensor> =
    kind === 'matmul'
      ? {
          w: fromNumbers(
            'f32',
            [16, 16],
            Array.from({ length: 256 }, (_, i) => ((i % 17) - 8) / 64),
          ),
        }
      : {
          b: fromNumbers(
            'f32',
            [16],
            Array.from({ length: 16 }, (_, i) => (i - 8) / 16),
          ),
        };
  return { inputs: [{ name: 'x', dtype: 'f32', shape: ['N', 16] }], outputs: [{ name: 'y', dtype: 'f32', shape: ['N', 16] }], nodes: list, initializers };
}

// Writes the chain's model and manifest (reused when present) and returns the manifest's path.
export function prepareChain(work: string, kind: ChainKind, nodes: number): string {
  const dir = path.join(work, `chain-${kind}-${nodes}`);
  mkdirSync(dir, { recursive: true });
  const model = path.join(dir, 'chain.onnx');
  if (!existsSync(model)) {
    writeFileSync(`${model}.tmp`, encodeModel(chainModelSpec(kind, nodes)));
    renameSync(`${model}.tmp`, model);
  }
  const manifest = path.join(dir, 'fleet.json');
  writeFileSync(manifest, `${JSON.stringify({ tenants: [{ id: 'chain', model: 'chain.onnx', maxBatch: 1 }], precision: 'fp32' }, null, 1)}\n`);
  return manifest;
}

export function parseChains(s: string): { kind: ChainKind; nodes: number }[] {
  if (s === 'none' || s === '') return [];
  return s.split(',').map((part) => {
    const [kind, count] = part.split(':');
    const nodes = Number(count);
    if (!CHAIN_KINDS.includes(kind as ChainKind) || !Number.isInteger(nodes) || nodes < 1)
      throw new Error(`--chains: '${part}' is not <${CHAIN_KINDS.join('|')}>:<nodes>`);
    return { kind: kind as ChainKind, nodes };
  });
}

export interface FleetTenant {
  readonly id: string;
  readonly spec: KindSpec;
  readonly seed: number;
}

// The fleet's tenants in manifest order: each kind's share of `n` (rounding gives the remainder to the last
// kind), seeds 1.. per kind so fleets that share a kind share its files.
export function fleetTenants(fleet: FleetSpec, n: number): FleetTenant[] {
  const parts = fleet.mix.reduce((a, m) => a + m.parts, 0);
  const out: FleetTenant[] = [];
  let given = 0;
  fleet.mix.forEach((m, k) => {
    const count = k === fleet.mix.length - 1 ? n - given : Math.round((n * m.parts) / parts);
    given += count;
    for (let i = 0; i < count; i++) out.push({ id: `${m.spec.kind}-${i + 1}`, spec: m.spec, seed: (fleet.files === undefined ? i : i % fleet.files) + 1 });
  });
  return out;
}

// Writes what is missing (models, then the manifest) and returns the manifest's path. Options override the
// kinds' options (tests shrink the models); they are part of the folder name so sizes never mix.
export function prepareFleet(
  work: string,
  fleet: FleetSpec,
  n: number,
  shrink: Readonly<Record<string, Record<string, unknown>>> = {},
  onModel?: (file: string) => void,
  changed = false, // the `warm` variant: the first tenant's model is another seed (new weights, same kind)
): string {
  const dir = path.join(work, `${fleet.name}-${n}`);
  const tenants = fleetTenants(fleet, n).map((t, i) => {
    const extra = shrink[t.spec.kind];
    const tag = extra
      ? `${t.spec.tag}-${Object.entries(extra)
          .map(([k, v]) => `${k}${String(v)}`)
          .join('-')}`
      : t.spec.tag;
    const seed = changed && i === 0 ? CHANGED_SEED : t.seed;
    const rel = path.join('models', tag, `s${seed}.onnx`);
    const file = path.join(work, rel);
    if (!existsSync(file)) {
      onModel?.(rel);
      mkdirSync(path.dirname(file), { recursive: true });
      const bytes = generateModel(t.spec.kind, { ...t.spec.options, ...extra, seed } as never).bytes;
      writeFileSync(`${file}.tmp`, bytes);
      renameSync(`${file}.tmp`, file); // an interrupted run never leaves a truncated model to reuse
    }
    if (i > 0) return { id: t.id, model: path.join('..', rel), maxBatch: fleet.maxBatch };
    // the first tenant's model is the fleet's own file, rewritten in place when it changes (as a tenant
    // shipping new weights would): its path, and so the plan's tenants and typed client, stay the same
    const own = path.join(dir, FIRST_MODEL);
    if (!existsSync(own) || !readFileSync(own).equals(readFileSync(file))) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(`${own}.tmp`, readFileSync(file));
      renameSync(`${own}.tmp`, own);
    }
    return { id: t.id, model: FIRST_MODEL, maxBatch: fleet.maxBatch };
  });
  mkdirSync(dir, { recursive: true });
  const manifest = path.join(dir, 'fleet.json');
  writeFileSync(manifest, `${JSON.stringify({ tenants, precision: 'fp32' }, null, 1)}\n`);
  return manifest;
}

const CHANGED_SEED = 1_000_003;
const PREVIOUS_PLAN = 'plan-previous'; // the `cache` mode's plan, kept for the `warm` mode
const FIRST_MODEL = 'first.onnx';

export interface Phase {
  readonly phase: string;
  readonly seconds: number;
}

export interface CompileRow {
  readonly fleet: string;
  readonly tenants: number;
  readonly modelBytes: number; // the fleet's ONNX files together
  readonly weightsBytes: number; // weights.bin
  readonly seconds: number; // wall, child start to exit
  readonly peakRssBytes: number;
  readonly phases: readonly Phase[];
  readonly nvcc: 'auto' | 'off';
  readonly mode: Mode;
  readonly cache?: { readonly hits: number; readonly misses: number; readonly modelsRead: number; readonly bytesWritten: number };
  readonly floorSeconds?: number; // read the distinct model files + write weights.bin's bytes
  readonly coldSeconds?: number; // the same fleet's cold row, for the ratio
  readonly loadavg: string; // /proc/loadavg's 1/5/15-minute load when the compile ended: other users of the machine
}

// Runs `loom compile` in a child process with a fresh kernel cache and returns its row. `tenantCache`: the
// tenant cache folder to use (kept), else --no-cache.
export async function timeCompile(
  fleetName: string,
  manifest: string,
  opts: { nvcc?: 'auto' | 'off'; keepPlan?: boolean; tenantCache?: string; mode?: Mode; planDir?: string } = {},
): Promise<CompileRow> {
  const nvcc = opts.nvcc ?? 'auto';
  const dir = path.dirname(manifest);
  const planDir = path.join(dir, opts.planDir ?? 'plan');
  const cache = path.join(dir, 'kernel-cache');
  const timings = path.join(dir, 'timings.json');
  for (const p of [planDir, cache, timings]) rmSync(p, { recursive: true, force: true });
  const args = [
    path.join(ROOT, 'bin', 'loom.js'),
    'compile',
    manifest,
    '-o',
    planDir,
    '--quiet',
    '--timings',
    timings,
    '--allow-outside-paths', // the fleets share one model cache, '../models', beside their manifests' folders
    ...(nvcc === 'off' ? ['--no-nvcc'] : []),
    ...(opts.tenantCache !== undefined ? ['--cache', opts.tenantCache] : ['--no-cache']),
  ];
  spawnSync('sync'); // start with no dirty pages: the previous compile's writes would otherwise slow this one's
  const started = process.hrtime.bigint();
  const { code, stderr } = await new Promise<{ code: number; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, LOOM_CACHE_DIR: cache }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (c) => resolve({ code: c ?? 1, stderr: err }));
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (code !== 0) throw new Error(`loom compile of fleet '${fleetName}' exited with ${code}:\n${stderr.trim()}`);
  const report = JSON.parse(readFileSync(timings, 'utf8')) as { phases: Phase[]; peakRssBytes: number; tenantCache?: CompileRow['cache'] };
  const modelBytes = modelFiles(manifest).reduce((a, f) => a + statSync(f).size, 0);
  const manifestJson = JSON.parse(readFileSync(manifest, 'utf8')) as { tenants: { model: string }[] };
  const row: CompileRow = {
    fleet: fleetName,
    tenants: manifestJson.tenants.length,
    modelBytes,
    weightsBytes: statSync(path.join(planDir, 'weights.bin')).size,
    seconds,
    peakRssBytes: report.peakRssBytes,
    phases: report.phases,
    nvcc,
    mode: opts.mode ?? 'cold',
    ...(report.tenantCache ? { cache: report.tenantCache } : {}),
    loadavg: loadavg(),
  };
  if (!opts.keepPlan) rmSync(planDir, { recursive: true, force: true }); // 5 GB per fleet otherwise
  rmSync(cache, { recursive: true, force: true });
  return row;
}

const MB = 1024 * 1024;

// The manifest's distinct model files (resolved).
export function modelFiles(manifest: string): string[] {
  const json = JSON.parse(readFileSync(manifest, 'utf8')) as { tenants: { model: string }[] };
  return [...new Set(json.tenants.map((t) => path.resolve(path.dirname(manifest), t.model)))];
}

// What no compile can beat: read every distinct model file once, write `weightsBytes` in 256 KiB writes.
export function readWriteFloor(manifest: string, weightsBytes: number): number {
  const started = process.hrtime.bigint();
  for (const f of modelFiles(manifest)) readFileSync(f);
  const out = path.join(path.dirname(manifest), 'floor.bin');
  const fd = openSync(out, 'w');
  const chunk = Buffer.alloc(256 * 1024, 1);
  try {
    for (let left = weightsBytes; left > 0; left -= chunk.byteLength) writeSync(fd, chunk, 0, Math.min(chunk.byteLength, left));
  } finally {
    closeSync(fd);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  rmSync(out, { force: true });
  return seconds;
}

export function loadavg(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ');
  }
}

export function formatTable(rows: readonly CompileRow[]): string {
  const phaseNames = [...new Set(rows.flatMap((r) => r.phases.map((p) => p.phase)))];
  const head = [
    'fleet',
    'mode',
    'tenants',
    'models MB',
    'weights MB',
    'seconds',
    'vs cold',
    'floor s',
    'peak RSS MB',
    'cached',
    'load',
    ...phaseNames.map((p) => `${p} s`),
  ];
  const body = rows.map((r) => [
    r.fleet,
    r.mode === 'warm' ? 'warm, 1 changed' : r.mode === 'cache' ? 'cold, fill cache' : 'cold',
    String(r.tenants),
    (r.modelBytes / MB).toFixed(0),
    (r.weightsBytes / MB).toFixed(0),
    r.seconds.toFixed(2),
    r.coldSeconds ? `${((r.seconds / r.coldSeconds) * 100).toFixed(0)}%` : '-',
    r.floorSeconds === undefined ? '-' : r.floorSeconds.toFixed(2),
    (r.peakRssBytes / MB).toFixed(0),
    r.cache ? `${r.cache.hits}/${r.cache.hits + r.cache.misses}` : '-',
    r.loadavg.split(' ')[0] ?? '-',
    ...phaseNames.map((p) => {
      const s = r.phases.find((x) => x.phase === p)?.seconds;
      return s === undefined ? '-' : s.toFixed(2);
    }),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

function cpuName(): string {
  const model = os.cpus()[0]?.model.trim() ?? 'cpu';
  return `${model.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '')}-${os.cpus().length}cpu`;
}

function arg(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

async function main(argv: readonly string[]): Promise<void> {
  const names = (arg(argv, '--fleets') ?? FLEETS.map((f) => f.name).join(',')).split(',').filter((f) => f !== 'none' && f !== '');
  const n = Number(arg(argv, '--tenants') ?? '120');
  const work = path.resolve(arg(argv, '--work') ?? path.join(os.tmpdir(), 'loom-compile-time'));
  const nvcc = (arg(argv, '--nvcc') ?? 'auto') as 'auto' | 'off';
  if (!Number.isInteger(n) || n < 1) throw new Error(`--tenants must be a positive integer, got ${arg(argv, '--tenants')}`);
  if (nvcc !== 'auto' && nvcc !== 'off') throw new Error(`--nvcc must be auto or off, got ${nvcc}`);
  const fleets = names.map(
    (name) =>
      FLEETS.find((f) => f.name === name) ??
      (() => {
        throw new Error(`unknown fleet '${name}' (known: ${FLEETS.map((f) => f.name).join(', ')})`);
      })(),
  );
  const chains = parseChains(arg(argv, '--chains') ?? DEFAULT_CHAINS);
  const modes = (arg(argv, '--modes') ?? MODES.join(',')).split(',') as Mode[];
  for (const m of modes) if (!MODES.includes(m)) throw new Error(`--modes: unknown mode '${m}' (known: ${MODES.join(', ')})`);
  const rows: CompileRow[] = [];
  for (const { kind, nodes } of chains) {
    const name = `chain-${kind}-${nodes}`;
    process.stderr.write(`compiling ${name}...\n`);
    const row = await timeCompile(name, prepareChain(work, kind, nodes), { nvcc });
    rows.push(row);
    process.stderr.write(`${name}: ${row.seconds.toFixed(2)} s, peak ${(row.peakRssBytes / MB).toFixed(0)} MB\n`);
  }
  for (const fleet of fleets) {
    const size = fleet.tenants ?? n;
    const note = (file: string) => process.stderr.write(`writing ${file}\r`);
    const manifest = prepareFleet(work, fleet, size, {}, note);
    let cold: CompileRow | undefined;
    let floor: number | undefined;
    const cache = path.join(path.dirname(manifest), 'tenant-cache');
    for (const mode of modes) {
      if (mode === 'cache') rmSync(cache, { recursive: true, force: true });
      if (mode === 'warm' && !existsSync(cache)) throw new Error(`--modes: warm needs the cache the 'cache' mode fills (${cache})`);
      const file = mode === 'warm' ? prepareFleet(work, fleet, size, {}, note, true) : manifest;
      process.stderr.write(`compiling ${fleet.name} (${size} tenants, ${mode})...\n`);
      // the `cache` compile's plan stays (as the plan being served would) while the `warm` one is written
      // beside it: the warm compile may keep its weights.bin bytes (src/cache/plan-record.ts)
      const where = mode === 'cache' ? { planDir: PREVIOUS_PLAN, keepPlan: true } : {};
      const row = await timeCompile(fleet.name, file, { nvcc, mode, ...where, ...(mode === 'cold' ? {} : { tenantCache: cache }) });
      floor ??= readWriteFloor(manifest, row.weightsBytes);
      const full: CompileRow = { ...row, floorSeconds: floor, ...(cold && mode !== 'cold' ? { coldSeconds: cold.seconds } : {}) };
      if (mode === 'cold') cold = full;
      rows.push(full);
      process.stderr.write(
        `${fleet.name} ${mode}: ${row.seconds.toFixed(2)} s, peak ${(row.peakRssBytes / MB).toFixed(0)} MB, floor ${floor.toFixed(2)} s, load ${row.loadavg}\n`,
      );
    }
    rmSync(cache, { recursive: true, force: true }); // as large as the fleet's weights
    rmSync(path.join(path.dirname(manifest), PREVIOUS_PLAN), { recursive: true, force: true });
  }
  const table = formatTable(rows);
  const date = new Date().toISOString().slice(0, 10);
  const cpu = cpuName();
  const header = `loom compile, ${n} tenants per fleet (mlp-1k: 1,000, small-10k: 10,000), ${cpu}, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB RAM, node ${process.version}, nvcc ${nvcc}, ${date}; load = /proc/loadavg 1-min at the end of each compile (targets: 120 <= 10 s, 1k <= 30 s, 10k <= 60 s, warm <= 20% of cold)`;
  process.stdout.write(`${header}\n${table}\n`);
  const out = arg(argv, '--out') ?? path.join(ROOT, 'bench', 'results', `${date}-${cpu}-compile-time.json`);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(
    out,
    `${JSON.stringify({ bench: 'compile-time', date, cpu: os.cpus()[0]?.model.trim(), cores: os.cpus().length, memBytes: os.totalmem(), node: process.version, tenants: n, nvcc, modes, rows }, null, 1)}\n`,
  );
  writeFileSync(out.replace(/\.json$/, '.txt'), `${header}\n${table}\n`);
  process.stderr.write(`wrote ${out}\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
