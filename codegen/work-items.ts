// Work items of a generated kernel launch's segments (FORMAT.md "Work items"): what a template counts, the grid
// covers and the segment table's workBegin sums. Shared by the kernel table (kernels.ts) and the fixed-geometry
// kernels (fixed-geometry.ts), which must count alike.
import { fail } from '../ir/errors.js';
import { type KernelOp, type Segment, im2colRows, segmentOf } from '../ir/contract/launch.js';
import { convTiles } from './conv-kernel.js';

function prod(xs: readonly number[]): number {
  let p = 1;
  for (const x of xs) p *= x;
  return p;
}

// Work items of one segment, as the op's template counts them (FORMAT.md "Work items").
export function segmentWork(op: KernelOp, seg: Segment): number {
  switch (op.op) {
    case 'eltwise':
    case 'copy':
      return prod(segmentOf(op, seg).shape);
    case 'reduce':
    case 'softmax': {
      const d = segmentOf(op, seg).dims;
      return d[0]! * d[2]!;
    }
    case 'layernorm':
      return segmentOf(op, seg).dims[0]!;
    case 'groupnorm': {
      const d = segmentOf(op, seg).dims;
      return d[0]! * d[1]!;
    }
    case 'pool': {
      const g = segmentOf(op, seg).geom;
      return g.n * g.c * g.oh * g.ow;
    }
    case 'im2col': {
      const g = segmentOf(op, seg).geom;
      return g.n * im2colRows(op, g) * g.oh * g.ow;
    }
    case 'col2im':
    case 'depthwise': {
      const g = segmentOf(op, seg).geom;
      return g.n * g.c * g.oh * g.ow;
    }
    case 'fill':
    case 'gather_table':
      return segmentOf(op, seg).count;
    case 'gather': {
      const d = segmentOf(op, seg).dims;
      return d[0]! * d[2]! * d[3]!;
    }
    case 'squeeze_excite':
      return segmentOf(op, seg).dims[0]!; // one block per image
    case 'conv': {
      const s = segmentOf(op, seg);
      return convTiles(s.dims[0]!, s.geom.oh * s.geom.ow); // one block per tile of out
    }
    default: {
      const never: never = op;
      return fail('PLAN_INVALID', `unknown kernel op ${JSON.stringify(never)}`);
    }
  }
}
