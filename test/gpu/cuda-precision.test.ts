// Manifest precisions on the CUDA backend: the mixed fleet of test/runtime/precision-fleet.ts compiled from a
// manifest per precision. bf16 / fp16 (cuBLAS with half A/B, f32 C, CUBLAS_COMPUTE_32F): every tenant within
// 2e-2 of onnxruntime fp32 (limitFor) and of the CPU backend on the same plan; ticks repeat bit for bit.
// tf32: the plan's precision alone turns on CUBLAS_COMPUTE_32F_FAST_TF32 (≤ 5e-3); a load option overrides it.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPlan } from '../../runtime/index.js';
import { type PrecisionFleet, compilePrecision, fleetFeeds, limitFor, ortOutputs, report, worstErrors, writeFleetModels } from '../runtime/precision-fleet.js';
import { GPU_SKIP_REASON } from './gpu-env.js';

describe.skipIf(GPU_SKIP_REASON !== null)('CUDA backend: manifest precisions bf16, fp16, tf32', () => {
  let root = '';
  let fleet: PrecisionFleet;

  beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), 'loom-gpu-precision-'));
    mkdirSync(path.join(root, 'models'));
    fleet = writeFleetModels(path.join(root, 'models'));
  });

  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  for (const precision of ['bf16', 'fp16'] as const) {
    it(`${precision}: every tenant matches onnxruntime fp32 and the CPU backend within 2e-2; ticks repeat exactly`, async () => {
      const dir = path.join(root, precision);
      const tenants = await compilePrecision(fleet, precision, dir, 'auto');
      const gpu = await loadPlan(dir, { backend: 'cuda' });
      const cpu = await loadPlan(dir, { backend: 'cpu' });
      try {
        const info = gpu.backendInfo();
        process.stdout.write(
          `${precision}: ${String(info.device)}, compute ${String(info.compute)}, ${String(info.halfOperandGemmCalls)} half-operand cuBLAS calls of ${String(info.cublasCalls)}, graph ${String(info.graph)}\n`,
        );
        expect(info.compute).toBe('CUBLAS_COMPUTE_32F');
        expect(Number(info.halfOperandGemmCalls)).toBeGreaterThan(0);
        for (const [tick, rows] of [undefined, () => 1].entries()) {
          const feeds = fleetFeeds(fleet, tenants, 300 + 1000 * tick, rows);
          const got = await gpu.runTick(feeds);
          const vsOrt = worstErrors(got, await ortOutputs(fleet, feeds));
          const vsCpu = worstErrors(got, await cpu.runTick(feeds));
          report(`${precision} CUDA vs onnxruntime fp32 (tick ${tick})`, vsOrt);
          report(`${precision} CUDA vs CPU backend (tick ${tick})`, vsCpu);
          for (const [id, e] of Object.entries(vsOrt)) expect(e, `${precision} ${id} vs onnxruntime`).toBeLessThanOrEqual(limitFor(precision, id));
          for (const [id, e] of Object.entries(vsCpu)) expect(e, `${precision} ${id} vs CPU`).toBeLessThanOrEqual(2e-2);
          const again = await gpu.runTick(feeds);
          expect(worstErrors(again, got), 'a repeated tick').toEqual(Object.fromEntries(Object.keys(got).map((k) => [k, 0])));
        }
      } finally {
        gpu.close();
        cpu.close();
      }
    });
  }

  it('tf32: the manifest precision selects TF32 (≤ 5e-3); loadPlan precision fp32 overrides it (≤ 1e-4)', async () => {
    const dir = path.join(root, 'tf32');
    const tenants = await compilePrecision(fleet, 'tf32', dir, 'auto');
    const feeds = fleetFeeds(fleet, tenants, 700);
    const want = await ortOutputs(fleet, feeds);
    const tf32 = await loadPlan(dir, { backend: 'cuda' });
    try {
      expect(tf32.backendInfo().compute).toBe('CUBLAS_COMPUTE_32F_FAST_TF32');
      const errs = worstErrors(await tf32.runTick(feeds), want);
      report('tf32 (from the manifest) CUDA vs onnxruntime fp32', errs);
      for (const [id, e] of Object.entries(errs)) expect(e, id).toBeLessThanOrEqual(limitFor('tf32', id));
    } finally {
      tf32.close();
    }
    const fp32 = await loadPlan(dir, { backend: 'cuda', precision: 'fp32' });
    try {
      expect(fp32.backendInfo().compute).toBe('CUBLAS_COMPUTE_32F');
      const errs = worstErrors(await fp32.runTick(feeds), want);
      report('tf32 plan loaded with precision fp32: CUDA vs onnxruntime fp32', errs);
      for (const [id, e] of Object.entries(errs)) expect(e, id).toBeLessThanOrEqual(1e-4);
    } finally {
      fp32.close();
    }
  });
});
