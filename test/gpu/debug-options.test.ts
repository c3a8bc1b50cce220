// The runtime's debug options that the GPU tests rely on, checked on the CPU backend too (runs everywhere):
// poisoned output slots are fully overwritten by a tick, and a CUDA-only call says so on the CPU.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writePlanDir } from '../../codegen/index.js';
import { generateModel } from '../../models/index.js';
import { loadPlan } from '../../runtime/index.js';
import { planFleet } from '../../src/planner/index.js';
import { makeFeeds } from '../oracle/harness.js';
import { type TestTenant, tenantFromBytes } from '../planner/fleet-helpers.js';

let dir = '';
let ts: TestTenant[] = [];

beforeAll(async () => {
  ts = [0, 1, 2].map((i) => tenantFromBytes(`mlp${i}`, generateModel('mlp', { seed: 40 + i, sizes: [16, 32, 8] }).bytes, 3));
  dir = mkdtempSync(path.join(tmpdir(), 'loom-debug-'));
  await writePlanDir(planFleet(ts.map((t) => t.input)), dir, { nvcc: 'off' });
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('runtime debug options (cpu)', () => {
  it('poisoned output slots are overwritten: same outputs as without poison, no NaN', async () => {
    const plain = await loadPlan(dir, { backend: 'cpu', threads: 2 });
    const poisoned = await loadPlan(dir, { backend: 'cpu', threads: 2, debug: { poisonOutputs: true } });
    try {
      for (const rows of [3, 1]) {
        const feeds = Object.fromEntries(ts.map((t, i) => [t.input.id, makeFeeds(t.input.graph, { batch: rows, seed: 9 + i })]));
        const a = await plain.runTick(feeds);
        const b = await poisoned.runTick(feeds);
        for (const t of ts) {
          const x = a[t.input.id]!.output!.data as Float32Array;
          const y = b[t.input.id]!.output!.data as Float32Array;
          expect(Array.from(y).some(Number.isNaN)).toBe(false);
          expect(Array.from(y)).toEqual(Array.from(x));
        }
      }
      expect(poisoned.backendInfo().backend).toBe('cpu');
      expect(() => poisoned.benchTick(1)).toThrow(/no captured tick/);
    } finally {
      plain.close();
      poisoned.close();
    }
  });
});
