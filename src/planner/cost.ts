// The cost model. Without a device profile: a roofline per launch plus a fixed launch overhead, with
// defaults describing an H100 running fp32 without TF32. With one (`loom calibrate`, `loom compile
// --profile`): per launch kind a function fitted to the card's measurements (cost-fit.ts). It predicts each
// launch and the same work done as one launch per tenant step, and decides whether a stage's GEMMs go into
// one grouped launch or separate ones.
import type { KernelOpName } from '../../ir/contract/launch.js';
import type { Precision } from '../../ir/contract/plan.js';
import { type CalibratedCost, calibratedFloorUs, calibratedLaunchUs, calibratedOccupancy, calibratedOverheadUs, calibratedTickIoUs } from './cost-fit.js';
import type { GemmBlocks, Work } from './work.js';

export type { Work } from './work.js';

export interface CostModel {
  readonly device: string;
  readonly peakFlops: number; // FLOP/s
  readonly bandwidth: number; // bytes/s
  readonly launchUs: number; // fixed cost of one launch
  readonly groupedEfficiency: number; // a grouped GEMM reaches this fraction of a strided one's rate
  // A device profile's fitted functions: when present they price every launch and the roofline fields
  // above are unused.
  readonly calibrated?: CalibratedCost;
}

export const H100_FP32: CostModel = {
  device: 'H100-like (fp32, no TF32): 50 TFLOP/s, 3.0 TB/s, 4 us per launch',
  peakFlops: 50e12,
  bandwidth: 3.0e12,
  launchUs: 4,
  groupedEfficiency: 0.85,
};

export function costModel(overrides: Partial<CostModel> = {}): CostModel {
  return { ...H100_FP32, ...overrides };
}

// The arithmetic a GEMM runs in: its operand dtype, or tf32 for f32 operands in a tf32 plan.
export type GemmMath = 'f32' | 'tf32' | 'bf16' | 'f16';
export const GEMM_MATHS: readonly GemmMath[] = ['f32', 'tf32', 'bf16', 'f16'];

export function gemmMath(dtype: string, precision: Precision): GemmMath {
  if (dtype === 'bf16') return 'bf16';
  if (dtype === 'f16') return 'f16';
  return precision === 'tf32' ? 'tf32' : 'f32';
}

// What the model sees of one launch (or of one tenant step run as its own launch).
export interface GemmLaunchWork extends Work {
  readonly kind: 'gemm' | 'gemm_grouped';
  readonly math: GemmMath;
  readonly epilogueBytes: number; // C's bytes in entries with a bias or activation (gemmEpilogueBytes)
  readonly rows?: number; // the most rows (m) of any of its GEMMs: at most MATVEC_ROWS prices it as a matrix-vector product
  readonly blocks?: GemmBlocks; // its output blocks over all GEMMs (work.ts gemmBlocks): a profile's wave floor
}

// GEMMs of one row per entry (batch-1 inference: matrix-vector products) are bandwidth-bound, and read the
// weights at 2.3-2.8 TB/s on an H100 where a few rows more may read them at 0.5-2.6: a calibrated profile
// prices them by their own fit (gemm_matvec.<math>). One fit over every shape priced them ~1.7x too high
// (median error on the H100 profile's m = 1 points: 80% with one fit, 4% with their own; 2026-12-06).
export const MATVEC_ROWS = 1;
export interface KernelLaunchWork extends Work {
  readonly kind: 'kernel';
  readonly op: KernelOpName;
}
export type LaunchWork = GemmLaunchWork | KernelLaunchWork;

export function launchUs(m: CostModel, w: LaunchWork): number {
  if (m.calibrated) return calibratedLaunchUs(m.calibrated, w);
  return rooflineUs(m, w.flops, w.bytes, w.kind === 'gemm_grouped' ? m.groupedEfficiency : 1);
}

// The share of the device a launch uses while it runs alone: the part of its predicted time that is work at
// its kind's rates, not fixed launch cost (src/planner/lane-sim.ts shares the device by it).
export function launchDemand(m: CostModel, w: LaunchWork): number {
  const total = launchUs(m, w);
  if (!(total > 0)) return 0;
  const fixed = m.calibrated ? calibratedOverheadUs(m.calibrated, w) : m.launchUs;
  const occupancy = m.calibrated ? calibratedOccupancy(m.calibrated, w) : 1; // a wave-bound GEMM leaves SMs to others
  return Math.min(1, Math.max(0, (1 - fixed / total) * occupancy));
}

// The roofline: one launch doing `flops` and moving `bytes`, in microseconds.
export function rooflineUs(m: CostModel, flops: number, bytes: number, efficiency = 1): number {
  return m.launchUs + (Math.max(flops / m.peakFlops, bytes / m.bandwidth) / efficiency) * 1e6;
}

// What a tick costs besides its launches: a profile's fixed cost and io copies (`ioBytes`: every tenant's
// input and output slots); the default roofline counts none.
export function tickIoUs(m: CostModel, ioBytes: number): number {
  return m.calibrated ? calibratedTickIoUs(m.calibrated, ioBytes) : 0;
}

// The whole tick's work at the device's best rates, with no launch overhead.
export function floorUs(m: CostModel, flops: number, bytes: number): number {
  if (m.calibrated) return calibratedFloorUs(m.calibrated, flops, bytes);
  return Math.max(flops / m.peakFlops, bytes / m.bandwidth) * 1e6;
}

// Several signature groups of GEMMs at one stage: one grouped launch, or one launch per group? The groups of
// one stage never depend on each other, so with parallel lanes (src/planner/lanes.ts) separate launches can
// overlap: they then cost the longest of them, not their sum.
export function groupedPays(m: CostModel, groups: readonly GemmLaunchWork[], parallel = false): boolean {
  const each = groups.map((g) => launchUs(m, { ...g, kind: 'gemm' }));
  const separate = parallel ? Math.max(...each) : each.reduce((a, b) => a + b, 0);
  const total = groups.reduce((a, g) => ({ flops: a.flops + g.flops, bytes: a.bytes + g.bytes, epilogueBytes: a.epilogueBytes + g.epilogueBytes }), {
    flops: 0,
    bytes: 0,
    epilogueBytes: 0,
  });
  return launchUs(m, { kind: 'gemm_grouped', math: groups[0]!.math, ...total }) <= separate;
}
