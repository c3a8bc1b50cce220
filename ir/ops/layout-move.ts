import { fail } from '../errors.js';
import { type AttrReader, defineOp, requireInput } from '../op.js';
import { type Dim, type Shape, shapeToString, stridesOf } from '../shape.js';
import { type Tensor, makeTensor, toIntList, toNumbers } from '../tensor.js';
import { type RawElem, axisMap, concrete, copyByAxisOffsets, intsInput, normalizeAxes, passDims, rawOf, scaleDim, transposeTensor } from './layout-util.js';

// Ops that move elements to new positions: Transpose, Pad, Trilu, DepthToSpace, SpaceToDepth.

export type PadMode = 'constant' | 'reflect' | 'edge';
export type DepthToSpaceMode = 'DCR' | 'CRD';

export interface TransposeAttrs {
  readonly perm: readonly number[] | null; // null = reverse the dims
}

function permOf(a: TransposeAttrs, rank: number, where: string): number[] {
  const perm = a.perm ? [...a.perm] : Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const ok = perm.length === rank && perm.every((p) => Number.isInteger(p) && p >= 0 && p < rank) && new Set(perm).size === rank;
  if (!ok) fail('SHAPE', `${where}: perm ${shapeToString(perm)} is not a permutation of the ${rank} dims`);
  return perm;
}

interface PadPlan {
  readonly shape: Dim[];
  readonly begin: readonly number[]; // per dim of the input, 0 where not padded
}

function planPad(s: Shape, pads: readonly number[], axesIn: readonly number[] | null, mode: PadMode, where: string): PadPlan {
  const axes = axesIn === null ? s.map((_, i) => i) : normalizeAxes(axesIn, s.length, where, 'input 3 (axes)');
  const k = axes.length;
  if (pads.length !== 2 * k) fail('SHAPE', `${where}: pads ${shapeToString(pads)} must have ${2 * k} entries (begin and end for each of ${k} axes)`);
  const begin = new Array<number>(s.length).fill(0);
  const shape = [...s];
  axes.forEach((a, i) => {
    const [b, e] = [pads[i]!, pads[i + k]!];
    begin[a] = b;
    const d = s[a]!;
    if (typeof d === 'string') {
      if (b !== 0 || e !== 0)
        fail('SHAPE', `${where}: padding symbolic dim '${d}' (axis ${a}) by ${b}+${e}; only the batch symbol itself can be a symbolic dim`);
      return;
    }
    if (mode !== 'constant' && d === 0 && b + e > 0) fail('SHAPE', `${where}: ${mode} padding of an empty axis ${a}`);
    shape[a] = d + b + e;
    if ((shape[a] as number) < 0) fail('SHAPE', `${where}: pads ${shapeToString(pads)} crop axis ${a} of size ${d} below zero`);
  });
  return { shape, begin };
}

function padSource(mode: PadMode, c: number, d: number): number {
  if (c >= 0 && c < d) return c;
  switch (mode) {
    case 'constant':
      return -1;
    case 'edge':
      return c < 0 ? 0 : d - 1;
    case 'reflect': {
      if (d === 1) return 0;
      const period = 2 * (d - 1);
      const m = ((c % period) + period) % period;
      return m < d ? m : period - m;
    }
    default: {
      const never: never = mode;
      return never;
    }
  }
}

function padModeOf(r: AttrReader): PadMode {
  const m = r.string('mode', 'constant');
  if (m === 'constant' || m === 'reflect' || m === 'edge') return m;
  return r.unsupported('mode', `'${m}' is not supported (supported: constant, reflect, edge)`);
}

function trilu(x: Tensor, upper: boolean, k: number): Tensor {
  const rank = x.shape.length;
  const rows = x.shape[rank - 2]!;
  const cols = x.shape[rank - 1]!;
  const data = x.data.slice();
  const d = data as unknown as RawElem[];
  const zero: RawElem = typeof d[0] === 'bigint' ? 0n : 0;
  for (let base = 0; base < data.length; base += rows * cols) {
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        const keep = upper ? j - i >= k : j - i <= k;
        if (!keep) d[base + i * cols + j] = zero;
      }
    }
  }
  return makeTensor(x.dtype, x.shape, data);
}

function depthToSpaceShape(s: Shape, b: number, where: string): Dim[] {
  if (s.length !== 4) fail('SHAPE', `${where}: input must be 4-D (N,C,H,W), got ${shapeToString(s)}`);
  const c = s[1]!;
  if (typeof c !== 'number' || c % (b * b) !== 0) fail('SHAPE', `${where}: channels ${c} must be divisible by blocksize² = ${b * b}`);
  return [s[0]!, c / (b * b), scaleDim(s[2]!, b, where, 'height'), scaleDim(s[3]!, b, where, 'width')];
}

function spaceToDepthShape(s: Shape, b: number, where: string): Dim[] {
  if (s.length !== 4) fail('SHAPE', `${where}: input must be 4-D (N,C,H,W), got ${shapeToString(s)}`);
  const [h, w] = [s[2]!, s[3]!];
  if (typeof h !== 'number' || typeof w !== 'number' || h % b !== 0 || w % b !== 0) {
    fail('SHAPE', `${where}: height and width ${h}x${w} must be divisible by blocksize ${b}`);
  }
  return [s[0]!, scaleDim(s[1]!, b * b, where, 'channels'), h / b, w / b];
}

function blocksizeOf(r: AttrReader): number {
  const b = r.int('blocksize');
  if (b < 1) fail('MODEL_INVALID', `${r.ctx.where}: blocksize must be >= 1, got ${b}`);
  return b;
}

