// `loom bench` names how the CUDA backend runs each GEMM launch (its load-time choice, backendInfo gemmPaths) next
// to the cost model's prediction and the measured time.
import { describe, expect, it } from 'vitest';
import { type PredictionCheck, gemmPathsOf } from '../../src/measure/predicted.js';
import { formatPredictions } from '../../src/measure/predicted-format.js';

const INFO = {
  gemmPaths:
    '28: cublasLt algo 0 (C=residual, bias) 21.7 us (was 23.7 us); 67: tiled kernel, split-K 4, epilogue fused 21.7 us (was 26.3 us); ' +
    '79: tiled kernel, split-K 4, epilogue fused 21.7 us (the choice of launch 67, same shape); 5: cublas strided + epilogue kernel',
  gemmPathsNote: 'LOOM_CUDA_FUSE=auto, LOOM_CUDA_LT=auto: of 67 gemm launches, 45 apply their epilogue in the GEMM',
  device: 'NVIDIA H100 80GB HBM3',
};

describe('the GEMM paths in loom bench', () => {
  it('reads each launch path from backendInfo, commas and parentheses inside a path kept', () => {
    const p = gemmPathsOf(INFO);
    expect([...p.byLaunch.keys()]).toEqual([28, 67, 79, 5]);
    expect(p.byLaunch.get(28)).toBe('cublasLt algo 0 (C=residual, bias) 21.7 us (was 23.7 us)');
    expect(p.byLaunch.get(79)).toBe('tiled kernel, split-K 4, epilogue fused 21.7 us (the choice of launch 67, same shape)');
    expect(p.byLaunch.get(5)).toBe('cublas strided + epilogue kernel');
    expect(p.note).toBe(INFO.gemmPathsNote);
    // the CPU backend (no such fields), or a malformed value: nothing
    expect(gemmPathsOf({ threads: 4 })).toEqual({ byLaunch: new Map() });
    expect(gemmPathsOf({ gemmPaths: 42, gemmPathsNote: '' }).byLaunch.size).toBe(0);
  });

  it('prints the summary and a path column where the backend reported paths, none otherwise', () => {
    const launch = (id: number, path?: string) => ({
      id,
      stage: 1,
      kind: 'batched',
      op: 'gemm',
      label: `gemm 128x64x1152 (2 tenants)`,
      predictedUs: 12,
      measuredUs: 26,
      errorPct: ((12 - 26) / 26) * 100,
      ...(path ? { path } : {}),
    });
    const base: PredictionCheck = {
      costModel: 'test card',
      profile: { name: 'test card', hash: 'a'.repeat(64) },
      launchTiming: 'device time of each launch in an eager tick (CUDA events), median of 5',
      tick: { predictedUs: 800, measuredUs: 1000, errorPct: -20, measured: 'device p50' },
      launchSum: { predictedUs: 24, measuredUs: 52, errorPct: -53.8 },
      byKind: [{ kind: 'batched gemm', launches: 2, predictedUs: 24, measuredUs: 52, errorPct: -53.8 }],
      launches: [launch(67, gemmPathsOf(INFO).byLaunch.get(67)), launch(3)],
      gemmPaths: INFO.gemmPathsNote,
    };
    const text = formatPredictions(base, true);
    expect(text).toContain(`  gemm paths   ${INFO.gemmPathsNote}`);
    expect(text).toMatch(/path \(chosen at load\)/);
    expect(text).toMatch(/67 gemm 128x64x1152 \(2 tenants\) .* tiled kernel, split-K 4, epilogue fused 21\.7 us \(was 26\.3 us\)/);
    const plain = formatPredictions({ ...base, launches: [launch(3)], gemmPaths: undefined } as PredictionCheck, true);
    expect(plain).not.toContain('gemm paths');
    expect(plain).not.toContain('chosen at load');
  });
});
