import { fail } from '../errors.js';
import { type AttrReader, type InferArg, type InferResult, defineOp, requireInput } from '../op.js';
import { type Dim, shapeToString } from '../shape.js';
import { type Tensor, toIntList } from '../tensor.js';
import { f32Of, gemmNT, requireFloat, requireSameDType, tensorFromF32 } from './la-kernels.js';

// ONNX LSTM / GRU / RNN with the default activations. Inputs (by position): X, W, R, B, sequence_lens,
// initial_h, then LSTM's initial_c and P. Outputs Y, Y_h (and LSTM's Y_c); any may be omitted.

export type RnnDirection = 'forward' | 'reverse' | 'bidirectional';
export type RnnCell = 'LSTM' | 'GRU' | 'RNN';

export interface RnnAttrs {
  readonly direction: RnnDirection;
  readonly hiddenSize: number | null; // null: taken from R's shape
  readonly layout: 0 | 1; // 1: batch-major X/Y/states
  readonly clip: number | null; // bound on gate pre-activations
}
export interface LstmAttrs extends RnnAttrs {
  readonly inputForget: boolean;
}
export interface GruAttrs extends RnnAttrs {
  readonly linearBeforeReset: boolean;
}

const GATES: Record<RnnCell, number> = { LSTM: 4, GRU: 3, RNN: 1 };
const DEFAULT_ACTIVATIONS: Record<RnnCell, readonly string[]> = {
  LSTM: ['sigmoid', 'tanh', 'tanh'],
  GRU: ['sigmoid', 'tanh'],
  RNN: ['tanh'],
};

function numDirections(d: RnnDirection): number {
  return d === 'bidirectional' ? 2 : 1;
}

function readRnnAttrs(r: AttrReader, cell: RnnCell): RnnAttrs {
  const direction = r.string('direction', 'forward');
  if (direction !== 'forward' && direction !== 'reverse' && direction !== 'bidirectional') {
    r.unsupported('direction', `'${direction}' (expected forward, reverse or bidirectional)`);
  }
  const layout = r.int('layout', 0);
  if (layout !== 0 && layout !== 1) r.unsupported('layout', `${layout} (expected 0 or 1)`);
  if (r.has('activations')) {
    const acts = r.strings('activations').map((s) => s.toLowerCase());
    const expected = Array.from({ length: numDirections(direction) }, () => DEFAULT_ACTIVATIONS[cell]).flat();
    if (acts.length !== expected.length || acts.some((a, i) => a !== expected[i])) {
      r.unsupported('activations', `[${acts.join(', ')}]: only the defaults [${expected.join(', ')}] are implemented`);
    }
  }
  const clip = r.has('clip') ? r.float('clip') : null;
  return { direction, hiddenSize: r.has('hidden_size') ? r.int('hidden_size') : null, layout, clip };
}

interface RnnDims {
  readonly seq: Dim;
  readonly batch: Dim;
  readonly input: Dim;
  readonly hidden: number;
  readonly dirs: number;
}

