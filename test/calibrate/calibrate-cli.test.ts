// `loom calibrate --quick` on the CPU backend, then the profile through `loom compile --profile`, `loom
// inspect` and `loom bench` (in process, so the sources run).
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { readPlanDir } from '../../codegen/index.js';
import { readProfile } from '../../src/calibrate/profile.js';
import { compileBenchFleet } from '../bench/fleet-fixture.js';
import { loomInProcess } from '../support/loom-cli.js';

let root = '';
let manifest = '';
let defaultPlan = '';
const profile = () => path.join(root, 'cpu-profile.json');

beforeAll(async () => {
  ({ root, manifest, planDir: defaultPlan } = await compileBenchFleet());
});
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

const loom = loomInProcess;

describe('loom calibrate', () => {
  it('--quick on the CPU backend writes a valid profile, with progress and a summary table', async () => {
    const t0 = Date.now();
    const r = await loom('calibrate', '--backend', 'cpu', '--quick', '--out', profile());
    expect(r.code, r.err).toBe(0);
    expect(Date.now() - t0).toBeLessThan(90_000);
    expect(r.err).toMatch(/f32: \d+ points, \d+ launches/);
    expect(r.err).toMatch(/f32: 1\/\d+ gemm 1x256x256 x1 f32: [\d.]+ (us|ms)/);
    expect(r.out).toMatch(/kind\s+points\s+overhead us\s+GFLOP\/s\s+GB\/s\s+roofline err\s+fit err\s+worst fit err/);
    expect(r.out).toContain(`wrote ${profile()}`);
    const p = readProfile(profile()).profile; // the reader's checks pass
    expect(p).toMatchObject({ format: 'loom-device-profile', version: 1, backend: 'cpu', settings: { quick: true } });
    expect(p.name).toBe(os.cpus()[0]!.model.trim());
    for (const k of [
      'tick.io',
      'gemm.f32',
      'gemm_grouped.f32',
      'gemm.epilogue',
      'kernel.eltwise',
      'kernel.softmax',
      'kernel.layernorm',
      'kernel.reduce',
      'kernel.im2col',
      'kernel.pool',
    ])
      expect(Object.keys(p.kinds)).toContain(k);
    for (const k of Object.values(p.kinds)) {
      expect(k.fit.bytesPerS).toBeGreaterThan(0);
      expect(k.points.length).toBeGreaterThan(0);
    }
    expect(p.kinds['gemm.f32']!.fit.flopsPerS).toBeGreaterThan(0);
    expect(p.launchOverheadUs).toBeGreaterThan(0);
    expect(p.concurrency).toEqual([]); // the CPU backend: not measured
  }, 120_000);

  it('--tick-io measures only tick.io again into a profile of this device, and refuses one of another', async () => {
    const out = path.join(root, 'tick-io.json');
    const r = await loom('calibrate', '--tick-io', profile(), '--out', out);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/tick with [\d.]+ (KiB|MiB|B) of inputs and outputs/);
    expect(r.out).toMatch(/tick\.io: [\d.-]+ µs \+ bytes at [\d.]+ GB\/s → [\d.-]+ µs \+ bytes at [\d.]+ GB\/s\nwrote /);
    const before = readProfile(profile()).profile;
    const after = readProfile(out).profile;
    expect(after.settings.tickIo).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(before.settings.tickIo).toBeUndefined();
    const { 'tick.io': newIo, ...rest } = after.kinds;
    const { 'tick.io': oldIo, ...restBefore } = before.kinds;
    expect(rest).toEqual(restBefore); // every other kind as it was
    expect(newIo!.points.length).toBe(oldIo!.points.length);
    expect({ ...after, kinds: {}, settings: {} }).toEqual({ ...before, kinds: {}, settings: {} });
    const foreign = path.join(root, 'other-card.json');
    writeFileSync(foreign, JSON.stringify({ ...before, name: 'NVIDIA H100 80GB HBM3', backend: 'cuda' }));
    const bad = await loom('calibrate', '--tick-io', foreign, '--out', path.join(root, 'never.json'));
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/calibrate --tick-io: the profile is of NVIDIA H100 80GB HBM3 \(cuda\); this host runs|calibrate --backend cuda: /);
    const both = await loom('calibrate', '--tick-io', profile(), '--refit', profile());
    expect(both.code).toBe(2);
    expect(both.err).toMatch(/--refit and --tick-io each rewrite a profile: give one/);
  }, 60_000);

  it('refuses an unknown backend and a non-numeric --threads with exit 2', async () => {
    expect((await loom('calibrate', '--backend', 'tpu')).err).toMatch(/--backend must be one of auto, cpu, cuda, got 'tpu'/);
    const r = await loom('calibrate', '--backend', 'cpu', '--threads', 'many');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--threads must be a positive integer, got 'many'/);
  });
});

