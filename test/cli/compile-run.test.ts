// The product surface end to end through the real `bin/loom.js` (needs a fresh dist/: `npm run build`):
// compile a small mixed fleet, inspect it, run one tenant from .npy files, and the demo.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateModel } from '../../models/index.js';
import { fromNumbers } from '../../ir/tensor.js';
import { encodeNpy, readNpy, writeNpy } from '../../runtime/npy.js';
import { runOrt } from '../support/ort.js';
import { relativeError, rng } from '../support/tensors.js';
import { EMU_SKIP_REASON } from '../native/emu-env.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'loom-compile-run-'));

function loom(...args: string[]) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/loom.js'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function expectOneLineError(r: ReturnType<typeof loom>, code: string, ...mentions: string[]) {
  expect(r.code, r.err).toBe(2);
  const lines = r.err.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain(`[${code}]`);
  for (const m of mentions) expect(lines[0]).toContain(m);
  expect(r.err).not.toMatch(/\n\s+at /);
}

// 5 tenants: three MLPs of one shape (one strided group), one of another shape, one LSTM (batch axis 1).
const FLEET = [
  { id: 'mlp-a', kind: 'mlp', opts: { seed: 11, sizes: [32, 24, 5] } },
  { id: 'mlp-b', kind: 'mlp', opts: { seed: 12, sizes: [32, 24, 5] } },
  { id: 'mlp-c', kind: 'mlp', opts: { seed: 13, sizes: [32, 24, 5], activation: 'relu' } },
  { id: 'mlp-wide', kind: 'mlp', opts: { seed: 14, sizes: [16, 40, 3], linear: 'matmul' } },
  { id: 'lstm-a', kind: 'lstm', opts: { seed: 15, hidden: 8, inputSize: 6, seqLen: 3, classes: 4 } },
] as const;

const manifest = path.join(tmp, 'fleet.json');
const plan = path.join(tmp, 'plan');

beforeAll(() => {
  mkdirSync(path.join(tmp, 'models'), { recursive: true });
  for (const t of FLEET) writeFileSync(path.join(tmp, 'models', `${t.id}.onnx`), generateModel(t.kind, t.opts as never).bytes);
  writeFileSync(
    manifest,
    JSON.stringify({
      tenants: FLEET.map((t, i) => ({ id: t.id, model: `models/${t.id}.onnx`, maxBatch: 1 + (i % 3), ...(i === 0 ? { sloMs: 10 } : {}) })),
      precision: 'fp32',
    }),
  );
  const r = loom('compile', manifest, '-o', plan, '--quiet');
  if (r.code !== 0) throw new Error(`loom compile failed (${r.code}): ${r.err}`);
});