function rnnDims(cell: RnnCell, attrs: RnnAttrs, inputs: ReadonlyArray<InferArg | null>, where: string): RnnDims {
  const x = requireInput(inputs, 0, where, 'input X').type;
  const w = requireInput(inputs, 1, where, 'input W').type;
  const r = requireInput(inputs, 2, where, 'input R').type;
  requireFloat(x, where, 'input X');
  requireSameDType(x, w, where, 'input W');
  requireSameDType(x, r, where, 'input R');
  if (x.shape.length !== 3) fail('SHAPE', `${where}: input X ${shapeToString(x.shape)} must be 3-D`);
  const [seq, batch] = attrs.layout === 0 ? [x.shape[0]!, x.shape[1]!] : [x.shape[1]!, x.shape[0]!];
  const input = x.shape[2]!;
  const dirs = numDirections(attrs.direction);
  const rh = r.shape[2];
  const hidden = attrs.hiddenSize ?? rh;
  if (typeof hidden !== 'number') fail('SHAPE', `${where}: hidden_size is absent and R ${shapeToString(r.shape)} does not give it`);
  const g = GATES[cell] * hidden;
  const expect = (name: string, shape: readonly Dim[], want: readonly Dim[]) => {
    const ok = shape.length === want.length && shape.every((d, i) => d === want[i] || typeof d === 'string' || typeof want[i] === 'string');
    if (!ok) fail('SHAPE', `${where}: input ${name} ${shapeToString(shape)} should be ${shapeToString(want)}`);
  };
  expect('W', w.shape, [dirs, g, input]);
  expect('R', r.shape, [dirs, g, hidden]);
  const state = attrs.layout === 0 ? [dirs, batch, hidden] : [batch, dirs, hidden];
  const optional: Array<[number, string, readonly Dim[]]> = [
    [3, 'B', [dirs, 2 * g]],
    [4, 'sequence_lens', [batch]],
    [5, 'initial_h', state],
  ];
  if (cell === 'LSTM') optional.push([6, 'initial_c', state], [7, 'P', [dirs, 3 * hidden]]);
  for (const [i, name, want] of optional) {
    const a = inputs[i];
    if (!a) continue;
    if (i === 4) {
      if (a.type.dtype !== 'i32' && a.type.dtype !== 'i64') fail('SHAPE', `${where}: input sequence_lens has dtype ${a.type.dtype}; expected i32`);
    } else {
      requireSameDType(x, a.type, where, `input ${name}`);
    }
    expect(name, a.type.shape, want);
  }
  return { seq, batch, input, hidden, dirs };
}

function rnnInfer(cell: RnnCell, attrs: RnnAttrs, inputs: ReadonlyArray<InferArg | null>, where: string, nOutputs: number): InferResult[] {
  const d = rnnDims(cell, attrs, inputs, where);
  const dtype = inputs[0]!.type.dtype;
  const y = attrs.layout === 0 ? [d.seq, d.dirs, d.batch, d.hidden] : [d.batch, d.seq, d.dirs, d.hidden];
  const state = attrs.layout === 0 ? [d.dirs, d.batch, d.hidden] : [d.batch, d.dirs, d.hidden];
  const shapes = [y, state, state];
  return shapes.slice(0, nOutputs).map((shape) => ({ type: { dtype, shape } }));
}

// [A, B, C] -> [B, A, C]: converts between layout 1 and the time-major layout 0 used internally.
function swap01(v: Float32Array, a: number, b: number, c: number): Float32Array {
  const out = new Float32Array(v.length);
  for (let i = 0; i < a; i++) for (let j = 0; j < b; j++) out.set(v.subarray((i * b + j) * c, (i * b + j + 1) * c), (j * a + i) * c);
  return out;
}

