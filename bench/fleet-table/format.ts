// The fleet table as text: one row per fleet, then what every number means, each peer's status, and where
// Loom's device time goes (the top launches of an eager tick) for every fleet that was profiled.
import { fmtBytes, fmtUs } from '../../src/fleet/summary.js';
import { fmtCount } from '../../src/measure/index.js';
import { alignTable, ratioCell as ratio, usCell as us, yesNoCell as yn } from '../common.js';
import { PEER_NAMES, peerMismatchBound } from './peer.js';
import { SPACE_ONLY_AGREE } from './measure.js';
import { BYTES_COUNTED, type FleetRow, TARGET_FLOOR, TARGET_SPACE_ONLY, TARGET_SPEEDUP } from './row.js';

export interface TableMeta {
  readonly date: string;
  readonly backend: 'cpu' | 'cuda';
  readonly device: string; // Loom's
  readonly peerDevice: string | null;
  readonly iters: number;
}

export function formatFleetTable(rows: readonly FleetRow[], meta: TableMeta): string {
  const head = [
    'fleet',
    'prec',
    'tenants',
    'loom p50',
    'loom p99',
    'loom piped',
    'loom device',
    'space-only p50',
    'space-only device',
    'ST/SO device',
    ...PEER_NAMES,
    'best peer',
    'speedup',
    'floor',
    'PCIe floor',
    'loom/floor',
    'targets',
  ];
  const body = rows.map((r) => [
    r.fleet,
    r.precision,
    String(r.tenants),
    us(r.loom.runTickUs.p50),
    us(r.loom.runTickUs.p99),
    us(r.loom.pipelinedUsPerTick),
    us(r.loom.deviceTickUs?.p50),
    us(r.loom.spaceOnly?.runTickUs.p50),
    us(r.loom.spaceOnly?.deviceTickUs?.p50),
    ratio(r.overSpaceOnly.device),
    ...PEER_NAMES.map((n) => us(r.peers[n]?.p50Us)),
    r.bestPeer ? r.bestPeer.name : peerCell(r),
    ratio(r.speedup),
    r.floor ? `${fmtUs(r.floor.floorUs)} ${r.floor.bound === 'compute' ? 'C' : 'M'}` : '-',
    us(r.floor?.pcieUs),
    ratio(r.loomOverFloor),
    `${yn(r.targets.speedup)}/${yn(r.targets.floor)}/${yn(r.targets.spaceOnly)}`,
  ]);
  const out = [
    `loom fleet table — ${meta.date}; Loom on ${meta.backend} (${meta.device})${meta.peerDevice ? `; peer on ${meta.peerDevice}` : ''}; ${meta.iters} timed ticks`,
    '',
    ...alignTable(head, body, 1),
    '',
    'loom p50/p99: wall clock around runTick, inputs in host memory → outputs in host memory (what a user calls)',
    'loom piped: wall time per tick with 3 ticks in flight (runTick called while earlier ticks run; throughput, not latency)',
    `loom device: CUDA events around a replay of the captured tick (CUDA backend only); peers: ${PEER_NAMES.join(', ')}, p50 wall per tick, host in → host out`,
    "space-only: Loom with every tenant planned alone (loom bench's space-only mode, same process): p50 = every tenant's runTick in flight at once, host in → host out; device = every plan's captured tick launched at once, each on its own CUDA stream, first start event to last stream's end",
    `ST/SO device: loom device p50 / space-only device p50 (issue 13: ≤ ${TARGET_SPACE_ONLY}x; bench/space-time.ts adds time-only)`,
    `speedup: best peer p50 / loom p50 (both end to end); targets: speedup ≥ ${TARGET_SPEEDUP} / loom device tick (loom p50 without one) ≤ ${TARGET_FLOOR}x floor / ST/SO device ≤ ${TARGET_SPACE_ONLY}x`,
    "prec: the plan's precision and the peers' (fp32 = TF32 off on both sides; tf32 = TF32 GEMM/conv operands; bf16 = torch modules in bfloat16)",
    `floor: max(FLOPs / peak FLOP/s, bytes / copy bandwidth), peaks measured by the peer on its card; C = compute-bound, M = memory-bound`,
    BYTES_COUNTED,
    '',
  ];
  for (const r of rows) out.push(...rowNotes(r));
  return out.join('\n').trimEnd();
}

