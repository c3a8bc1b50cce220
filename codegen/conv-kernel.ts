// The generated convolution kernel (templates/conv.cu.hbs): an f32 conv as one implicit GEMM per image,
// out [M, P] = W [M, K] · cols [K, P] (K = c·kh·kw, P = oh·ow), each block computing one BM × BN tile of out with
// the tile of cols formed from the image as it is loaded — no im2col launch, no columns written and read back.
// The geometry and M are compiled in, so a launch's segments must share them (the planner batches convs only
// of one shape: src/planner/lower-gemm.ts).
import { fail } from '../ir/errors.js';
import { type Launch, POOL_GEOMETRY_FIELDS, type PoolGeometry, segmentOf } from '../ir/contract/launch.js';

type KernelLaunch = Extract<Launch, { kind: 'kernel' }>;

export const CONV_BLOCK = 256; // 16 x 16 threads, each TM x TN outputs (strided by 16 in both)

export interface ConvTile {
  readonly bm: number; // output channels per block
  readonly bn: number; // output positions per block
}

// 128-wide where the dimension fills it (fewer, fuller blocks: up to 8 x 8 outputs per thread), else 64. Deep
// layers (few positions, many channels: ResNet-18's 512 x 7 x 7) keep 64 channels a block, so an image still
// makes several blocks: 32 images of 512 x 49 are 256 blocks this way, 128 — under one per SM — at 128.
export function convTile(m: number, p: number): ConvTile {
  return { bm: m >= 128 && p >= 256 ? 128 : 64, bn: p >= 1024 ? 128 : 64 };
}

// Blocks (work items) of one image: tiles of out.
export function convTiles(m: number, p: number): number {
  const t = convTile(m, p);
  return Math.ceil(m / t.bm) * Math.ceil(p / t.bn);
}

// The geometry and M every segment of a conv launch shares (canonical field order: it is part of the kernel key).
export function convShape(l: KernelLaunch): { readonly geom: PoolGeometry; readonly m: number } {
  const where = `launch ${l.id} ('conv')`;
  const segs = l.segments.map((s) => segmentOf(l.op as Extract<KernelLaunch['op'], { op: 'conv' }>, s));
  const s0 = segs[0] ?? fail('PLAN_INVALID', `${where}: a kernel launch needs at least one segment`);
  for (const [i, s] of segs.entries()) {
    if (s.dims[0] !== s0.dims[0] || !POOL_GEOMETRY_FIELDS.every((f) => s.geom[f] === s0.geom[f]))
      fail('PLAN_INVALID', `${where}: segment ${i} has another geometry or output channel count than segment 0; the conv kernel is compiled for one`);
  }
  const geom = Object.fromEntries(POOL_GEOMETRY_FIELDS.map((f) => [f, s0.geom[f]])) as PoolGeometry;
  const m = s0.dims[0]!;
  // the kernel's index math is 32-bit
  const k = geom.c * geom.kh * geom.kw;
  if (![m * k, geom.c * geom.h * geom.w, m * geom.oh * geom.ow].every((v) => v < 2 ** 31))
    fail('PLAN_INVALID', `${where}: conv of ${m} x ${k} weights over a ${geom.c} x ${geom.h} x ${geom.w} image is past the kernel's 32-bit indices`);
  return { geom, m };
}
