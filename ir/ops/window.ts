import { fail } from '../errors.js';
import type { AttrReader } from '../op.js';
import type { Dim } from '../shape.js';

// Sliding-window geometry shared by Conv, ConvTranspose and the pools: attributes as written in the
// model (null = ONNX default, which depends on the spatial rank known only from the input shapes),
// resolved per node into concrete kernel/stride/dilation/pads and output sizes. Later stages (im2col
// planning) call resolveWindow too, so every consumer agrees on the padding.

export type AutoPad = 'NOTSET' | 'SAME_UPPER' | 'SAME_LOWER' | 'VALID';

export interface WindowAttrs {
  readonly autoPad: AutoPad;
  readonly kernelShape: readonly number[] | null; // Conv: inferred from W when absent
  readonly strides: readonly number[] | null;
  readonly pads: readonly number[] | null; // [b1..bn, e1..en]
  readonly dilations: readonly number[] | null;
}

export interface Window {
  readonly kernel: readonly number[];
  readonly strides: readonly number[];
  readonly dilations: readonly number[];
  readonly padsBegin: readonly number[];
  readonly padsEnd: readonly number[];
  readonly outSpatial: readonly Dim[];
}

export function readAutoPad(r: AttrReader): AutoPad {
  const v = r.string('auto_pad', 'NOTSET');
  switch (v) {
    case 'NOTSET':
    case 'SAME_UPPER':
    case 'SAME_LOWER':
    case 'VALID':
      return v;
    default:
      return r.unsupported('auto_pad', `'${v}' (expected NOTSET, SAME_UPPER, SAME_LOWER or VALID)`);
  }
}

export function readWindowAttrs(r: AttrReader): WindowAttrs {
  const opt = (name: string): readonly number[] | null => (r.has(name) ? [...r.ints(name)] : null);
  return { autoPad: readAutoPad(r), kernelShape: opt('kernel_shape'), strides: opt('strides'), pads: opt('pads'), dilations: opt('dilations') };
}

export function listOfRank(v: readonly number[] | null, rank: number, dflt: number, name: string, where: string): number[] {
  if (v === null) return new Array<number>(rank).fill(dflt);
  if (v.length !== rank) fail('MODEL_INVALID', `${where}: attribute ${name} has ${v.length} values; expected ${rank} (one per spatial dim)`);
  return [...v];
}

// `ceilMode` only for pools. Symbolic spatial sizes are kept only where the window maps size to size.
export function resolveWindow(a: WindowAttrs, inSpatial: readonly Dim[], kernel: readonly number[], ceilMode: boolean, where: string): Window {
  const rank = inSpatial.length;
  if (kernel.length !== rank) fail('SHAPE', `${where}: kernel has ${kernel.length} spatial dims; input has ${rank}`);
  const strides = listOfRank(a.strides, rank, 1, 'strides', where);
  const dilations = listOfRank(a.dilations, rank, 1, 'dilations', where);
  const pads = a.pads === null ? new Array<number>(2 * rank).fill(0) : [...a.pads];
  if (pads.length !== 2 * rank) fail('MODEL_INVALID', `${where}: attribute pads has ${pads.length} values; expected ${2 * rank}`);
  for (const [name, vals] of [
    ['strides', strides],
    ['dilations', dilations],
    ['kernel_shape', kernel],
  ] as const) {
    if (vals.some((v) => !(v >= 1))) fail('MODEL_INVALID', `${where}: attribute ${name} [${vals.join(',')}] must be >= 1`);
  }
  if (pads.some((p) => p < 0)) fail('UNSUPPORTED_FEATURE', `${where}: negative pads [${pads.join(',')}] are not supported`);
  const padsBegin: number[] = [];
  const padsEnd: number[] = [];
  const outSpatial: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const x = inSpatial[i]!;
    const s = strides[i]!;
    const span = dilations[i]! * (kernel[i]! - 1) + 1;
    let pb = a.autoPad === 'NOTSET' ? pads[i]! : 0;
    let pe = a.autoPad === 'NOTSET' ? pads[i + rank]! : 0;
    if (typeof x !== 'number') {
      const identity = s === 1 && (a.autoPad === 'SAME_UPPER' || a.autoPad === 'SAME_LOWER' || (a.autoPad === 'NOTSET' && pb + pe === span - 1));
      if (!identity) fail('UNSUPPORTED_FEATURE', `${where}: symbolic spatial dim '${x}' with a window that changes its size is not supported`);
      if (a.autoPad !== 'NOTSET') {
        const total = span - 1;
        pb = a.autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : total - Math.floor(total / 2);
        pe = total - pb;
      }
      padsBegin.push(pb);
      padsEnd.push(pe);
      outSpatial.push(x);
      continue;
    }
    let out: number;
    if (a.autoPad === 'SAME_UPPER' || a.autoPad === 'SAME_LOWER') {
      out = Math.ceil(x / s);
      const total = Math.max(0, (out - 1) * s + span - x);
      pb = a.autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : total - Math.floor(total / 2);
      pe = total - pb;
    } else {
      const room = x + pb + pe - span;
      if (room < 0) fail('SHAPE', `${where}: window of span ${span} does not fit spatial dim ${i} of size ${x} (pads ${pb}+${pe})`);
      if (ceilMode) {
        out = Math.ceil(room / s) + 1;
        if ((out - 1) * s >= x + pb) out--; // the last window must start inside the input or its begin padding
      } else {
        out = Math.floor(room / s) + 1;
      }
    }
    padsBegin.push(pb);
    padsEnd.push(pe);
    outSpatial.push(out);
  }
  return { kernel: [...kernel], strides, dilations, padsBegin, padsEnd, outSpatial };
}

// Pads a spatial list of rank 1..3 to rank 3 (leading dims of size 1) so one loop nest serves 1-D, 2-D and 3-D.
export function to3d(v: readonly number[], fill: number): [number, number, number] {
  const p = [...new Array<number>(3 - v.length).fill(fill), ...v];
  return [p[0]!, p[1]!, p[2]!];
}

// A resolved window padded to 3 spatial dims (kernel, strides, dilations, begin pads).
export interface Window3 {
  readonly k: readonly [number, number, number];
  readonly s: readonly [number, number, number];
  readonly d: readonly [number, number, number];
  readonly p: readonly [number, number, number];
}

export function window3(w: Window): Window3 {
  return { k: to3d(w.kernel, 1), s: to3d(w.strides, 1), d: to3d(w.dilations, 1), p: to3d(w.padsBegin, 0) };
}