function peerCell(r: FleetRow): string {
  switch (r.peer.status) {
    case 'ran':
    case 'failed':
      return 'failed';
    case 'skipped':
      return 'no peers';
    case 'unavailable':
      return 'no torch';
    default: {
      const never: never = r.peer;
      throw new Error(`unknown peer status ${JSON.stringify(never)}`);
    }
  }
}

function rowNotes(r: FleetRow): string[] {
  const w = r.loom.work;
  const lines = [
    `${r.fleet} (${r.precision}): ${r.description}; ${w.launches} launches per tick for ${w.tenantLayers} tenant steps; ${fmtCount(w.flops)}FLOP, ${fmtBytes(w.launchBytes)} launch bytes (weights ${fmtBytes(w.weightBytes)}), ${fmtBytes(w.ioBytes)} host↔device`,
  ];
  switch (r.peer.status) {
    case 'ran':
      lines.push(`  peer: ran in ${r.peer.seconds.toFixed(0)} s, worst rel. error vs Loom ${r.peer.result.maxRelErr?.toExponential(2) ?? 'NaN'}`);
      break;
    case 'failed':
      lines.push(`  peer: FAILED: ${r.peer.reason}`);
      break;
    case 'skipped':
    case 'unavailable':
      lines.push(`  peer: not run: ${r.peer.reason}`);
      break;
    default: {
      const never: never = r.peer;
      throw new Error(`unknown peer status ${JSON.stringify(never)}`);
    }
  }
  if (r.peerMismatch)
    lines.push(
      `  PEER MISMATCH: the peer's outputs differ from Loom's by more than ${peerMismatchBound(r.precision)} at ${r.precision} (norm-wise relative): its timings are not of the same model`,
    );
  const so = r.loom.spaceOnly;
  if (so) {
    lines.push(
      `  space-only: ${so.plans} plans, ${so.launches} launches per tick; worst rel. error vs the plan ${so.maxRelErrorVsPlan.toExponential(2)}${so.deviceError ? `; no device time: ${so.deviceError}` : ''}`,
    );
    if (!so.agrees)
      lines.push(
        `  SPACE-ONLY MISMATCH: its outputs differ from the plan's by more than ${SPACE_ONLY_AGREE[r.precision] ?? SPACE_ONLY_AGREE.fp32} at ${r.precision}: the two do not run the same models`,
      );
  }
  if (r.floor) {
    const f = r.floor;
    lines.push(
      `  floor: compute ${fmtUs(f.computeUs)} (${fmtCount(f.flops)}FLOP at ${fmtCount(f.peakFlops)}FLOP/s), memory ${fmtUs(f.memoryUs)} (${fmtBytes(f.bytes)} at ${fmtCount(f.copyBytesPerS)}B/s); PCIe ${fmtUs(f.pcieUs)} (${fmtBytes(f.ioBytes)} at ${fmtCount(f.h2dBytesPerS)}B/s)`,
    );
  }
  const p = r.loom.profile;
  if (p) {
    lines.push(`  where the device time goes (eager tick, launches summed ${fmtUs(p.eagerLaunchUs)}; top ${p.top.length}):`);
    for (const t of p.top)
      lines.push(
        `    #${String(t.id).padEnd(5)} ${t.kind.padEnd(9)} ${t.op.padEnd(9)} ${fmtUs(t.us).padStart(10)} ${(100 * t.share).toFixed(1).padStart(5)}%  ${t.label}${t.shapes ? `  [${t.shapes.length > 80 ? `${t.shapes.slice(0, 77)}...` : t.shapes}]` : ''}`,
      );
  }
  return lines;
}
