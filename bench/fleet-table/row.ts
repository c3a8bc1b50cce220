// One row of the fleet table: Loom's numbers, the peer's, and what follows from them: the best peer, Loom's
// speedup over it, the roofline floor from the peaks the peer measured on the card, and the targets.
import type { LoomMeasurement, PlanWork } from './measure.js';
import { PEER_NAMES, type PeerName, type PeerPeaks, type PeerRun, peerMismatchBound } from './peer.js';

export const TARGET_SPEEDUP = 1.3; // Loom ≥ 1.3x the best peer
export const TARGET_FLOOR = 1.3; // Loom's device tick ≤ 1.3x the floor
export const TARGET_SPACE_ONLY = 0.8; // issue 13: the plan's device tick ≤ 0.8x Loom space-only's

export const BYTES_COUNTED =
  "floor bytes = Σ over the plan's launches of the bytes each reads and writes (weights once per launch that reads them, " +
  "activations every time a launch reads or writes them); PCIe floor = every tenant's input and output bytes at maxBatch / pinned host→device bandwidth";

export interface Floor {
  readonly flops: number;
  readonly bytes: number; // PlanWork.launchBytes
  readonly peakFlops: number;
  readonly copyBytesPerS: number;
  readonly computeUs: number;
  readonly memoryUs: number;
  readonly floorUs: number; // max(compute, memory)
  readonly bound: 'compute' | 'memory';
  readonly ioBytes: number;
  readonly h2dBytesPerS: number;
  readonly pcieUs: number; // host↔device bytes / h2d bandwidth, a separate floor of the end-to-end tick
}

// bf16 plans are bounded by the bf16 peak where the peer measured it; every other precision by fp32's.
export function rooflineFloor(work: Pick<PlanWork, 'flops' | 'launchBytes' | 'ioBytes'>, peaks: PeerPeaks, precision: string): Floor {
  const peakFlops = precision === 'bf16' && peaks.bf16_flops ? peaks.bf16_flops : peaks.fp32_flops;
  const computeUs = (work.flops / peakFlops) * 1e6;
  const memoryUs = (work.launchBytes / peaks.copy_bytes_per_s) * 1e6;
  return {
    flops: work.flops,
    bytes: work.launchBytes,
    peakFlops,
    copyBytesPerS: peaks.copy_bytes_per_s,
    computeUs,
    memoryUs,
    floorUs: Math.max(computeUs, memoryUs),
    bound: computeUs >= memoryUs ? 'compute' : 'memory',
    ioBytes: work.ioBytes,
    h2dBytesPerS: peaks.h2d_bytes_per_s,
    pcieUs: (work.ioBytes / peaks.h2d_bytes_per_s) * 1e6,
  };
}

export interface FleetRow {
  readonly fleet: string;
  readonly description: string;
  readonly tenants: number;
  readonly precision: string;
  readonly loom: LoomMeasurement;
  readonly peer: PeerRun;
  readonly peers: Readonly<Record<PeerName, { readonly p50Us: number; readonly p99Us: number } | null>>;
  readonly bestPeer: { readonly name: PeerName; readonly p50Us: number } | null;
  readonly peerMismatch: boolean; // the peer's outputs differ from Loom's by more than peerMismatchBound(precision)
  readonly speedup: number | null; // best peer p50 / Loom runTick p50 (both end to end)
  readonly floor: Floor | null;
  readonly loomOverFloor: number | null; // Loom device tick p50 (runTick p50 without one) / floor
  // Loom (space-time) over Loom space-only, p50 against p50: device ticks (CUDA), and wall clock end to end
  readonly overSpaceOnly: { readonly device: number | null; readonly wall: number | null };
  readonly targets: { readonly speedup: boolean | null; readonly floor: boolean | null; readonly spaceOnly: boolean | null };
  readonly seconds: Readonly<Record<string, number>>;
}

export function buildRow(
  base: { fleet: string; description: string; tenants: number; precision: string; seconds: Readonly<Record<string, number>> },
  loom: LoomMeasurement,
  peer: PeerRun,
  peaksOverride?: PeerPeaks | null,
): FleetRow {
  const result = peer.status === 'ran' || peer.status === 'failed' ? peer.result : null;
  const peers = Object.fromEntries(
    PEER_NAMES.map((n) => {
      const t = result?.peers[n];
      return [n, t ? { p50Us: t.p50_us, p99Us: t.p99_us } : null];
    }),
  ) as Record<PeerName, { p50Us: number; p99Us: number } | null>;
  let bestPeer: FleetRow['bestPeer'] = null;
  for (const n of PEER_NAMES) {
    const t = peers[n];
    if (t && (bestPeer === null || t.p50Us < bestPeer.p50Us)) bestPeer = { name: n, p50Us: t.p50Us };
  }
  const peaks = peaksOverride ?? result?.peaks ?? null;
  const floor = peaks ? rooflineFloor(loom.work, peaks, base.precision) : null;
  const loomTick = loom.deviceTickUs?.p50 ?? loom.runTickUs.p50;
  const speedup = bestPeer ? bestPeer.p50Us / loom.runTickUs.p50 : null;
  const loomOverFloor = floor && floor.floorUs > 0 ? loomTick / floor.floorUs : null;
  const so = loom.spaceOnly;
  const soDevice = so?.deviceTickUs?.p50;
  const overSpaceOnly = {
    device: soDevice && loom.deviceTickUs ? loom.deviceTickUs.p50 / soDevice : null,
    wall: so ? loom.runTickUs.p50 / so.runTickUs.p50 : null,
  };
  return {
    ...base,
    loom,
    peer,
    peers,
    bestPeer,
    peerMismatch: result !== null && !(typeof result.maxRelErr === 'number' && result.maxRelErr <= peerMismatchBound(base.precision)),
    speedup,
    floor,
    loomOverFloor,
    overSpaceOnly,
    targets: {
      speedup: speedup === null ? null : speedup >= TARGET_SPEEDUP,
      floor: loomOverFloor === null ? null : loomOverFloor <= TARGET_FLOOR,
      spaceOnly: overSpaceOnly.device === null ? null : overSpaceOnly.device <= TARGET_SPACE_ONLY,
    },
  };
}
