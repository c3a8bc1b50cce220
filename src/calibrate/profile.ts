// The device profile `loom calibrate` writes and `loom compile --profile` reads: JSON, versioned, named by
// the card (or CPU) it was measured on. It holds, per launch kind, the measurements and the function fitted
// to them (src/planner/cost-fit.ts), plus the fixed launch cost and how far two independent launches
// overlap. The reader refuses anything else with one line naming what is wrong (README "Calibrating").
import { createHash } from 'node:crypto';
import { fail } from '../../ir/errors.js';
import { KiB, MiB, parseJsonText, readRegularFile } from '../../ir/files.js';
import { KERNEL_OPS } from '../../ir/contract/launch.js';
import { type CostModel, GEMM_MATHS, H100_FP32 } from '../planner/cost.js';
import { type KindFit, REQUIRED_KINDS } from '../planner/cost-fit.js';
import { round } from './numbers.js';

export const PROFILE_FORMAT = 'loom-device-profile';
export const PROFILE_VERSION = 1;
export const MAX_PROFILE_BYTES = 16 * MiB;
const MAX_NAME = 200;
const MAX_KINDS = 64;
const MAX_POINTS = 10_000;
const MAX_CORRECTION = 256;
const MAX_INFO_FIELDS = 64;
const MAX_INFO_STRING = 4 * KiB;

export interface ProfilePoint {
  readonly label: string; // e.g. "gemm 64x1024x1024 x8 f32", "softmax 64x1024"
  readonly flops: number;
  readonly bytes: number;
  readonly us: number; // measured time of one launch (gemm.epilogue, tick.io: differences of timings, which noise may make negative)
}

export interface ProfileKind {
  readonly fit: KindFit;
  readonly points: readonly ProfilePoint[];
}

// A kind as a profile stores it: the fit with its overhead and rates rounded to 6 digits, and its points.
export function profileKind(fit: KindFit, points: readonly ProfilePoint[]): ProfileKind {
  return { fit: { overheadUs: round(fit.overheadUs), flopsPerS: round(fit.flopsPerS), bytesPerS: round(fit.bytesPerS), correction: fit.correction }, points };
}

export interface ConcurrencyPoint {
  readonly label: string;
  readonly soloUs: number; // one launch (its plan's tick) alone
  readonly pairUs: number; // two of them, independent, each on its own stream, launched together
  readonly overlap: number; // (2 · solo − pair) / solo, clamped to [0, 1]: 1 = fully concurrent, 0 = serialized
}

export interface DeviceProfile {
  readonly format: typeof PROFILE_FORMAT;
  readonly version: typeof PROFILE_VERSION;
  readonly name: string; // the card ("NVIDIA H100 80GB HBM3") or the CPU model
  readonly backend: 'cpu' | 'cuda';
  readonly date: string; // ISO 8601
  readonly device: Readonly<Record<string, string | number>>; // driver / runtime / cuBLAS versions, capability, CPUs, ...
  // tickIo: when `loom calibrate --tick-io` re-measured tick.io alone (ISO 8601), if it did
  readonly settings: { readonly quick: boolean; readonly reps: number; readonly loom: string; readonly tickIo?: string };
  readonly launchOverheadUs: number; // the smallest launch's time (inside the captured tick on CUDA)
  readonly concurrency: readonly ConcurrencyPoint[]; // empty where not measured (the CPU backend)
  readonly kinds: Readonly<Record<string, ProfileKind>>;
}

// The profile keys: gemm.<math>, gemm_matvec.<math>, gemm_grouped.<math>, gemm.epilogue, kernel.<op>, tick.io.
export function isProfileKey(k: string): boolean {
  const [head, tail, ...rest] = k.split('.');
  if (rest.length > 0 || tail === undefined) return false;
  if (head === 'gemm') return tail === 'epilogue' || (GEMM_MATHS as readonly string[]).includes(tail);
  if (head === 'gemm_grouped' || head === 'gemm_matvec') return (GEMM_MATHS as readonly string[]).includes(tail);
  if (head === 'kernel') return (KERNEL_OPS as readonly string[]).includes(tail);
  return head === 'tick' && tail === 'io';
}

export interface LoadedProfile {
  readonly profile: DeviceProfile;
  readonly hash: string; // sha256 hex of the file's bytes
  readonly file: string;
}

