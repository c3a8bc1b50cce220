// The cost model: a roofline per launch plus a fixed launch overhead. Defaults describe an H100 running
// fp32 without TF32. It predicts each launch and the same work done as one launch per tenant step, and
// decides whether a stage's GEMMs go into one grouped launch or separate ones.
export interface CostModel {
  readonly device: string;
  readonly peakFlops: number; // FLOP/s
  readonly bandwidth: number; // bytes/s
  readonly launchUs: number; // fixed cost of one launch
  readonly groupedEfficiency: number; // a grouped GEMM reaches this fraction of a strided one's rate
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

// One launch doing `flops` and moving `bytes`, in microseconds.
export function launchUs(m: CostModel, flops: number, bytes: number, efficiency = 1): number {
  return m.launchUs + (Math.max(flops / m.peakFlops, bytes / m.bandwidth) / efficiency) * 1e6;
}

export function floorUs(m: CostModel, flops: number, bytes: number): number {
  return Math.max(flops / m.peakFlops, bytes / m.bandwidth) * 1e6;
}

export interface Work {
  readonly flops: number;
  readonly bytes: number;
}

// Several signature groups of GEMMs at one stage: one grouped launch, or one launch per group? The groups of
// one stage never depend on each other, so with parallel lanes (src/planner/lanes.ts) separate launches can
// overlap: they then cost the longest of them, not their sum.
export function groupedPays(m: CostModel, groups: readonly Work[], parallel = false): boolean {
  const each = groups.map((g) => launchUs(m, g.flops, g.bytes));
  const separate = parallel ? Math.max(...each) : each.reduce((a, b) => a + b, 0);
  const total = groups.reduce((a, g) => ({ flops: a.flops + g.flops, bytes: a.bytes + g.bytes }), { flops: 0, bytes: 0 });
  return launchUs(m, total.flops, total.bytes, m.groupedEfficiency) <= separate;
}
