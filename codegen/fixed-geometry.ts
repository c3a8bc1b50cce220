// Geometry-fixed kernels: when every segment of a pool / depthwise / im2col launch has the same geometry (the
// common case: equal tenants batched into one launch), the kernel is compiled with that geometry as constants
// instead of reading it from the segment table. The generic templates divide by runtime sizes in 64-bit
// (ox = i % ow, ...: the divide routine, dozens of instructions per item, and registers enough to cut
// occupancy); with constants every division is a multiply-shift in 32-bit, the window loops unroll, and the
// segment of an item is w / perSegment — no search. One kernel per distinct geometry, so a plan has a few more
// kernels; launches whose segments differ keep the generic kernel.
import type { KernelOp, Launch, PoolGeometry, Segment } from '../ir/contract/launch.js';
import { POOL_GEOMETRY_FIELDS, segmentOf } from '../ir/contract/launch.js';
import { segmentWork } from './work-items.js';

type KernelLaunch = Extract<Launch, { kind: 'kernel' }>;

const FIXED_OPS: ReadonlySet<KernelOp['op']> = new Set(['pool', 'depthwise', 'im2col']);
// every index the fixed kernels form (item, input element, output element) stays below this, so 32-bit math
// and the grid-stride step past the last item cannot overflow
const FIXED_MAX = 2 ** 30;

// The geometry every segment of the launch shares, or null (different geometries, an op without a fixed
// kernel, or sizes past 32-bit math).
export function fixedGeometry(l: KernelLaunch): PoolGeometry | null {
  if (!FIXED_OPS.has(l.op.op) || l.segments.length === 0) return null;
  const geoms = l.segments.map((s: Segment) => segmentOf(l.op, s) as { readonly geom?: PoolGeometry }).map((s) => s.geom);
  const g0 = geoms[0];
  if (g0 === undefined) return null;
  const same = (g: PoolGeometry | undefined): boolean => g !== undefined && POOL_GEOMETRY_FIELDS.every((f) => g[f] === g0[f]);
  if (!geoms.every(same)) return null;
  const total = segmentWork(l.op, l.segments[0]!) * l.segments.length; // every segment has as many (one geometry)
  const sizes = [
    total,
    g0.n * g0.c * g0.h * g0.w,
    g0.n * (g0.c * g0.kh * g0.kw + 1) * g0.oh * g0.ow,
    g0.h + g0.padTop + g0.padBottom,
    g0.w + g0.padLeft + g0.padRight,
  ];
  if (!sizes.every((v) => Number.isSafeInteger(v) && v < FIXED_MAX)) return null;
  // in the canonical field order: the kernel key (and so the kernel's name) must not depend on how the plan
  // spelled the object (a plan read back from a dump has its keys sorted)
  return Object.fromEntries(POOL_GEOMETRY_FIELDS.map((f) => [f, g0[f]])) as PoolGeometry;
}

// The template fragment that declares the geometry as constants, and each segment's work items.
export function fixedGeometryView(l: KernelLaunch, g: PoolGeometry): { geometry: string; per: number } {
  const c = (name: string, v: number): string => `${name} = ${v}`;
  const geometry = [
    c('N', g.n),
    c('C', g.c),
    c('H', g.h),
    c('W', g.w),
    c('OH', g.oh),
    c('OW', g.ow),
    c('KH', g.kh),
    c('KW', g.kw),
    c('SH', g.sh),
    c('SW', g.sw),
    c('PT', g.padTop),
    c('PL', g.padLeft),
    c('PB', g.padBottom),
    c('PR', g.padRight),
    c('DH', g.dh),
    c('DW', g.dw),
  ].join(', ');
  return { geometry: `constexpr int ${geometry};`, per: segmentWork(l.op, l.segments[0]!) };
}
