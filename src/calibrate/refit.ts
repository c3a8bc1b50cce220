// `loom calibrate --refit FILE`: a profile's GEMM measurements re-keyed by today's rules and their kinds fitted
// again, without a GPU: the points a profile keeps are enough. Kinds split since a profile was written (the
// matrix-vector GEMMs, gemm_matvec.<math>, out of gemm.<math>) then get their own fits from the same measurements.
// Other kinds are kept as they are.
import { fail } from '../../ir/errors.js';
import { GEMM_MATHS, type GemmMath } from '../planner/cost.js';
import { gemmKey } from '../planner/cost-fit.js';
import { fitKind } from './fit.js';
import { type DeviceProfile, type ProfileKind, type ProfilePoint, profileKind } from './profile.js';

// "gemm 1x512x512 x64 f32" → its rows and math (the grid's label: src/calibrate/grid.ts gemmLabel)
const GEMM_LABEL = /^gemm (\d+)x(\d+)x(\d+) x(\d+) (\w+)$/;

function gemmPointKey(p: ProfilePoint, from: string): string {
  const m = GEMM_LABEL.exec(p.label);
  if (!m || !(GEMM_MATHS as readonly string[]).includes(m[5]!)) fail('USAGE', `refit: point '${p.label}' of kind ${from} is not a GEMM grid label`);
  return gemmKey(m[5] as GemmMath, Number(m[1]));
}

const isPlainGemmKind = (k: string): boolean => /^gemm(_matvec)?\.(f32|tf32|bf16|f16)$/.test(k);

export function refitProfile(p: DeviceProfile): { profile: DeviceProfile; changed: string[] } {
  const byKey = new Map<string, ProfilePoint[]>();
  const kept: Record<string, ProfileKind> = {};
  for (const [k, kind] of Object.entries(p.kinds)) {
    if (!isPlainGemmKind(k)) {
      kept[k] = kind;
      continue;
    }
    for (const pt of kind.points) {
      const key = gemmPointKey(pt, k);
      byKey.set(key, [...(byKey.get(key) ?? []), pt]);
    }
  }
  const kinds: Record<string, ProfileKind> = { ...kept };
  const changed: string[] = [];
  for (const [key, points] of [...byKey].sort(([a], [b]) => a.localeCompare(b))) {
    const before = p.kinds[key];
    if (before && before.points.length === points.length && points.every((q, i) => q.label === before.points[i]!.label)) {
      kinds[key] = before;
      continue;
    }
    kinds[key] = profileKind(fitKind(points, { compute: true }), points);
    changed.push(`${key} (${points.length} points)`);
  }
  const sorted = Object.fromEntries(Object.entries(kinds).sort(([a], [b]) => a.localeCompare(b)));
  return { profile: { ...p, kinds: sorted }, changed };
}