describe('loom compile --profile', () => {
  it('plans with the profile: other predictions, the profile recorded in plan.json and shown by inspect', async () => {
    const planDir = path.join(root, 'plan-profiled');
    const r = await loom('compile', manifest, '-o', planDir, '--profile', profile(), '--quiet', '--no-nvcc');
    expect(r.code, r.err).toBe(0);
    const { hash, profile: p } = readProfile(profile());
    const withProfile = readPlanDir(planDir);
    const without = readPlanDir(defaultPlan);
    expect(withProfile.cost.profile).toEqual({ name: p.name, hash });
    expect(without.cost.profile).toBeUndefined();
    expect(withProfile.cost.device).toContain(p.name);
    expect(withProfile.cost.predictedTickUs).not.toBeCloseTo(without.cost.predictedTickUs, 3);
    const changed = withProfile.launches.filter((l, i) => without.launches[i] && l.info.predictedUs !== without.launches[i]!.info.predictedUs);
    expect(changed.length).toBeGreaterThan(0);
    // the tick: its launches plus its own cost (the fixed cost and the io copies, tick.io)
    expect(withProfile.cost.tickIoUs).toBeGreaterThan(0);
    expect(withProfile.cost.predictedTickUs).toBeCloseTo(withProfile.launches.reduce((a, l) => a + l.info.predictedUs, 0) + withProfile.cost.tickIoUs!, 6);
    expect(without.cost.tickIoUs).toBeUndefined();
    const ins = await loom('inspect', planDir);
    expect(ins.code, ins.err).toBe(0);
    expect(ins.out).toContain(`profile      ${p.name}, sha256 ${hash}`);
    expect((await loom('inspect', defaultPlan)).out).not.toContain('profile      ');
  });

  it('takes a shipped profile by name and says which in the summary; auto on a host without a GPU plans by the roofline', async () => {
    const named = path.join(root, 'plan-shipped');
    const r = await loom('compile', manifest, '-o', named, '--profile', 'nvidia-h100-80gb-hbm3', '--no-nvcc');
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain('loom: cost model: profile nvidia-h100-80gb-hbm3 (shipped)');
    expect(readPlanDir(named).cost.profile?.name).toBe('NVIDIA H100 80GB HBM3');
    const auto = await loom('compile', manifest, '-o', path.join(root, 'plan-auto'), '--profile', 'auto', '--no-nvcc');
    expect(auto.code, auto.err).toBe(0);
    // this host's GPU, if any, names the outcome; without one (CI) the roofline prices the plan
    expect(auto.err).toMatch(
      /loom: cost model: profile auto: (no GPU on this host; the roofline prices the plan|.* → the shipped profile |no shipped profile for )/,
    );
    if (/no GPU on this host/.test(auto.err)) expect(readPlanDir(path.join(root, 'plan-auto')).cost.profile).toBeUndefined();
    const bad = await loom('compile', manifest, '-o', path.join(root, 'z'), '--profile', 'nvidia-a100', '--quiet');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--profile: no file 'nvidia-a100' and no shipped profile of that name \(shipped: .*nvidia-h100-80gb-hbm3/);
  });

  it('refuses a foreign profile, and --profile with --from launch, with one line and exit 2', async () => {
    const foreign = path.join(root, 'foreign.json');
    writeFileSync(foreign, readFileSync(path.join(defaultPlan, 'plan.json')));
    const r = await loom('compile', manifest, '-o', path.join(root, 'x'), '--profile', foreign, '--quiet');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/device profile '.*foreign\.json': field format must be 'loom-device-profile', got "loom-launchplan"/);
    const f = await loom('compile', '--from', 'launch', root, '-o', path.join(root, 'y'), '--profile', profile(), '--quiet');
    expect(f.code).toBe(2);
    expect(f.err).toMatch(/--profile prices the plan stage, which --from launch skips/);
  });
});

describe('loom bench: predicted vs measured', () => {
  it('prints the tick and every launch kind with predicted, measured and the error, and stores them in the JSON', async () => {
    const planDir = path.join(root, 'plan-profiled');
    const json = path.join(root, 'bench.json');
    const r = await loom('bench', planDir, '--backend', 'cpu', '--ticks', '2', '--warmup', '1', '--json', json, '--all-launches');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/predicted vs measured \(cost model: .*profile of/);
    expect(r.out).toMatch(/ {2}tick {9}predicted [\d.]+ (µs|ms), measured [\d.]+ (µs|ms) \(tick p50 \(wall clock around one tick\)\): error [+-][\d.]+%/);
    expect(r.out).toMatch(/by kind\s+launches\s+predicted\s+measured\s+error/);
    expect(r.out).toMatch(/launch\s+stage\s+kind\s+predicted\s+measured\s+error/);
    const plan = readPlanDir(planDir);
    const parsed = JSON.parse(readFileSync(json, 'utf8')) as {
      predictions: { profile: { name: string } | null; launches: Array<{ id: number; predictedUs: number; measuredUs: number; errorPct: number }> };
    };
    expect(parsed.predictions.profile?.name).toBe(plan.cost.profile?.name);
    expect(parsed.predictions.launches.map((l) => l.id)).toEqual(plan.launches.map((l) => l.id));
    for (const l of parsed.predictions.launches) {
      expect(l.measuredUs).toBeGreaterThan(0);
      expect(l.errorPct).toBeCloseTo(((l.predictedUs - l.measuredUs) / l.measuredUs) * 100, 6);
    }
    // every launch is listed with --all-launches
    for (const l of plan.launches) expect(r.out).toContain(`${l.id} ${l.info.label}`);
  }, 120_000);
});
