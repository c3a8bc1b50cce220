// Layout-fixed eltwise and copy kernels: when every segment of the launch has the same shape and each input (and
// a copy's output) the same strides — equal tenants batched, their tensors at different addresses — the kernel
// is compiled with that layout as constants, like codegen/fixed-geometry.ts does for images. The generic
// templates walk the segment's rank dividing by runtime sizes in 64-bit (twice per dimension and item: the
// divide routine); here an input laid out like the output is read at the item's own index, and the others'
// offsets are multiply-shifts in 32-bit. Launches whose segments differ keep the generic kernel.
import type { KernelOp, Launch } from '../ir/contract/launch.js';
import { segmentOf } from '../ir/contract/launch.js';
import { numel, stridesOf } from '../ir/shape.js';

type KernelLaunch = Extract<Launch, { kind: 'kernel' }>;

const FIXED_MAX = 2 ** 30; // items and every offset stay below: 32-bit math, no overflow past the last item

export interface FixedLayout {
  readonly shape: readonly number[];
  readonly inputs: readonly (readonly number[])[]; // each input's strides
  readonly out: readonly number[] | null; // a copy's output strides; null: contiguous
}

const same = (a: readonly number[] | undefined, b: readonly number[] | undefined): boolean =>
  a !== undefined && b !== undefined && a.length === b.length && a.every((v, i) => v === b[i]);

// The layout every segment shares, or null.
export function fixedLayout(l: KernelLaunch): FixedLayout | null {
  const op: KernelOp['op'] = l.op.op;
  if ((op !== 'eltwise' && op !== 'copy') || l.segments.length === 0) return null;
  const segs = l.segments.map(
    (s) =>
      segmentOf(l.op, s) as {
        readonly shape?: readonly number[];
        readonly outStrides?: readonly number[];
        readonly inputs: readonly { readonly strides: readonly number[] }[];
      },
  );
  const s0 = segs[0]!;
  const shape = s0.shape;
  if (shape === undefined) return null;
  // a copy's absent outStrides means contiguous: the same layout as spelled out (a plan read back from a dump
  // spells it), so both compare as the strides they stand for
  const dense = stridesOf(shape);
  const outOf = (s: (typeof segs)[number]): readonly number[] => (s.outStrides === undefined || s.outStrides.length === 0 ? dense : s.outStrides);
  const out0 = outOf(s0);
  for (const s of segs) {
    if (!same(s.shape, shape) || s.inputs.length !== s0.inputs.length) return null;
    if (!s.inputs.every((v, k) => same(v.strides, s0.inputs[k]!.strides))) return null;
    if (!same(outOf(s), out0)) return null;
  }
  const out = same(out0, dense) ? null : out0;
  const reach = (st: readonly number[]): number => st.reduce((a, v, d) => a + Math.abs(v) * (shape[d]! - 1), 0);
  const sizes = [numel(shape) * l.segments.length, ...s0.inputs.map((v) => reach(v.strides)), out === null ? 0 : reach(out)];
  if (!sizes.every((v) => Number.isSafeInteger(v) && v < FIXED_MAX)) return null;
  return { shape, inputs: s0.inputs.map((v) => v.strides), out };
}

// The template fragments: `digits` (statements giving each dimension's coordinate c<d> of item i, only where an
// offset needs them), an offset expression per input and for the output, and each segment's work items.
export function fixedLayoutView(f: FixedLayout): { per: number; digits: string[]; offsets: string[]; outOffset: string } {
  const { shape } = f;
  const dense = stridesOf(shape);
  const isDense = (st: readonly number[]): boolean => st.every((v, d) => shape[d] === 1 || v === dense[d]);
  const needDigits = [...f.inputs, ...(f.out === null ? [] : [f.out])].some((st) => !isDense(st));
  const digits: string[] = [];
  if (needDigits) {
    digits.push('unsigned r = i;');
    for (let d = shape.length - 1; d > 0; d--) {
      if (shape[d] === 1) continue;
      digits.push(`const int c${d} = (int)(r % ${shape[d]}u);`, `r /= ${shape[d]}u;`);
    }
    digits.push(shape[0] === 1 || shape.length === 0 ? '(void)r;' : 'const int c0 = (int)r;');
  }
  const offset = (st: readonly number[]): string => {
    if (isDense(st)) return '(int)i';
    const terms = st.flatMap((v, d) => (v === 0 || shape[d] === 1 ? [] : [v === 1 ? `c${d}` : `c${d} * ${v}`]));
    return terms.length === 0 ? '0' : terms.join(' + ');
  };
  return {
    per: numel(shape),
    digits,
    offsets: f.inputs.map(offset),
    outOffset: f.out === null ? '(int)i' : offset(f.out),
  };
}
