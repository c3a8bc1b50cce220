// The predicted tick of a laned plan: the lanes run as the device would run them, not as if side-by-side
// launches were free. Each launch takes its predicted time when alone; while several run at once they share
// the device's throughput. A launch's demand is the share of the device it uses alone: its work at the
// device's best rates (floorUs) over its predicted time — a latency-bound launch (a few CTAs, mostly launch
// overhead) asks little and overlaps fully, a launch that streams weights at full bandwidth asks all of it
// and serializes with anything else that does. While the running launches ask more than the whole device, each
// progresses at 1 / (their total demand). Launches of a lane run in order; a launch also waits for its
// dependencies on other lanes. (Measured on an H100, 2026-12-06: two latency-bound GEMMs overlap 100%, two
// bandwidth-bound ones 48%, two compute-bound ones 9%: `loom calibrate`'s concurrency points.)
export interface SimLaunch {
  readonly lane: number;
  readonly after: readonly number[]; // indices of earlier launches on other lanes it waits for
  readonly us: number; // predicted time alone
  readonly demand: number; // share of the device it uses alone, in (0, 1]
}

export function simulateLanes(launches: readonly SimLaunch[]): number {
  const n = launches.length;
  if (n === 0) return 0;
  const lanes = 1 + launches.reduce((m, l) => Math.max(m, l.lane), 0);
  const queue: number[][] = Array.from({ length: lanes }, () => []);
  launches.forEach((l, i) => queue[l.lane]!.push(i));
  const head = new Array<number>(lanes).fill(0);
  const busy = new Array<boolean>(lanes).fill(false);
  const done = new Uint8Array(n);
  const left = launches.map((l) => Math.max(0, l.us));
  let active: number[] = [];
  let finished = 0;
  let t = 0;
  for (;;) {
    for (let l = 0; l < lanes; l++) {
      if (busy[l]) continue;
      const i = queue[l]![head[l]!];
      if (i === undefined || !launches[i]!.after.every((w) => done[w] === 1)) continue;
      busy[l] = true;
      active.push(i);
    }
    if (active.length === 0) break;
    const demand = active.reduce((a, i) => a + Math.min(1, Math.max(1e-6, launches[i]!.demand)), 0);
    const rate = demand > 1 ? 1 / demand : 1;
    const dt = Math.min(...active.map((i) => left[i]!)) / rate;
    t += dt;
    const still: number[] = [];
    for (const i of active) {
      left[i] = left[i]! - dt * rate;
      if (left[i]! <= 1e-9) {
        done[i] = 1;
        finished++;
        const l = launches[i]!.lane;
        busy[l] = false;
        head[l] = head[l]! + 1;
      } else still.push(i);
    }
    active = still;
  }
  if (finished !== n) throw new Error(`simulateLanes: ${n - finished} of ${n} launches never ran (a wait on a later launch?)`);
  return t;
}
