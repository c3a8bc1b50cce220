// bench/space-time.ts's table: one line per fleet with the three device ticks, the two ratios and whether
// issue 13's targets are met, then the wall-clock ratios and what every number means.
import { alignTable, ratioCell as ratio, usCell as us, yesNoCell as yn } from '../common.js';
import { type SpaceTimeEntry, TARGET_SPACE_ONLY, TARGET_TIME_ONLY } from './row.js';

export interface SpaceTimeMeta {
  readonly date: string;
  readonly backend: 'cpu' | 'cuda';
  readonly device: string;
  readonly ticks: number;
  readonly branching?: string; // the plans' --branching (absent: never)
}

export function formatSpaceTime(entries: readonly SpaceTimeEntry[], meta: SpaceTimeMeta): string {
  const head = [
    'fleet',
    'tenants',
    'launches TO/SO/ST',
    'time-only dev',
    'space-only dev',
    'space-time dev',
    'ST/SO',
    'ST/TO',
    'targets',
    'wall ST/SO',
    'wall ST/TO',
  ];
  const body = entries.map((e) => {
    if (e.status === 'failed') return [e.fleet, '-', '-', '-', '-', '-', '-', '-', 'FAILED', '-', '-'];
    const r = e.row;
    const m = r.modes;
    return [
      r.fleet,
      String(r.tenants),
      `${m['time-only'].launches}/${m['space-only'].launches}/${m['space-time'].launches}`,
      us(m['time-only'].deviceP50Us),
      us(m['space-only'].deviceP50Us),
      us(m['space-time'].deviceP50Us),
      ratio(r.device.vsSpaceOnly),
      ratio(r.device.vsTimeOnly),
      `${yn(r.targets.spaceOnly)}/${yn(r.targets.timeOnly)}`,
      ratio(r.wall.vsSpaceOnly),
      ratio(r.wall.vsTimeOnly),
    ];
  });
  const lines = [
    `loom space-time vs space-only vs time-only — ${meta.date}; ${meta.backend} (${meta.device}); fp32; every tenant at maxBatch; ${meta.ticks} timed ticks per mode; plans --branching ${meta.branching ?? 'never'}`,
    '',
    ...alignTable(head, body, 1),
    '',
    "time-only: one plan, every tenant step its own launch, tenants one after another; space-only: every tenant planned alone, all its plans' captured ticks launched at once, each on its own CUDA stream; space-time: the compiled plan",
    'dev: p50 of CUDA events around the captured tick (H2D from pinned staging, the launches, D2H to pinned staging); space-only from one start event to the last stream’s end',
    `targets (issue 13, device ticks): ST/SO ≤ ${TARGET_SPACE_ONLY}x / ST/TO ≤ ${TARGET_TIME_ONLY}x; wall: p50 wall clock around one tick of each mode, host in → host out (loom bench's tick p50)`,
    '',
  ];
  for (const e of entries) {
    if (e.status === 'failed') lines.push(`${e.fleet}: ${e.description}; FAILED: ${e.reason}`);
    else lines.push(`${e.row.fleet}: ${e.row.description}; worst rel. error of a mode vs the plan ${e.row.maxRelErrorVsSpaceTime.toExponential(2)}`);
  }
  return lines.join('\n').trimEnd();
}