describe('loom compile / inspect / run', () => {
  it('compile writes the plan directory, deterministically', () => {
    for (const f of ['plan.json', 'weights.bin', 'kernels.cu']) expect(existsSync(path.join(plan, f)), f).toBe(true);
    const again = path.join(tmp, 'plan-again');
    const r = loom('compile', manifest, '-o', again);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain('compiled 5 tenants');
    expect(r.err).toContain('launches per tick');
    expect(readFileSync(path.join(again, 'plan.json'))).toEqual(readFileSync(path.join(plan, 'plan.json')));
    expect(readFileSync(path.join(again, 'weights.bin'))).toEqual(readFileSync(path.join(plan, 'weights.bin')));
  });

  it('compile of .onnx files takes ids from the names; --emit stops after a stage', () => {
    const a = path.join(tmp, 'models/mlp-a.onnx');
    const dir = path.join(tmp, 'from-files');
    const r = loom('compile', a, a, path.join(tmp, 'models/lstm-a.onnx'), '--max-batch', '2', '-o', dir, '--quiet', '--no-nvcc');
    expect(r.code, r.err).toBe(0);
    const json = JSON.parse(readFileSync(path.join(dir, 'plan.json'), 'utf8')) as { tenants: { id: string; maxBatch: number }[] };
    expect(json.tenants.map((t) => [t.id, t.maxBatch])).toEqual([
      ['mlp-a', 2],
      ['mlp-a-2', 2],
      ['lstm-a', 2],
    ]);

    const ir = path.join(tmp, 'emit-ir');
    expect(loom('compile', manifest, '-o', ir, '--emit', 'ir', '--quiet').code).toBe(0);
    expect(readFileSync(path.join(ir, 'ir/mlp-b.ir'), 'utf8')).toContain('Gemm');
    expect(existsSync(path.join(ir, 'plan.json'))).toBe(false);
    const summary = path.join(tmp, 'emit-plan');
    expect(loom('compile', manifest, '-o', summary, '--emit', 'plan', '--quiet').code).toBe(0);
    const s = JSON.parse(readFileSync(path.join(summary, 'plan-summary.json'), 'utf8')) as {
      launches: unknown[];
      weights: { bytes: number; tensor?: unknown }[];
    };
    expect(s.launches.length).toBeGreaterThan(0);
    expect(s.weights[0]!.bytes).toBeGreaterThan(0);
    expect(s.weights[0]!.tensor).toBeUndefined();
    const launch = path.join(tmp, 'emit-launch');
    expect(loom('compile', manifest, '-o', launch, '--emit', 'launch', '--quiet').code).toBe(0);
    const launches = (dirName: string) => (JSON.parse(readFileSync(path.join(dirName, 'plan.json'), 'utf8')) as { launches: unknown[] }).launches;
    expect(launches(launch)).toEqual(launches(plan)); // the same plan, only its kernels table may lack a cubin
    expect(existsSync(path.join(launch, 'weights.bin'))).toBe(true); // so a compile can restart from it (--from launch)
    const cuda = path.join(tmp, 'emit-cuda');
    expect(loom('compile', manifest, '-o', cuda, '--emit', 'cuda', '--quiet').code).toBe(0);
    expect(readFileSync(path.join(cuda, 'kernels.cu'), 'utf8')).toEqual(readFileSync(path.join(plan, 'kernels.cu'), 'utf8'));
    expectOneLineError(loom('compile', manifest, '-o', cuda, '--emit', 'ptx'), 'USAGE', 'ptx');
  });

  it("--from restarts from a dump with the same plan; --dump-after writes one pass's IR", () => {
    const same = (dir: string) => {
      for (const f of ['plan.json', 'weights.bin', 'kernels.cu', 'client.ts'])
        expect(readFileSync(path.join(dir, f)), f).toEqual(readFileSync(path.join(plan, f)));
    };
    const fromIr = path.join(tmp, 'from-ir');
    expect(loom('compile', '--from', 'ir', path.join(tmp, 'emit-ir'), '-o', fromIr, '--quiet').err).toBe('');
    same(fromIr);
    const fromLaunch = path.join(tmp, 'from-launch');
    expect(loom('compile', '--from', 'launch', path.join(tmp, 'emit-launch'), '-o', fromLaunch, '--quiet').err).toBe('');
    same(fromLaunch);

    const dumped = path.join(tmp, 'dump-after');
    const r = loom('compile', manifest, '-o', dumped, '--emit', 'lower', '--dump-after', 'lower-recurrent', '--quiet');
    expect(r.code, r.err).toBe(0);
    expect(readFileSync(path.join(dumped, 'dump/lstm-a.lower-recurrent.ir'), 'utf8')).toContain('MatMul');
    expect(existsSync(path.join(dumped, 'dump/mlp-a.lower-recurrent.ir'))).toBe(true);

    expectOneLineError(
      loom('compile', manifest, '-o', dumped, '--dump-after', 'fold-everything'),
      'USAGE',
      'fold-everything',
      'fuse-epilogue',
      'lower-recurrent',
    );
    expectOneLineError(loom('compile', '--from', 'ir', path.join(tmp, 'emit-ir'), '-o', dumped, '--dump-after', 'fuse-epilogue'), 'USAGE', 'canonicalize');
    expectOneLineError(loom('compile', '--from', 'kernels', path.join(tmp, 'emit-ir'), '-o', dumped), 'USAGE', 'kernels', 'launch');
    expectOneLineError(loom('compile', '--from', 'launch', path.join(tmp, 'emit-plan'), '-o', dumped), 'IO', 'dump.json');
    expectOneLineError(loom('compile', '--from', 'ir', path.join(tmp, 'emit-launch'), '-o', dumped), 'USAGE', "'launch'");
    const help = loom('compile', '--help').out;
    for (const word of ['--from', '--dump-after', 'import', 'canonicalize', 'lower', 'plan', 'launch', 'kernels', 'fuse-epilogue'])
      expect(help).toContain(word);
  });

  it('compile errors are one line, exit 2', () => {
    const bad = path.join(tmp, 'bad.json');
    writeFileSync(bad, JSON.stringify({ tenants: [{ id: 'x', model: 'models/mlp-a.onnx', maxBatch: 2 }], precision: 'int8' }));
    expectOneLineError(loom('compile', bad, '-o', path.join(tmp, 'nope')), 'MANIFEST', 'int8', 'fp32');
    writeFileSync(bad, JSON.stringify({ tenants: [{ id: 'x', model: 'models/gone.onnx', maxBatch: 2 }] }));
    expectOneLineError(loom('compile', bad, '-o', path.join(tmp, 'nope')), 'MANIFEST', "tenant 'x'", 'gone.onnx');
  });

  it('inspect prints the launch table and totals; --json parses', () => {
    const r = loom('inspect', plan);
    expect(r.code, r.err).toBe(0);
    for (const s of ['stage', 'kind', 'tenants', 'FLOPs', 'predicted', 'launches', 'tenant layers', 'ungrouped', 'floor', 'arenas', 'without reuse', 'mlp-a'])
      expect(r.out).toContain(s);
    expect(r.out).toMatch(/strided|batched|grouped/);
    expect(r.out).toContain('gen:');
    const j = loom('inspect', plan, '--json');
    expect(j.code, j.err).toBe(0);
    const parsed = JSON.parse(j.out) as {
      tenants: { id: string }[];
      launches: { kind: string; tenants: string[] }[];
      totals: { launches: number; tenantLayers: number };
    };
    const onDisk = JSON.parse(readFileSync(path.join(plan, 'plan.json'), 'utf8')) as { launches: unknown[]; tenants: { id: string; layers: number }[] };
    expect(parsed.tenants.map((t) => t.id)).toEqual(FLEET.map((t) => t.id));
    expect(parsed.totals.launches).toBe(onDisk.launches.length);
    // tenant layers = the launches a time-only runtime would make: 2 fused Gemms per MLP, the LSTM's lowered steps
    expect(parsed.totals.tenantLayers).toBe(onDisk.tenants.reduce((a, t) => a + t.layers, 0));
    for (const t of onDisk.tenants.filter((x) => x.id.startsWith('mlp'))) expect(t.layers).toBe(2);
    expect(parsed.totals.launches).toBeLessThanOrEqual(parsed.totals.tenantLayers); // fewer on one lane: below
    // the MLPs differ in maxBatch (so in GEMM shape): on lanes each one's 2 GEMMs run beside the others'; with
    // --lanes 1 they join grouped launches (the test below)
    expect(parsed.launches.filter((l) => l.tenants.includes('mlp-a'))).toHaveLength(2);
    expectOneLineError(loom('inspect', path.join(tmp, 'no-such-plan')), 'IO', 'no-such-plan');
  });

  it('--branching auto: equal tenants as parallel branches, a lane each, named by inspect; a bad mode is refused', () => {
    // every tenant at one row, so the equal MLPs share launches when batched
    const equal = path.join(tmp, 'fleet-equal.json');
    writeFileSync(equal, JSON.stringify({ tenants: FLEET.map((t) => ({ id: t.id, model: `models/${t.id}.onnx`, maxBatch: 1 })), precision: 'fp32' }));
    const dir = path.join(tmp, 'plan-branched');
    const r = loom('compile', equal, '-o', dir, '--quiet', '--branching', 'auto', '--no-nvcc');
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(loom('inspect', dir, '--json').out) as { launches: { tenants: string[] }[]; totals: { branches: { tenants: string[] } | null } };
    expect(j.totals.branches?.tenants.length ?? 0).toBeGreaterThan(1);
    for (const l of j.launches) if (l.tenants.some((t) => j.totals.branches!.tenants.includes(t))) expect(l.tenants).toHaveLength(1);
    expect(loom('inspect', dir).out).toMatch(/^branches {5}\d+ tenants as parallel branches/m);
    expectOneLineError(loom('compile', manifest, '-o', path.join(tmp, 'nope'), '--branching', 'maybe'), 'USAGE', '--branching', 'auto, never, always, measure');
  });

  it('--branching measure: both plans timed on this host, the faster kept and recorded, inspect says so, no scratch left', () => {
    const equal = path.join(tmp, 'fleet-equal-measure.json');
    writeFileSync(equal, JSON.stringify({ tenants: FLEET.map((t) => ({ id: t.id, model: `models/${t.id}.onnx`, maxBatch: 1 })), precision: 'fp32' }));
    const dir = path.join(tmp, 'plan-measured');
    const r = loom('compile', equal, '-o', dir, '--branching', 'measure', '--no-nvcc');
    expect(r.code, r.err).toBe(0);
    const line = /loom: branching measure: batched ([\d.]+) [µm]?s, branched ([\d.]+) [µm]?s a tick on .+: the (batched|branched) plan kept/.exec(r.err);
    expect(line, r.err).not.toBeNull();
    const cost = (
      JSON.parse(readFileSync(path.join(dir, 'plan.json'), 'utf8')) as {
        cost: { branches: { tenants: number[]; measured: { backend: string; device: string; batchedUs: number; branchedUs: number } } };
      }
    ).cost;
    const m = cost.branches.measured;
    expect(m.batchedUs).toBeGreaterThan(0);
    expect(m.branchedUs).toBeGreaterThan(0);
    // the faster one was kept: branched tenants exactly when the branched plan timed faster
    expect(cost.branches.tenants.length > 0).toBe(m.branchedUs < m.batchedUs);
    expect(line![3]).toBe(m.branchedUs < m.batchedUs ? 'branched' : 'batched');
    expect(loom('inspect', dir).out).toMatch(/^branches {5}.*measured [\d.]+ [µm]?s branched, [\d.]+ [µm]?s batched on /m);
    const html = path.join(tmp, 'measured.html');
    expect(loom('inspect', dir, '--html', html).code).toBe(0);
    const page = readFileSync(html, 'utf8');
    expect(page).toContain('batched, timed');
    expect(page).toContain('branched, timed');
    expect(page).toContain(`--branching measure on ${m.device}: the ${line![3]} plan kept`);
    // the plan moved out of its scratch folder: its manifest copy points at the models from where it is now
    expect(existsSync(path.join(tmp, 'plan-measured'))).toBe(true);
    expect(readdirSync(tmp).filter((n) => n.includes('.branching-'))).toEqual([]);
    const copy = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { tenants: { model: string }[] };
    for (const t of copy.tenants) expect(existsSync(path.resolve(dir, t.model)), t.model).toBe(true);
    // with the tenant cache the kept plan is recorded where it landed: a second compile finds it there (and keeps
    // its bytes, unless the timing kept the other plan this time: then its layout differs)
    const cached = path.join(tmp, 'plan-measured-cached');
    const cacheDir = path.join(tmp, 'measure-cache');
    expect(loom('compile', equal, '-o', cached, '--branching', 'measure', '--no-nvcc', '--cache', cacheDir).code).toBe(0);
    const again = loom('compile', equal, '-o', cached, '--branching', 'measure', '--no-nvcc', '--cache', cacheDir);
    expect(again.code, again.err).toBe(0);
    expect(again.err).toMatch(/weights\.bin: (kept \d+ of \d+ blobs from |did not keep )\S*plan-measured-cached\/weights\.bin(;|: another layout)/);
    expect(again.err).not.toMatch(/: gone/);
    expectOneLineError(
      loom('compile', equal, '-o', path.join(tmp, 'nope'), '--branching', 'measure', '--emit', 'plan'),
      'USAGE',
      '--branching measure',
      '--emit plan',
    );
    expectOneLineError(
      loom('compile', equal, '-o', path.join(tmp, 'nope'), '--branching', 'measure', '--shards', '2'),
      'USAGE',
      '--branching measure',
      '--shards',
    );
  });

  it('squeeze-excite blocks are one kernel unless --no-squeeze-excite; --no-residual-epilogue keeps residual adds apart', () => {
    const bytes = generateModel('mobilenet', { seed: 9, resolution: 32, classes: 10, widthMult: 0.25 }).bytes;
    writeFileSync(path.join(tmp, 'models', 'mobilenet.onnx'), bytes);
    const fleet = path.join(tmp, 'fleet-mobilenet.json');
    writeFileSync(fleet, JSON.stringify({ tenants: [{ id: 'mobilenet', model: 'models/mobilenet.onnx', maxBatch: 1 }], precision: 'fp32' }));
    type L = { kind: string; op?: { op: string }; problem?: { residual?: boolean } };
    const compiled = (...flags: string[]): L[] => {
      const dir = path.join(tmp, `plan-mobilenet${flags.join('')}`);
      const r = loom('compile', fleet, '-o', dir, '--quiet', '--no-nvcc', ...flags);
      expect(r.code, r.err).toBe(0);
      return (JSON.parse(readFileSync(path.join(dir, 'plan.json'), 'utf8')) as { launches: L[] }).launches;
    };
    const excite = (ls: L[]) => ls.filter((l) => l.op?.op === 'squeeze_excite').length;
    const residual = (ls: L[]) => ls.filter((l) => l.problem?.residual === true).length;
    const [plain, se, apart] = [compiled('--no-squeeze-excite'), compiled(), compiled('--no-residual-epilogue', '--no-squeeze-excite')];
    expect([excite(plain), excite(apart)]).toEqual([0, 0]);
    expect(excite(se)).toBeGreaterThan(5);
    expect(se.length).toBe(plain.length - 3 * excite(se));
    expect(residual(plain)).toBeGreaterThan(3);
    expect(residual(apart)).toBe(0);
    expect(apart.length).toBe(plain.length + residual(plain));
  });

  it('--conv implicit: im2col convs are generated conv launches, shown by inspect; a bad form is refused', () => {
    writeFileSync(path.join(tmp, 'models', 'mobilenet-c.onnx'), generateModel('mobilenet', { seed: 19, resolution: 32, classes: 10, widthMult: 0.25 }).bytes);
    const fleet = path.join(tmp, 'fleet-mobilenet-c.json');
    writeFileSync(fleet, JSON.stringify({ tenants: [{ id: 'mobilenet', model: 'models/mobilenet-c.onnx', maxBatch: 1 }], precision: 'fp32' }));
    const dir = path.join(tmp, 'plan-conv-implicit');
    const r = loom('compile', fleet, '-o', dir, '--quiet', '--no-nvcc', '--conv', 'implicit');
    expect(r.code, r.err).toBe(0);
    const launches = (JSON.parse(readFileSync(path.join(dir, 'plan.json'), 'utf8')) as { launches: { op?: { op: string } }[] }).launches;
    expect(launches.filter((l) => l.op?.op === 'conv').length).toBeGreaterThan(0);
    expect(launches.filter((l) => l.op?.op === 'im2col').length).toBe(0);
    expect(loom('inspect', dir).out).toContain('gen:conv');
    expectOneLineError(loom('compile', fleet, '-o', path.join(tmp, 'nope'), '--conv', 'winograd'), 'USAGE', '--conv', 'im2col or implicit', 'winograd');
  });

  it('--lanes: independent launches on parallel lanes, shown by inspect; a bad count is refused', () => {
    const laned = path.join(tmp, 'plan-lanes');
    const r = loom('compile', manifest, '-o', laned, '--quiet', '--lanes', '4');
    expect(r.code, r.err).toBe(0);
    const onDisk = JSON.parse(readFileSync(path.join(laned, 'plan.json'), 'utf8')) as {
      lanes?: number;
      priorityLanes?: number[];
      launches: { lane?: number }[];
    };
    expect(onDisk.lanes ?? 1).toBeGreaterThan(1);
    expect(onDisk.lanes).toBeLessThanOrEqual(4);
    const i = loom('inspect', laned);
    expect(i.code, i.err).toBe(0);
    expect(i.out).toContain('waits for');
    expect(i.out).toMatch(new RegExp(`${onDisk.lanes} parallel lanes`));
    expect(onDisk.priorityLanes?.length ?? 0, 'the busiest lanes run at high priority').toBeGreaterThan(0);
    expect(i.out).toContain(`the critical path's at high priority: lane${onDisk.priorityLanes!.length > 1 ? 's' : ''} ${onDisk.priorityLanes!.join(', ')}`);
    expectOneLineError(loom('compile', manifest, '-o', path.join(tmp, 'nope'), '--lanes', '0'), 'USAGE', '--lanes', '1..32');
    // one lane: the four MLPs' equal layers share launches, mlp-wide's different shape joining them in grouped ones
    const one = path.join(tmp, 'plan-one-lane');
    expect(loom('compile', manifest, '-o', one, '--quiet', '--lanes', '1').code).toBe(0);
    const j = JSON.parse(loom('inspect', one, '--json').out) as {
      launches: { kind: string; tenants: string[] }[];
      totals: { launches: number; tenantLayers: number };
    };
    expect(j.totals.launches).toBeLessThan(j.totals.tenantLayers);
    const mlp = j.launches.filter((l) => l.tenants.includes('mlp-a'));
    expect(mlp).toHaveLength(2);
    for (const l of mlp) expect(l.tenants).toEqual(expect.arrayContaining(['mlp-a', 'mlp-b', 'mlp-c', 'mlp-wide']));
  });

  it('run writes .npy outputs equal to onnxruntime for that tenant', async () => {
    const rand = rng(7);
    const x = fromNumbers(
      'f32',
      [2, 32],
      Array.from({ length: 64 }, () => rand() * 2 - 1),
    );
    const xFile = path.join(tmp, 'x.npy');
    writeNpy(xFile, x);
    const out = path.join(tmp, 'out-b');
    const r = loom('run', plan, '--tenant', 'mlp-b', '--input', `input=${xFile}`, '--out', out, '--backend', 'cpu');
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain('mlp-b');
    const got = readNpy(path.join(out, 'output.npy'));
    const want = (await runOrt(path.join(tmp, 'models/mlp-b.onnx'), { input: x })).output!;
    expect(got.shape).toEqual([2, 5]);
    expect(relativeError(got, want)).toBeLessThan(1e-4);
    // another tenant's weights give another answer: the run used mlp-b's
    const other = (await runOrt(path.join(tmp, 'models/mlp-a.onnx'), { input: x })).output!;
    expect(relativeError(got, other)).toBeGreaterThan(1e-2);
    // the same tenant with the plan's generated CUDA kernels compiled for the host (no GPU needed)
    if (EMU_SKIP_REASON === null) {
      const e = loom('run', plan, '--tenant', 'mlp-b', '--input', `input=${xFile}`, '--out', path.join(tmp, 'out-b-emu'), '--backend', 'cuda-emu');
      expect(e.code, e.err).toBe(0);
      expect(e.err).toContain('on cuda-emu');
      expect(relativeError(readNpy(path.join(tmp, 'out-b-emu', 'output.npy')), want)).toBeLessThan(1e-4);
    }

    // the LSTM's rows are along axis 1 ([seq, batch, input])
    const seq = fromNumbers(
      'f32',
      [3, 1, 6],
      Array.from({ length: 18 }, () => rand() - 0.5),
    );
    const seqFile = path.join(tmp, 'seq.npy');
    writeNpy(seqFile, seq);
    const r2 = loom('run', plan, '--tenant', 'lstm-a', '--input', `input=${seqFile}`, '--out', path.join(tmp, 'out-lstm'));
    expect(r2.code, r2.err).toBe(0);
    const want2 = (await runOrt(path.join(tmp, 'models/lstm-a.onnx'), { input: seq })).output!;
    expect(relativeError(readNpy(path.join(tmp, 'out-lstm/output.npy')), want2)).toBeLessThan(1e-4);
  });

  it('bad run inputs: one line, exit 2', () => {
    const good = path.join(tmp, 'good.npy');
    writeNpy(good, fromNumbers('f32', [1, 32], new Array(32).fill(0.5)));
    const out = path.join(tmp, 'out-bad');
    const run = (...args: string[]) => loom('run', plan, '--out', out, ...args);
    expectOneLineError(run('--tenant', 'mlp-b', '--input', `wrong=${good}`), 'EVAL', "'wrong'", 'input');
    const wide = path.join(tmp, 'wide.npy');
    writeNpy(wide, fromNumbers('f32', [1, 31], new Array(31).fill(0.5)));
    expectOneLineError(run('--tenant', 'mlp-b', '--input', `input=${wide}`), 'EVAL', 'wide.npy', '[1,31]', 'f32[1..2,32]');
    const rows = path.join(tmp, 'rows.npy');
    writeNpy(rows, fromNumbers('f32', [3, 32], new Array(96).fill(0.5)));
    expectOneLineError(run('--tenant', 'mlp-b', '--input', `input=${rows}`), 'EVAL', '[3,32]', '1..2');
    const f64 = path.join(tmp, 'f64.npy');
    writeNpy(f64, fromNumbers('f64', [1, 32], new Array(32).fill(0.5)));
    expectOneLineError(run('--tenant', 'mlp-b', '--input', `input=${f64}`), 'EVAL', 'f64', 'f32');
    const trunc = path.join(tmp, 'trunc.npy');
    writeFileSync(trunc, encodeNpy(fromNumbers('f32', [1, 32], new Array(32).fill(0.5))).subarray(0, 100 + 128));
    expectOneLineError(run('--tenant', 'mlp-b', '--input', `input=${trunc}`), 'IO', 'trunc.npy', 'truncated', '128 data bytes');
    expectOneLineError(run('--tenant', 'mlp-b'), 'USAGE', 'input=');
    expectOneLineError(run('--tenant', 'nobody', '--input', `input=${good}`), 'USAGE', "'nobody'", 'mlp-a');
    expectOneLineError(run('--tenant', 'mlp-b', '--input', `input=${path.join(tmp, 'absent.npy')}`), 'IO', 'absent.npy');
    expectOneLineError(run('--tenant', 'mlp-b', '--input', good), 'USAGE', 'name=file.npy');
  });
});

describe('loom demo', () => {
  it('--small compiles, runs and checks 16 mixed tenants against onnxruntime', () => {
    const r = loom('demo', '--small', '--dir', path.join(tmp, 'demo'), '--quiet');
    expect(r.code, `${r.out}\n${r.err}`).toBe(0);
    expect(r.out).toContain('16 tenants');
    expect(r.out).toContain('launches');
    expect(r.out).toMatch(/encoder-2 .* ok/);
    expect(r.out).toContain('all 16 tenants match onnxruntime');
  });
});
