// `loom bench` through the CLI entry point (in process, so it runs the sources): the table, the JSON file,
// and one-line errors with exit 2.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { generateModel } from '../../models/index.js';
import type { OccupancyResult } from '../../src/measure/index.js';
import { FLEET, compileBenchFleet } from './fleet-fixture.js';
import { loomInProcess } from '../support/loom-cli.js';

let planDir = '';
let root = '';

beforeAll(async () => {
  ({ planDir, root } = await compileBenchFleet());
});

afterEach(() => {
  vi.restoreAllMocks();
});

const loom = loomInProcess;

describe('loom bench CLI', () => {
  it('prints the table and writes the JSON; exit 0', async () => {
    const json = path.join(root, 'bench.json');
    const r = await loom('bench', planDir, '--backend', 'cpu', '--ticks', '2', '--warmup', '1', '--json', json);
    expect(r.code, r.err).toBe(0);
    const lines = r.out.split('\n');
    for (const mode of ['time-only', 'space-only', 'space-time']) expect(lines.some((l) => l.startsWith(mode) && /µs|ms/.test(l))).toBe(true);
    expect(r.out).toMatch(/mode\s+launches\/tick\s+tick p50\s+tick p99\s+inferences\/s\s+FLOP\/s\s+bytes\/s\s+space-time speedup/);
    expect(r.out).toContain('backend      cpu on');
    const parsed = JSON.parse(readFileSync(json, 'utf8')) as { backend: string; modes: Array<{ mode: string; samplesUs: number[] }> };
    expect(parsed.backend).toBe('cpu');
    expect(parsed.modes.map((m) => [m.mode, m.samplesUs.length])).toEqual([
      ['time-only', 2],
      ['space-only', 2],
      ['space-time', 2],
    ]);
  });

  it('a bad plan dir or bad flags: one line on stderr, exit 2', async () => {
    const missing = await loom('bench', path.join(root, 'no-such-plan'), '--backend', 'cpu');
    expect(missing.code).toBe(2);
    expect(missing.err.trim().split('\n')).toHaveLength(1);
    expect(missing.err).toMatch(/^loom: error \[\w+\]: .*no-such-plan/);

    const bare = mkdtempSync(path.join(os.tmpdir(), 'loom-bench-bare-'));
    const empty = await loom('bench', bare);
    expect(empty.code).toBe(2);
    expect(empty.err.trim().split('\n')).toHaveLength(1);
    rmSync(bare, { recursive: true, force: true });

    const ticks = await loom('bench', planDir, '--ticks', '0');
    expect(ticks.code).toBe(2);
    expect(ticks.err).toContain('--ticks');
    const backend = await loom('bench', planDir, '--backend', 'tpu');
    expect(backend.code).toBe(2);
    expect(backend.err).toContain('--backend');
  });

  it('--occupancy prints the occupancy table and writes its JSON; a bad fraction is one line on stderr, exit 2', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'loom-occ-'));
    const json = path.join(dir, 'occ.json');
    const r = await loom('bench', planDir, '--occupancy', '0.1,1', '--backend', 'cpu', '--ticks', '2', '--warmup', '0', '--json', json);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('loom bench --occupancy');
    expect(r.out).toMatch(/^full \(1\.0\)\s+5\s+12\s/m);
    expect(r.out).toMatch(/^target: 10% occupancy <= 0.4x full: (met|missed)/m);
    const parsed = JSON.parse(readFileSync(json, 'utf8')) as OccupancyResult;
    expect(parsed.format).toBe('loom-bench-occupancy');
    expect(parsed.rows.map((x) => x.fraction)).toEqual([0.1, 1]);
    expect(typeof parsed.date).toBe('string');
    expect(parsed.device.length).toBeGreaterThan(0);
    rmSync(dir, { recursive: true, force: true });

    const bad = await loom('bench', planDir, '--occupancy', '0.1,2', '--backend', 'cpu');
    expect(bad.code).toBe(2);
    expect(bad.err.trim().split('\n')).toHaveLength(1);
    expect(bad.err).toMatch(/\[USAGE\].*--occupancy: '2' is not a fraction in \(0, 1\]/);
  });

  it('a model changed since compile: the baselines disagree with the plan, exit 2 before any timing', async () => {
    const fresh = await compileBenchFleet();
    const t = FLEET[0];
    writeFileSync(path.join(fresh.root, 'models', `${t.id}.onnx`), generateModel(t.kind, { ...t.opts, seed: 99 } as never).bytes);
    const r = await loom('bench', fresh.planDir, '--backend', 'cpu', '--ticks', '1', '--warmup', '0');
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/\[EVAL\].*different outputs than the plan.*models change/);
  });
});
