// Row buckets on the CUDA backend (issue 12, item 3; native/src/backend_cuda_sparse.cc): a tick whose live tenants
// carry few rows runs its row-scaled GEMMs at m' = rowsUnit · bucket through a program per (mask, bucket) — the
// whole fleet's, or a sparse tick's — first eagerly, then as its own captured graph. Every tick must match the
// CPU backend (which runs the same buckets) tenant by tenant, under every sparse and overlap policy, with ticks of
// different buckets in flight together, and the backend must report the bucket it ran.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writePlanDir } from '../../codegen/index.js';
import { type LoadedPlan, loadPlan } from '../../runtime/index.js';
import { planFleet } from '../../src/planner/index.js';
import type { TestTenant } from '../planner/fleet-helpers.js';
import { worstErrors } from '../runtime/precision-fleet.js';
import { rowsFeeds, rowsFleet } from '../runtime/rows-fleet.js';
import { GPU_SKIP_REASON } from './gpu-env.js';
import { loadCudaWith } from './masked-fleet.js';

const VS_CPU = 1e-4;

// [rows per live tenant, the bucket the tick runs at (8 = every row)]
const TICKS: ReadonlyArray<readonly [Record<string, number>, number]> = [
  [{ 'mlp-0': 8, 'mlp-1': 8, 'mlp-2': 8, pad: 8, enc: 4, resnet: 4, lstm: 4 }, 8],
  [{ 'mlp-0': 1, 'mlp-1': 3, 'mlp-2': 2, pad: 4, enc: 1, resnet: 2, lstm: 3 }, 4],
  [{ 'mlp-0': 1, 'mlp-1': 1, 'mlp-2': 1, pad: 1, enc: 1, resnet: 1, lstm: 1 }, 1],
  [{ 'mlp-1': 2, enc: 1, lstm: 2 }, 2],
  [{ 'mlp-0': 1 }, 1],
  [{ resnet: 1, 'mlp-2': 2 }, 2],
  [{ 'mlp-2': 5, enc: 3 }, 8],
];

describe.skipIf(GPU_SKIP_REASON !== null)('CUDA backend: ticks at a row bucket', () => {
  let dir = '';
  let ts: TestTenant[] = [];
  let cpu: LoadedPlan;

  beforeAll(async () => {
    ts = rowsFleet();
    dir = mkdtempSync(path.join(tmpdir(), 'loom-gpu-rows-'));
    await writePlanDir(planFleet(ts.map((t) => t.input)), dir, { nvcc: 'auto' });
    cpu = await loadPlan(dir, { backend: 'cpu' });
  });

  afterAll(() => {
    cpu?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const policies: ReadonlyArray<Record<string, string>> = [
    {},
    { LOOM_CUDA_SPARSE: 'never' },
    { LOOM_CUDA_SPARSE: 'always', LOOM_CUDA_OVERLAP: 'always' },
    { LOOM_CUDA_SPARSE: 'auto', LOOM_CUDA_OVERLAP: 'never' },
  ];
  for (const env of policies) {
    it(`${JSON.stringify(env)}: every tick matches the CPU backend, three rounds (eager, capture, graph replay)`, async () => {
      const gpu = await loadCudaWith(dir, env);
      try {
        for (let round = 0; round < 3; round++) {
          for (const [k, [rows, bucket]] of TICKS.entries()) {
            const feeds = rowsFeeds(ts, rows, 100 * round + 10 * k);
            const got = await gpu.runTick(feeds);
            const want = await cpu.runTick(feeds);
            expect(Number(cpu.backendInfo().lastRowsBucket)).toBe(bucket);
            const info = gpu.backendInfo();
            expect(Number(info.lastRowsBucket), `round ${round}, tick ${k}`).toBe(bucket);
            // the bucket the CUDA backend ran: 0 for every row
            expect(Number(info.lastRowsBucketCuda), `round ${round}, tick ${k}`).toBe(bucket === 8 ? 0 : bucket);
            expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
            for (const [id, e] of Object.entries(worstErrors(got, want))) expect(e, `round ${round}, tick ${k}: ${id}`).toBeLessThanOrEqual(VS_CPU);
          }
        }
        const info = gpu.backendInfo();
        expect(Number(info.rowBucketsAvailable), String(info.sparseNote ?? '')).toBe(1);
        expect(Number(info.rowBucketTicksCuda)).toBe(3 * TICKS.filter(([, b]) => b < 8).length);
        expect(Number(info.sparseCaptures)).toBeGreaterThan(0); // the bucket programs were captured and replayed
      } finally {
        gpu.close();
      }
    });
  }

  it('ticks of different buckets in flight together match the CPU backend and settle in call order', async () => {
    const gpu = await loadCudaWith(dir, {}, { pipelineDepth: 4 });
    try {
      for (let round = 0; round < 3; round++) {
        const feeds = TICKS.map(([rows], k) => rowsFeeds(ts, rows, 5000 + 100 * round + k));
        const order: number[] = [];
        const outs = await Promise.all(feeds.map((f, k) => gpu.runTick(f).then((o) => (order.push(k), o))));
        expect(order).toEqual(feeds.map((_, k) => k));
        for (const [k, f] of feeds.entries()) {
          for (const [id, e] of Object.entries(worstErrors(outs[k]!, await cpu.runTick(f)))) {
            expect(e, `round ${round}, tick ${k}: ${id}`).toBeLessThanOrEqual(VS_CPU);
          }
        }
      }
    } finally {
      gpu.close();
    }
  });

  it('with graphs off (eager launches) the bucketed ticks still match', async () => {
    const gpu = await loadPlan(dir, { backend: 'cuda', debug: { graph: false } });
    try {
      for (const [k, [rows]] of TICKS.entries()) {
        const feeds = rowsFeeds(ts, rows, 9000 + k);
        for (const [id, e] of Object.entries(worstErrors(await gpu.runTick(feeds), await cpu.runTick(feeds)))) {
          expect(e, `tick ${k}: ${id}`).toBeLessThanOrEqual(VS_CPU);
        }
      }
    } finally {
      gpu.close();
    }
  });
});