export function readProfile(file: string): LoadedProfile {
  const bytes = readRegularFile(file, { what: 'device profile', maxBytes: MAX_PROFILE_BYTES, code: 'USAGE' });
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  const json = parseJsonText(text, { what: `device profile '${file}'`, code: 'USAGE' });
  return { profile: checkProfile(json, `device profile '${file}'`), hash: createHash('sha256').update(bytes).digest('hex'), file };
}

export function profileJson(p: DeviceProfile): string {
  return `${JSON.stringify(p, null, 2)}\n`;
}

export function profileHash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

// The cost model a profile describes: its fits price every launch (CostModel.calibrated).
export function costModelFromProfile(p: LoadedProfile): CostModel {
  const fits: Record<string, KindFit> = {};
  for (const [k, v] of Object.entries(p.profile.kinds)) fits[k] = v.fit;
  const pr = p.profile;
  return {
    ...H100_FP32,
    device: `${pr.name} (${pr.backend}, profile of ${pr.date.slice(0, 10)}, sha256 ${p.hash.slice(0, 12)})`,
    calibrated: {
      profile: { name: pr.name, hash: p.hash, date: pr.date },
      fits,
      ...(typeof pr.device.sms === 'number' && pr.device.sms > 0 ? { sms: pr.device.sms } : {}),
    },
  };
}

// ---- validation ----------------------------------------------------------------------------------

// Kinds whose points are differences of two timings (profile points' `us` may be below zero).
const DIFFERENCE_KINDS: ReadonlySet<string> = new Set(['gemm.epilogue', 'tick.io']);