export interface PadAttrs {
  readonly mode: PadMode;
}
export interface DepthToSpaceAttrs {
  readonly blocksize: number;
  readonly mode: DepthToSpaceMode;
}

export const layoutMoveOps = {
  Transpose: defineOp<TransposeAttrs>({
    name: 'Transpose',
    inputs: [1, 1],
    outputs: [1, 1],
    attrs: (r) => ({ perm: r.has('perm') ? r.ints('perm') : null }),
    infer: (a, inputs, where) => {
      const x = requireInput(inputs, 0, where);
      const s = x.type.shape;
      const type = { dtype: x.type.dtype, shape: permOf(a, s.length, where).map((p) => s[p]!) };
      return [{ type, ...passDims(x, type) }];
    },
    evaluate: (a, inputs, where) => {
      const x = requireInput(inputs, 0, where);
      const perm = permOf(a, x.shape.length, where);
      return [
        transposeTensor(
          x,
          x.shape,
          perm,
          perm.map((p) => x.shape[p]!),
        ),
      ];
    },
  }),

  Pad: defineOp<PadAttrs>({
    name: 'Pad',
    inputs: [2, 4],
    outputs: [1, 1],
    attrs: (r) => ({ mode: padModeOf(r) }),
    infer: (a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (data)');
      const pads = intsInput(inputs[1], where, 'input 1 (pads)');
      const axes = inputs[3] ? intsInput(inputs[3], where, 'input 3 (axes)') : null;
      const cv = inputs[2];
      if (cv && cv.type.dtype !== x.type.dtype) fail('SHAPE', `${where}: constant_value has dtype ${cv.type.dtype}, data has ${x.type.dtype}`);
      return [{ type: { dtype: x.type.dtype, shape: planPad(x.type.shape, pads, axes, a.mode, where).shape } }];
    },
    evaluate: (a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (data)');
      const pads = toIntList(requireInput(inputs, 1, where, 'input 1 (pads)'));
      const axes = inputs[3] ? toIntList(inputs[3]) : null;
      const plan = planPad(x.shape, pads, axes, a.mode, where);
      const shape = concrete(plan.shape, where, 'output');
      const cv = inputs[2];
      const fill: RawElem = !cv || cv.data.length === 0 ? 0 : cv.dtype === x.dtype ? cv.data[0]! : rawOf(x.dtype, toNumbers(cv)[0]!);
      const st = stridesOf(x.shape);
      const maps = shape.map((len, ax) => axisMap(len, st[ax]!, (o) => padSource(a.mode, o - plan.begin[ax]!, x.shape[ax]!)));
      return [makeTensor(x.dtype, shape, copyByAxisOffsets(x, shape, maps, fill))];
    },
  }),

  Trilu: defineOp({
    name: 'Trilu',
    inputs: [1, 2],
    outputs: [1, 1],
    attrs: (r) => ({ upper: r.int('upper', 1) !== 0 }),
    infer: (_a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (input)');
      if (x.type.shape.length < 2) fail('SHAPE', `${where}: input must have rank >= 2, got ${shapeToString(x.type.shape)}`);
      return [{ type: x.type }];
    },
    evaluate: (a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (input)');
      if (x.shape.length < 2) fail('EVAL', `${where}: input must have rank >= 2, got ${shapeToString(x.shape)}`);
      const k = inputs[1] ? (toIntList(inputs[1])[0] ?? 0) : 0;
      return [trilu(x, a.upper, k)];
    },
  }),

  DepthToSpace: defineOp<DepthToSpaceAttrs>({
    name: 'DepthToSpace',
    inputs: [1, 1],
    outputs: [1, 1],
    attrs: (r) => {
      const mode = r.string('mode', 'DCR');
      if (mode !== 'DCR' && mode !== 'CRD') return r.unsupported('mode', `'${mode}' (expected DCR or CRD)`);
      return { blocksize: blocksizeOf(r), mode };
    },
    infer: (a, inputs, where) => {
      const x = requireInput(inputs, 0, where);
      return [{ type: { dtype: x.type.dtype, shape: depthToSpaceShape(x.type.shape, a.blocksize, where) } }];
    },
    evaluate: (a, inputs, where) => {
      const x = requireInput(inputs, 0, where);
      const b = a.blocksize;
      const out = concrete(depthToSpaceShape(x.shape, b, where), where, 'output');
      const [n, c, h, w] = [x.shape[0]!, out[1]!, x.shape[2]!, x.shape[3]!];
      return [
        a.mode === 'DCR' ? transposeTensor(x, [n, b, b, c, h, w], [0, 3, 4, 1, 5, 2], out) : transposeTensor(x, [n, c, b, b, h, w], [0, 1, 4, 2, 5, 3], out),
      ];
    },
  }),

  SpaceToDepth: defineOp({
    name: 'SpaceToDepth',
    inputs: [1, 1],
    outputs: [1, 1],
    attrs: (r) => ({ blocksize: blocksizeOf(r) }),
    infer: (a, inputs, where) => {
      const x = requireInput(inputs, 0, where);
      return [{ type: { dtype: x.type.dtype, shape: spaceToDepthShape(x.type.shape, a.blocksize, where) } }];
    },
    evaluate: (a, inputs, where) => {
      const x = requireInput(inputs, 0, where);
      const b = a.blocksize;
      const out = concrete(spaceToDepthShape(x.shape, b, where), where, 'output');
      const [n, c, h, w] = [x.shape[0]!, x.shape[1]!, out[2]!, out[3]!];
      return [transposeTensor(x, [n, c, h, b, w, b], [0, 3, 5, 1, 2, 4], out)];
    },
  }),
} as const;
