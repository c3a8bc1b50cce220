// bench/tenant-scale.ts and bench/tenant-fleet.ts, not their numbers: row names, fleets of many tenants from
// a few model files, the 10% spread, the table, and one whole run of the program on a 20-tenant row (CPU
// backend, bin/loom.js from dist/) that must fill every phase but the GPU-only columns.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type RowResult, formatRows, nominalBandwidth, rowSpec } from '../../bench/tenant-scale.js';
import { spreadTenants, writeTenantFleet } from '../../bench/tenant-fleet.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'loom-tenant-scale-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('tenant-scale helpers', () => {
  it('row names: zoo<N> is the zoo MLP, small<N> the --small-sizes MLP; anything else is refused', () => {
    expect(rowSpec('zoo1000', [256, 256, 16])).toEqual({ name: 'zoo1000', count: 1000, sizes: [784, 512, 512, 10] });
    expect(rowSpec('small10000', [256, 256, 16])).toEqual({ name: 'small10000', count: 10000, sizes: [256, 256, 16] });
    expect(() => rowSpec('big10', [8, 4])).toThrow("'big10' is not zoo<N> or small<N>");
    expect(() => rowSpec('zoo0', [8, 4])).toThrow('is not zoo<N>');
  });

  it('writes N tenants over a few model files, ids in plan order', () => {
    const f = writeTenantFleet(path.join(tmp, 'fleet'), { count: 120, sizes: [8, 16, 4], files: 3, sloMs: 20 });
    const m = JSON.parse(readFileSync(f.manifest, 'utf8')) as { tenants: Array<{ id: string; model: string; maxBatch: number; sloMs: number }> };
    expect(m.tenants).toHaveLength(120);
    expect(m.tenants[0]).toEqual({ id: 't-000', model: 'models/mlp-8x16x4-0.onnx', maxBatch: 1, sloMs: 20 });
    expect(m.tenants[119]!.model).toBe('models/mlp-8x16x4-2.onnx');
    expect(readdirSync(path.join(tmp, 'fleet/models'))).toHaveLength(3);
    expect(() => writeTenantFleet(tmp, { count: 0, sizes: [8, 4] })).toThrow('count must be a positive integer');
    expect(() => writeTenantFleet(tmp, { count: 2, sizes: [8] })).toThrow('sizes must be at least 2');
  });

  it('spreads 10% of the tenants over the whole fleet', () => {
    const all = Array.from({ length: 1000 }, (_, i) => i);
    const s = spreadTenants(all, 0.1);
    expect(s).toHaveLength(100);
    expect(s.slice(0, 3)).toEqual([0, 10, 20]);
    expect(spreadTenants([1, 2, 3], 0.1)).toEqual([1]);
    expect(() => spreadTenants(all, 0)).toThrow('fraction must be in (0, 1]');
  });

  it('names the card the floor is measured against', () => {
    expect(nominalBandwidth('NVIDIA H100 80GB HBM3').bytesPerS).toBe(3.0e12);
    expect(nominalBandwidth('NVIDIA H200').bytesPerS).toBe(4.8e12);
    expect(nominalBandwidth('some GPU').label).toContain('assumed');
  });

  it('the table shows a dash for what a row did not measure', () => {
    const r: RowResult = { row: 'zoo100', tenants: 100, sizes: [784, 512, 512, 10], skipped: ['compile: 3 s of the budget left'] };
    const [head, , line] = formatRows([r]).split('\n');
    expect(head).toMatch(/^row\s+tenants\s+compile s/);
    expect(line).toMatch(/^zoo100\s+100(\s+-)+$/);
  });
});

describe('tenant-scale program', () => {
  it('runs a 20-tenant row end to end on the CPU backend', () => {
    const out = path.join(tmp, 'results');
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        'bench/tenant-scale.ts',
        ...['--rows', 'small20', '--small-sizes', '8,16,4', '--ticks', '3', '--serve-s', '1', '--connections', '4', '--budget-s', '120', '--out', out],
      ],
      { cwd: ROOT, encoding: 'utf8', timeout: 120_000 },
    );
    expect(r.status, r.stderr + r.stdout).toBe(0);
    const file = readdirSync(out).find((f) => f.endsWith('-tenant-scale.json'))!;
    const json = JSON.parse(readFileSync(path.join(out, file), 'utf8')) as { rows: RowResult[] };
    const row = json.rows[0]!;
    expect(row.skipped).toEqual([]);
    expect(row.plan!.launches).toBeGreaterThan(0);
    expect(row.tick!.device).toBeNull(); // CPU: no device tick
    expect(row.tick!.tenthOverFull).toBeGreaterThan(0);
    expect(row.serve!.active).toBe(2);
    expect(row.serve!.okPerS).toBeGreaterThan(0);
    expect(row.serve!.metricsBytesIdle).toBeLessThan(200 * 1024);
    expect(row.serve!.lost + row.serve!.duplicated + row.serve!.mismatched).toBe(0);
  }, 150_000);
});