// Y [seq, dirs, batch, H] -> [batch, seq, dirs, H] (layout 1).
function batchMajorY(y: Float32Array, seq: number, dirs: number, batch: number, h: number): Float32Array {
  const out = new Float32Array(y.length);
  for (let t = 0; t < seq; t++) {
    for (let d = 0; d < dirs; d++) {
      for (let b = 0; b < batch; b++)
        out.set(y.subarray(((t * dirs + d) * batch + b) * h, ((t * dirs + d) * batch + b + 1) * h), ((b * seq + t) * dirs + d) * h);
    }
  }
  return out;
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

function rnnEvaluate(cell: RnnCell, attrs: RnnAttrs, inputs: ReadonlyArray<Tensor | null>, where: string, nOutputs: number): Tensor[] {
  const args = inputs.map((t) => (t ? { type: t } : null));
  const dims = rnnDims(cell, attrs, args, where);
  const [seq, batch, inSize] = [dims.seq as number, dims.batch as number, dims.input as number];
  const { hidden: H, dirs } = dims;
  const X = inputs[0]!;
  const gH = GATES[cell] * H;
  const layout1 = attrs.layout === 1;
  const x = layout1 ? swap01(f32Of(X), batch, seq, inSize) : f32Of(X);
  const w = f32Of(inputs[1]!);
  const r = f32Of(inputs[2]!);
  const bias = inputs[3] ? f32Of(inputs[3]) : null;
  const lens = inputs[4] ? toIntList(inputs[4]) : new Array<number>(batch).fill(seq);
  for (const l of lens) if (!(l >= 0 && l <= seq)) fail('EVAL', `${where}: sequence_lens value ${l} is outside [0, ${seq}]`);
  const state = (i: number): Float32Array | null => {
    const t = inputs[i];
    if (!t) return null;
    return layout1 ? swap01(f32Of(t), batch, dirs, H) : f32Of(t);
  };
  const h0 = state(5);
  const c0 = cell === 'LSTM' ? state(6) : null;
  const peep = cell === 'LSTM' && inputs[7] ? f32Of(inputs[7]) : null;
  const clip = attrs.clip;
  const act = (v: number, f: (x: number) => number): number => f(clip === null ? v : Math.max(-clip, Math.min(clip, v)));
  const lbr = cell === 'GRU' && (attrs as GruAttrs).linearBeforeReset;
  const inputForget = cell === 'LSTM' && (attrs as LstmAttrs).inputForget;

  const Y = new Float32Array(seq * dirs * batch * H);
  const Yh = new Float32Array(dirs * batch * H);
  const Yc = new Float32Array(dirs * batch * H);
  const xw = new Float32Array(seq * batch * gH);
  const hr = new Float32Array(batch * gH);
  const rh = new Float32Array(batch * H); // GRU (linear_before_reset=0): r * h_prev
  const rhR = new Float32Array(batch * H);
  for (let d = 0; d < dirs; d++) {
    const reverse = attrs.direction === 'reverse' || d === 1;
    // Input projections of all steps in one GEMM; biases folded in except GRU's Rb_h under linear_before_reset.
    gemmNT(seq * batch, gH, inSize, x, 0, w, d * gH * inSize, xw, 0, gH);
    const bx = new Float32Array(gH);
    const bh = new Float32Array(gH);
    if (bias) {
      for (let j = 0; j < gH; j++) {
        const wb = bias[d * 2 * gH + j]!;
        const rb = bias[d * 2 * gH + gH + j]!;
        if (lbr && j >= 2 * H) {
          bx[j] = wb;
          bh[j] = rb;
        } else {
          bx[j] = wb + rb;
        }
      }
      for (let row = 0; row < seq * batch; row++) for (let j = 0; j < gH; j++) xw[row * gH + j] = xw[row * gH + j]! + bx[j]!;
    }
    const h = h0 ? h0.slice(d * batch * H, (d + 1) * batch * H) : new Float32Array(batch * H);
    const c = c0 ? c0.slice(d * batch * H, (d + 1) * batch * H) : new Float32Array(batch * H);
    const rOff = d * gH * H;
    for (let s = 0; s < seq; s++) {
      // Recurrent projection; GRU without linear_before_reset needs only the z and r gates here.
      const nRec = cell === 'GRU' && !lbr ? 2 * H : gH;
      gemmNT(batch, nRec, H, h, 0, r, rOff, hr, 0, gH);
      if (cell === 'GRU' && !lbr) {
        for (let b = 0; b < batch; b++) {
          if (s >= lens[b]!) continue; // finished sequences keep their state; their rows are not read
          const xo = ((reverse ? lens[b]! - 1 - s : s) * batch + b) * gH + H;
          for (let j = 0; j < H; j++) rh[b * H + j] = act(xw[xo + j]! + hr[b * gH + H + j]!, sigmoid) * h[b * H + j]!;
        }
        gemmNT(batch, H, H, rh, 0, r, rOff + 2 * H * H, rhR, 0, H);
      }
      for (let b = 0; b < batch; b++) {
        if (s >= lens[b]!) continue;
        const t = reverse ? lens[b]! - 1 - s : s;
        const xo = (t * batch + b) * gH;
        const ho = b * gH;
        const so = b * H;
        const yo = ((t * dirs + d) * batch + b) * H;
        for (let j = 0; j < H; j++) {
          let hNew: number;
          if (cell === 'LSTM') {
            const cPrev = c[so + j]!;
            const pi = peep ? peep[d * 3 * H + j]! : 0;
            const po = peep ? peep[d * 3 * H + H + j]! : 0;
            const pf = peep ? peep[d * 3 * H + 2 * H + j]! : 0;
            const ig = act(xw[xo + j]! + hr[ho + j]! + pi * cPrev, sigmoid);
            const fg = inputForget ? 1 - ig : act(xw[xo + 2 * H + j]! + hr[ho + 2 * H + j]! + pf * cPrev, sigmoid);
            const cg = act(xw[xo + 3 * H + j]! + hr[ho + 3 * H + j]!, Math.tanh);
            const cNew = fg * cPrev + ig * cg;
            const og = act(xw[xo + H + j]! + hr[ho + H + j]! + po * cNew, sigmoid);
            c[so + j] = cNew;
            hNew = og * Math.tanh(cNew);
          } else if (cell === 'GRU') {
            const z = act(xw[xo + j]! + hr[ho + j]!, sigmoid);
            let hh: number;
            if (lbr) {
              const rg = act(xw[xo + H + j]! + hr[ho + H + j]!, sigmoid);
              hh = act(xw[xo + 2 * H + j]! + rg * (hr[ho + 2 * H + j]! + bh[2 * H + j]!), Math.tanh);
            } else {
              hh = act(xw[xo + 2 * H + j]! + rhR[so + j]!, Math.tanh);
            }
            hNew = (1 - z) * hh + z * h[so + j]!;
          } else {
            hNew = act(xw[xo + j]! + hr[ho + j]!, Math.tanh);
          }
          h[so + j] = hNew;
          Y[yo + j] = hNew;
        }
      }
    }
    Yh.set(h, d * batch * H);
    Yc.set(c, d * batch * H);
  }
  const dtype = X.dtype;
  const outs = layout1
    ? [
        tensorFromF32(dtype, [batch, seq, dirs, H], batchMajorY(Y, seq, dirs, batch, H)),
        tensorFromF32(dtype, [batch, dirs, H], swap01(Yh, dirs, batch, H)),
        tensorFromF32(dtype, [batch, dirs, H], swap01(Yc, dirs, batch, H)),
      ]
    : [tensorFromF32(dtype, [seq, dirs, batch, H], Y), tensorFromF32(dtype, [dirs, batch, H], Yh), tensorFromF32(dtype, [dirs, batch, H], Yc)];
  return outs.slice(0, nOutputs);
}

export const rnnOps = {
  LSTM: defineOp<LstmAttrs>({
    name: 'LSTM',
    inputs: [3, 8],
    outputs: [0, 3],
    attrs: (r) => ({ ...readRnnAttrs(r, 'LSTM'), inputForget: r.int('input_forget', 0) !== 0 }),
    infer: (a, i, w, n) => rnnInfer('LSTM', a, i, w, n),
    evaluate: (a, i, w, n) => rnnEvaluate('LSTM', a, i, w, n),
  }),
  GRU: defineOp<GruAttrs>({
    name: 'GRU',
    inputs: [3, 6],
    outputs: [0, 2],
    attrs: (r) => ({ ...readRnnAttrs(r, 'GRU'), linearBeforeReset: r.int('linear_before_reset', 0) !== 0 }),
    infer: (a, i, w, n) => rnnInfer('GRU', a, i, w, n),
    evaluate: (a, i, w, n) => rnnEvaluate('GRU', a, i, w, n),
  }),
  RNN: defineOp<RnnAttrs>({
    name: 'RNN',
    inputs: [3, 6],
    outputs: [0, 2],
    attrs: (r) => readRnnAttrs(r, 'RNN'),
    infer: (a, i, w, n) => rnnInfer('RNN', a, i, w, n),
    evaluate: (a, i, w, n) => rnnEvaluate('RNN', a, i, w, n),
  }),
} as const;