export function checkProfile(json: unknown, what: string): DeviceProfile {
  const bad = (where: string, msg: string): never => fail('USAGE', `${what}: ${where} ${msg}`);
  const obj = (v: unknown, where: string): Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : bad(where, `must be an object, got ${typeName(v)}`);
  const str = (v: unknown, where: string, max = MAX_NAME): string => {
    if (typeof v !== 'string') return bad(where, `must be a string, got ${typeName(v)}`);
    if (v.length === 0 || v.length > max) return bad(where, `must be 1..${max} characters, got ${v.length}`);
    return v;
  };
  const num = (v: unknown, where: string, min = 0): number => {
    if (typeof v !== 'number' || !Number.isFinite(v)) return bad(where, `must be a finite number, got ${JSON.stringify(v) ?? typeName(v)}`);
    if (v < min) return bad(where, `must be >= ${min}, got ${v}`);
    return v;
  };
  const list = (v: unknown, where: string, max: number): unknown[] => {
    if (!Array.isArray(v)) return bad(where, `must be an array, got ${typeName(v)}`);
    if (v.length > max) return bad(where, `has ${v.length} entries, more than the ${max} a profile may hold`);
    return v;
  };

  const root = obj(json, 'the file');
  if (root.format !== PROFILE_FORMAT)
    bad(
      'field format',
      `must be '${PROFILE_FORMAT}', got ${JSON.stringify(root.format) ?? typeName(root.format)} (is this a device profile written by \`loom calibrate\`?)`,
    );
  if (root.version !== PROFILE_VERSION)
    bad(
      'field version',
      `is ${JSON.stringify(root.version) ?? typeName(root.version)}; this Loom reads version ${PROFILE_VERSION} (recalibrate with \`loom calibrate\`)`,
    );
  const name = str(root.name, 'field name');
  if (root.backend !== 'cpu' && root.backend !== 'cuda')
    bad('field backend', `must be 'cpu' or 'cuda', got ${JSON.stringify(root.backend) ?? typeName(root.backend)}`);
  const date = str(root.date, 'field date', 64);
  if (Number.isNaN(Date.parse(date))) bad('field date', `must be an ISO 8601 date, got '${date}'`);
  const devRaw = obj(root.device, 'field device');
  const devKeys = Object.keys(devRaw);
  if (devKeys.length > MAX_INFO_FIELDS) bad('field device', `has ${devKeys.length} fields, more than ${MAX_INFO_FIELDS}`);
  const device: Record<string, string | number> = {};
  for (const k of devKeys) {
    const v = devRaw[k];
    if (typeof v === 'number' && Number.isFinite(v)) device[k] = v;
    else if (typeof v === 'string' && v.length <= MAX_INFO_STRING) device[k] = v;
    else bad(`device.${k}`, `must be a finite number or a string of at most ${MAX_INFO_STRING} characters`);
  }
  const st = obj(root.settings, 'field settings');
  if (typeof st.quick !== 'boolean') bad('settings.quick', `must be true or false, got ${typeName(st.quick)}`);
  const settings = {
    quick: st.quick as boolean,
    reps: num(st.reps, 'settings.reps', 1),
    loom: str(st.loom, 'settings.loom', 64),
    ...(st.tickIo !== undefined ? { tickIo: str(st.tickIo, 'settings.tickIo', 64) } : {}),
  };
  const launchOverheadUs = num(root.launchOverheadUs, 'field launchOverheadUs');
  const concurrency = list(root.concurrency, 'field concurrency', 64).map((c, i): ConcurrencyPoint => {
    const o = obj(c, `concurrency[${i}]`);
    const overlap = num(o.overlap, `concurrency[${i}].overlap`);
    if (overlap > 1) bad(`concurrency[${i}].overlap`, `must be in [0, 1], got ${overlap}`);
    return {
      label: str(o.label, `concurrency[${i}].label`),
      soloUs: num(o.soloUs, `concurrency[${i}].soloUs`),
      pairUs: num(o.pairUs, `concurrency[${i}].pairUs`),
      overlap,
    };
  });
  const kindsRaw = obj(root.kinds, 'field kinds');
  const keys = Object.keys(kindsRaw);
  if (keys.length > MAX_KINDS) bad('field kinds', `has ${keys.length} kinds, more than ${MAX_KINDS}`);
  const kinds: Record<string, ProfileKind> = {};
  for (const k of keys) {
    if (!isProfileKey(k))
      bad(
        `kinds.${k}`,
        `is not a launch kind (expected gemm.<math>, gemm_grouped.<math> with math ${GEMM_MATHS.join('/')}, gemm.epilogue, kernel.<op> or tick.io)`,
      );
    const o = obj(kindsRaw[k], `kinds.${k}`);
    const f = obj(o.fit, `kinds.${k}.fit`);
    const at = `kinds.${k}.fit`;
    const correction = list(f.correction, `${at}.correction`, MAX_CORRECTION).map((c, i): [number, number] => {
      const pair = list(c, `${at}.correction[${i}]`, 2);
      if (pair.length !== 2) bad(`${at}.correction[${i}]`, 'must be [log10 µs, factor]');
      const x = num(pair[0], `${at}.correction[${i}][0]`, -Infinity);
      const y = num(pair[1], `${at}.correction[${i}][1]`);
      if (y <= 0) bad(`${at}.correction[${i}][1]`, `must be a positive factor, got ${y}`);
      return [x, y];
    });
    for (let i = 1; i < correction.length; i++)
      if (!(correction[i]![0] > correction[i - 1]![0])) bad(`${at}.correction`, 'must be in ascending order of its first column');
    const bytesPerS = num(f.bytesPerS, `${at}.bytesPerS`);
    if (bytesPerS <= 0) bad(`${at}.bytesPerS`, `must be positive, got ${bytesPerS}`);
    const fit: KindFit = { overheadUs: num(f.overheadUs, `${at}.overheadUs`), flopsPerS: num(f.flopsPerS, `${at}.flopsPerS`), bytesPerS, correction };
    const points = list(o.points, `kinds.${k}.points`, MAX_POINTS).map((p, i): ProfilePoint => {
      const q = obj(p, `kinds.${k}.points[${i}]`);
      const w = `kinds.${k}.points[${i}]`;
      return {
        label: str(q.label, `${w}.label`),
        flops: num(q.flops, `${w}.flops`),
        bytes: num(q.bytes, `${w}.bytes`),
        us: num(q.us, `${w}.us`, DIFFERENCE_KINDS.has(k) ? -Infinity : 0),
      }; // an epilogue's and tick.io's are differences of two timings: noise may make them negative
    });
    kinds[k] = { fit, points };
  }
  for (const any of REQUIRED_KINDS)
    if (!any.some((k) => kinds[k]))
      bad('field kinds', `has no '${any.join("' or '")}' (a profile needs ${REQUIRED_KINDS.map((a) => a.join(' or ')).join(' and ')}; recalibrate)`);
  return {
    format: PROFILE_FORMAT,
    version: PROFILE_VERSION,
    name,
    backend: root.backend as 'cpu' | 'cuda',
    date,
    device,
    settings,
    launchOverheadUs,
    concurrency,
    kinds,
  };
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}
