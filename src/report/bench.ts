// Measured launch times for the report (`loom inspect --html r.html --bench times.json`). The format is
// deliberately small so any harness can write it:
//   { "device": "H100 SXM (optional label)",
//     "launches": [ { "id": 0, "us": 12.5 }, { "id": 1, "us": 3.1 }, ... ] }
// `id` is a launch id of plan.json; `us` the measured time of that launch in microseconds (a mean or median
// over ticks, as the harness sees fit). Launches the file omits are drawn with their predicted time and
// marked as such; an id the plan does not have is an error (the file belongs to another plan).
import { fail } from '../../ir/errors.js';
import { MiB, parseJsonText, readTextFile } from '../../ir/files.js';

export interface BenchTimes {
  readonly device: string | null;
  readonly us: ReadonlyMap<number, number>; // launch id → measured µs
}

export function readBenchFile(file: string, launchIds: readonly number[]): BenchTimes {
  const text = readTextFile(file, { what: 'bench file', maxBytes: 64 * MiB });
  const json = parseJsonText(text, { what: `bench file '${file}'`, code: 'USAGE' });
  return parseBench(json, launchIds, `bench file '${file}'`);
}

export function parseBench(json: unknown, launchIds: readonly number[], where = 'bench'): BenchTimes {
  const expected = 'expected {"launches": [{"id": <launch id>, "us": <microseconds>}, ...]}';
  if (json === null || typeof json !== 'object' || Array.isArray(json)) fail('USAGE', `${where}: not an object; ${expected}`);
  const obj = json as Record<string, unknown>;
  const device = obj.device;
  if (device !== undefined && device !== null && typeof device !== 'string') fail('USAGE', `${where}: "device" must be a string`);
  if (!Array.isArray(obj.launches)) fail('USAGE', `${where}: missing "launches" array; ${expected}`);
  const known = new Set(launchIds);
  const us = new Map<number, number>();
  obj.launches.forEach((entry: unknown, i: number) => {
    const at = `${where}: launches[${i}]`;
    if (entry === null || typeof entry !== 'object') fail('USAGE', `${at} is not an object; ${expected}`);
    const { id, us: t } = entry as { id?: unknown; us?: unknown };
    if (typeof id !== 'number' || !Number.isInteger(id)) fail('USAGE', `${at}: "id" must be an integer launch id, got ${JSON.stringify(id)}`);
    if (!known.has(id)) fail('USAGE', `${at}: the plan has no launch ${id} (is the bench file from another plan?)`);
    if (typeof t !== 'number' || !Number.isFinite(t) || t < 0)
      fail('USAGE', `${at}: "us" must be a finite number of microseconds >= 0, got ${JSON.stringify(t)}`);
    if (us.has(id)) fail('USAGE', `${at}: launch ${id} is listed twice`);
    us.set(id, t);
  });
  return { device: typeof device === 'string' ? device : null, us };
}
