// A mixed fleet of 18 tenants (zoo MLPs, an LSTM, encoders, ResNet, MobileNet, SqueezeNets and real PyTorch
// exports) on the cuda-emu backend: every kernel launch runs the generated CUDA kernel the GPU would run —
// the same kernels.cu, grids and segment tables — compiled for the host. Each tenant matches the CPU backend
// and onnxruntime, at full batch and at one row. On a machine without a GPU this is what checks codegen's
// kernels in real plans (the fixed forms, the 4-wide im2col, the conv bias row's ones), and that no kernel writes
// outside its outputs: not into another tenant's activations, not into the weights.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writePlanDir } from '../../codegen/index.js';
import type { Tensor } from '../../ir/tensor.js';
import { type LoadedPlan, loadPlan } from '../../runtime/index.js';
import { planFleet } from '../../src/planner/index.js';
import { makeFeeds, runOrt } from '../oracle/harness.js';
import { ortUnavailable } from '../support/ort.js';
import { type TestTenant, mixedFleet } from '../planner/fleet-helpers.js';
import { worstErrors } from '../runtime/precision-fleet.js';
import { EMU_SKIP_REASON } from './emu-env.js';

type Feeds = Record<string, Record<string, Tensor>>;

function feedsFor(ts: readonly TestTenant[], seed: number, rows: (t: TestTenant) => number): Feeds {
  const feeds: Feeds = {};
  ts.forEach((t, i) => {
    feeds[t.input.id] = makeFeeds(t.input.graph, { batch: rows(t), seed: seed + i, intRange: t.intRange ?? 50 });
  });
  return feeds;
}

// Both ways an f32 conv runs: im2col and a GEMM (the default), or the generated conv kernel (`--conv implicit`),
// here on the zoo CNNs and a real PyTorch export (cnn-bn).
describe.skipIf(EMU_SKIP_REASON !== null).each(['im2col', 'implicit'] as const)(
  `cuda-emu on a mixed fleet of 18 tenants, convs %s${EMU_SKIP_REASON ? ` (skipped: ${EMU_SKIP_REASON})` : ''}`,
  (convKernel) => {
    let dir = '';
    let ts: TestTenant[] = [];
    let cpu: LoadedPlan;
    let emu: LoadedPlan;

    beforeAll(async () => {
      ts = mixedFleet({ moreZoo: true });
      dir = mkdtempSync(path.join(tmpdir(), 'loom-emu-fleet-'));
      await writePlanDir(
        planFleet(
          ts.map((t) => t.input),
          { convKernel },
        ),
        dir,
      );
      cpu = await loadPlan(dir, { backend: 'cpu' });
      emu = await loadPlan(dir, { backend: 'cuda-emu' });
    }, 300_000);

    afterAll(() => {
      cpu?.close();
      emu?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('runs every kernel launch through the host-compiled kernels', () => {
      expect(emu.backend).toBe('cuda-emu');
      const kernels = emu.plan.launches.filter((l) => l.kind === 'kernel').length;
      expect(kernels).toBeGreaterThan(20);
      const templates = new Set(Object.values(emu.plan.kernels.grids).map((g) => g.name));
      expect(templates.size).toBeGreaterThan(10);
      const convs = emu.plan.launches.filter((l) => l.kind === 'kernel' && l.op.op === 'conv').length;
      if (convKernel === 'implicit') expect(convs).toBeGreaterThan(5);
      else expect(convs).toBe(0);
    });

    it('every tenant matches the CPU backend and onnxruntime (fp32, rel. error ≤ 1e-4)', async () => {
      for (const [tick, rows] of [(t: TestTenant) => t.input.maxBatch, () => 1].entries()) {
        const feeds = feedsFor(ts, 300 + 1000 * tick, rows);
        const [e, c] = [await emu.runTick(feeds), await cpu.runTick(feeds)];
        const before = Number(emu.backendInfo().emulatedKernelLaunches);
        expect(before, 'kernel launches ran emulated').toBeGreaterThan(0);
        // and each wrote nothing outside its outputs (the backend fails a launch that does)
        expect(Number(emu.backendInfo().writeCheckedLaunches)).toBe(before);
        for (const [id, err] of Object.entries(worstErrors(e, c))) expect(err, `${id}: cuda-emu vs cpu (tick ${tick})`).toBeLessThanOrEqual(1e-4);
        const noOrt = ortUnavailable();
        if (noOrt !== null) {
          process.stdout.write(`${noOrt}\n`);
          continue;
        }
        const ort: Record<string, Record<string, Tensor>> = {};
        for (const t of ts) ort[t.input.id] = await runOrt(t.model, feeds[t.input.id]!);
        for (const [id, err] of Object.entries(worstErrors(e, ort))) expect(err, `${id}: cuda-emu vs onnxruntime (tick ${tick})`).toBeLessThanOrEqual(1e-4);
      }
    });
  },
);
