// `loom bench --occupancy` on the CPU backend: which tenants are live at each fraction (deterministic, spread
// over model kinds), fraction validation, live tenants' outputs equal to the full tick's, and the table /
// JSON (the CLI: cli-bench.test.ts). No timing assertions.
import { beforeAll, describe, expect, it } from 'vitest';
import { type LaunchPlan, readPlanDir } from '../../codegen/index.js';
import { loadPlan } from '../../runtime/index.js';
import { type OccupancyResult, benchInputs, benchOccupancy, formatOccupancy, kindCount, liveTenants, parseOccupancy } from '../../src/measure/index.js';
import { expectLoomError } from '../support/errors.js';
import { compileBenchFleet } from './fleet-fixture.js';

let planDir = '';
let plan: LaunchPlan;

beforeAll(async () => {
  ({ planDir } = await compileBenchFleet());
  plan = readPlanDir(planDir);
});

function bits(t: { data: ArrayBufferView }): number[] {
  return Array.from(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
}

describe('occupancy live sets', () => {
  it('ceil(f x T) tenants, round robin over model kinds, in plan order, the same every time', () => {
    // the fixture: mlp-a and mlp-b share an architecture; mlp-c, gru-a and enc-a are one of a kind each
    expect(kindCount(plan)).toBe(4);
    expect(liveTenants(plan, 0.1)).toEqual(['mlp-a']);
    expect(liveTenants(plan, 0.2)).toEqual(['mlp-a']);
    expect(liveTenants(plan, 0.5)).toEqual(['mlp-a', 'mlp-c', 'gru-a']);
    expect(liveTenants(plan, 0.8)).toEqual(['mlp-a', 'mlp-c', 'gru-a', 'enc-a']); // every kind before mlp-b
    expect(liveTenants(plan, 1)).toEqual(['mlp-a', 'mlp-b', 'mlp-c', 'gru-a', 'enc-a']);
    expect(liveTenants(plan, 0.5)).toEqual(liveTenants(readPlanDir(planDir), 0.5));
  });

  it('fractions must be in (0, 1], named in the error', () => {
    expect(parseOccupancy('0.1,0.5,1')).toEqual([0.1, 0.5, 1]);
    expect(parseOccupancy(' 0.25 ')).toEqual([0.25]);
    for (const bad of ['0', '1.5', '-0.1', 'abc', 'NaN']) expectLoomError(() => parseOccupancy(`0.5,${bad}`), 'USAGE', `'${bad}' is not a fraction in (0, 1]`);
    expectLoomError(() => parseOccupancy('0.1,,1'), 'USAGE', 'comma-separated list');
    expectLoomError(() => parseOccupancy(''), 'USAGE', 'comma-separated list');
    expectLoomError(() => parseOccupancy('0.5,0.5'), 'USAGE', 'given twice');
    expectLoomError(() => liveTenants(plan, 0), 'USAGE', '(0, 1]');
  });
});

describe('benchOccupancy (CPU)', () => {
  it("a live tenant's outputs in an occupancy tick are bit-identical to the full tick's; idle tenants get none", async () => {
    const loaded = await loadPlan(planDir, { backend: 'cpu' });
    try {
      const all = benchInputs(plan);
      const full = await loaded.runTick(all);
      for (const f of [0.1, 0.5]) {
        const live = liveTenants(plan, f);
        const out = await loaded.runTick(Object.fromEntries(live.map((id) => [id, all[id]!])));
        expect(Object.keys(out).sort()).toEqual([...live].sort());
        for (const id of live) for (const [name, t] of Object.entries(full[id]!)) expect(bits(out[id]![name]!), `${f} ${id}.${name}`).toEqual(bits(t));
      }
    } finally {
      loaded.close();
    }
  });

  let result: OccupancyResult;
  it('one row per fraction with its live set, relative to the full tick; no device column on CPU; the target line', async () => {
    result = await benchOccupancy(planDir, { fractions: [0.1, 0.5, 1], backend: 'cpu', ticks: 3, warmup: 1 });
    expect(result.backend).toBe('cpu');
    expect(result.rows.map((r) => [r.fraction, r.live, r.liveRows])).toEqual([
      [0.1, ['mlp-a'], 3],
      [0.5, ['mlp-a', 'mlp-c', 'gru-a'], 7],
      [1, ['mlp-a', 'mlp-b', 'mlp-c', 'gru-a', 'enc-a'], 12],
    ]);
    for (const r of result.rows) {
      expect(r.tickUs.n).toBe(3);
      expect(r.deviceTickUs).toBeNull();
      expect(r.deviceRelativeToFull).toBeNull();
      expect(r.relativeToFull).toBeCloseTo(r.tickUs.p50 / result.full.tickUs.p50, 12);
      expect(r.maxRelErrorVsFull).toBe(0);
    }
    expect(result.fleet).toMatchObject({ tenants: 5, kinds: 4, rowsPerTick: 12 });
    expect(result.target).toMatchObject({
      fraction: 0.1,
      maxRatio: 0.4,
      measure: 'tick p50',
      ratio: result.rows[0]!.relativeToFull,
      met: result.rows[0]!.relativeToFull <= 0.4,
    });
    const text = formatOccupancy(result);
    expect(text).toMatch(/occupancy\s+live tenants\s+live rows\s+tick p50\s+tick p99\s+vs full$/m);
    expect(text).not.toContain('device');
    expect(text).toMatch(/^10%\s+1\s+3\s/m);
    expect(text).toMatch(/^target: 10% occupancy <= 0.4x full: (met|missed) \(\d+\.\d\dx, tick p50\)$/m);
    const without = formatOccupancy({ ...result, rows: result.rows.slice(1), target: { ...result.target, ratio: null, met: null } });
    expect(without).toContain('target: 10% occupancy <= 0.4x full: not measured (add 0.1 to --occupancy)');
  });
});
