import type { DType } from '../dtype.js';
import { fail } from '../errors.js';
import type { Node, ValueId } from '../graph.js';
import type { AttrsOf, OpName } from '../ops/index.js';
import type { LstmAttrs, RnnAttrs } from '../ops/rnn.js';
import { type Tensor, fromNumbers, makeTensor, toIntList, toNumbers } from '../tensor.js';
import type { GraphIndex, ReplayContext } from './rewrite.js';

// Shared pieces of the recurrent lowerings (lower-lstm/gru/rnn.ts): when a node can be lowered, its
// weights as numbers, and a small emitter that adds the GEMMs and elementwise nodes of the unrolled
// steps to the graph being built.

export type RecurrentNode = Extract<Node, { op: 'LSTM' | 'GRU' | 'RNN' }>;

export function isRecurrent(n: Node): n is RecurrentNode {
  return n.op === 'LSTM' || n.op === 'GRU' || n.op === 'RNN';
}

const GATES = { LSTM: 4, GRU: 3, RNN: 1 } as const;

// The big matrices as stored: an f32 tensor's own data (read only; copying 33 MB per LSTM to f64 and back
// was most of a large fleet's compile), other dtypes as float64 numbers.
export type WeightValues = Float32Array | Float64Array;

// Everything a cell lowering reads, taken from the old graph's constants.
export interface RnnWeights {
  readonly dtype: DType;
  readonly seq: number;
  readonly input: number;
  readonly hidden: number;
  readonly dirs: number;
  readonly gates: number;
  readonly w: WeightValues; // [dirs, gates*H, I]
  readonly r: WeightValues; // [dirs, gates*H, H]
  readonly b: Float64Array | null; // [dirs, 2*gates*H]: Wb then Rb
  readonly p: Float64Array | null; // LSTM peepholes [dirs, 3*H] (i, o, f)
  // Some step sees a non-zero previous state. When not (one step from the zero state, the usual seqLen-1
  // export), R is never multiplied: transposing it anyway was half of a 120-LSTM fleet's lowering.
  readonly recurrent: boolean;
}

// Why node n stays a recurrent op (null: it can be lowered). The planner reports these.
export function recurrentBlocker(n: RecurrentNode, old: GraphIndex): string | null {
  const attrs = n.attrs as RnnAttrs;
  const constIn = (i: number): Tensor | undefined | null => {
    const v = n.inputs[i];
    return v === null || v === undefined ? null : old.constant(v);
  };
  const names = ['X', 'W', 'R', 'B', 'sequence_lens', 'initial_h', 'initial_c', 'P'];
  for (const i of [1, 2, 3, 7]) {
    if (constIn(i) === undefined) return `input ${names[i]} is computed at run time; only constant weights are lowered`;
  }
  if (n.op === 'LSTM' && (attrs as LstmAttrs).inputForget) return 'input_forget=1 is not lowered';
  const x = old.value(n.inputs[0]!).type.shape;
  const seq = attrs.layout === 0 ? x[0] : x[1];
  if (typeof seq !== 'number' || seq < 1) return `the sequence length ${String(seq)} is not a static size ≥ 1`;
  if (typeof x[2] !== 'number') return `the input size ${String(x[2])} is not static`;
  const lens = constIn(4);
  if (lens === undefined) return 'sequence_lens is computed at run time; masking is not lowered';
  if (lens !== null && toIntList(lens).some((l) => l !== seq))
    return `sequence_lens holds lengths other than the sequence length ${seq}; masking is not lowered`;
  return null;
}

// Call only after recurrentBlocker said null.
export function readWeights(n: RecurrentNode, old: GraphIndex): RnnWeights {
  const attrs = n.attrs as RnnAttrs;
  const nums = (i: number): Float64Array | null => {
    const v = n.inputs[i];
    return v === null || v === undefined ? null : toNumbers(old.constant(v)!);
  };
  const matrix = (i: number): WeightValues => {
    const t = old.constant(n.inputs[i]!)!;
    return t.dtype === 'f32' ? (t.data as Float32Array) : toNumbers(t);
  };
  const x = old.value(n.inputs[0]!).type;
  const rShape = old.value(n.inputs[2]!).type.shape;
  const hidden = attrs.hiddenSize ?? (rShape[2] as number);
  const seq = (attrs.layout === 0 ? x.shape[0] : x.shape[1]) as number;
  return {
    dtype: x.dtype,
    seq,
    input: x.shape[2] as number,
    hidden,
    dirs: attrs.direction === 'bidirectional' ? 2 : 1,
    gates: GATES[n.op],
    w: matrix(1),
    r: matrix(2),
    b: nums(3),
    p: n.op === 'LSTM' ? nums(7) : null,
    recurrent: seq > 1 || !isZeroState(n.inputs[5], old),
  };
}

// Rows [r0, r1) of the [rows, cols] block at `offset`, transposed to [cols, r1-r0]: ONNX keeps gate
// weights as [gates*H, K], the GEMM wants K-major B. Copied in square tiles: a row-by-row copy writes one
// element per cache line and was most of a 120-LSTM compile.
const TILE = 32;

export function transposedRows<A extends WeightValues>(src: A, offset: number, cols: number, r0: number, r1: number): A {
  if (src instanceof Float32Array) return transposedBits32(src, offset, cols, r0, r1) as A;
  const n = r1 - r0;
  const out = (src instanceof Float32Array ? new Float32Array(cols * n) : new Float64Array(cols * n)) as A;
  for (let j0 = 0; j0 < n; j0 += TILE) {
    const j1 = Math.min(j0 + TILE, n);
    for (let k0 = 0; k0 < cols; k0 += TILE) {
      const k1 = Math.min(k0 + TILE, cols);
      for (let j = j0; j < j1; j++) {
        const row = offset + (r0 + j) * cols;
        for (let k = k0; k < k1; k++) out[k * n + j] = src[row + k]!;
      }
    }
  }
  return out;
}

// The f32 case (every f32 model's weights) as 32-bit words: one monomorphic loop that copies bits exactly
// and never converts through a double (that and the generic element type made the copy 3-5x slower).
function transposedBits32(src: Float32Array, offset: number, cols: number, r0: number, r1: number): Float32Array {
  const n = r1 - r0;
  const out = new Float32Array(cols * n);
  const from = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const to = new Uint32Array(out.buffer);
  for (let j0 = 0; j0 < n; j0 += TILE) {
    const j1 = Math.min(j0 + TILE, n);
    for (let k0 = 0; k0 < cols; k0 += TILE) {
      const k1 = Math.min(k0 + TILE, cols);
      for (let j = j0; j < j1; j++) {
        const row = offset + (r0 + j) * cols;
        let o = k0 * n + j;
        for (let k = k0; k < k1; k++) {
          to[o] = from[row + k]!;
          o += n;
        }
      }
    }
  }
  return out;
}

// The zero state ONNX assumes for an absent initial_h/initial_c; exporters often spell it out as a
// zero constant or ConstantOfShape(0). Treating those as absent lets step 0 skip its recurrent GEMM.
export function isZeroState(v: ValueId | null | undefined, old: GraphIndex): boolean {
  if (v === null || v === undefined) return true;
  const c = old.constant(v);
  if (c !== undefined) return toNumbers(c).every((x) => x === 0);
  const p = old.producer(v);
  return p !== undefined && p.op === 'ConstantOfShape' && p.attrs.value === 0;
}

export function allZero(v: Float64Array): boolean {
  return v.every((x) => x === 0);
}

// Adds nodes named after the recurrent node they replace; caches the small constants it makes.
export class StepEmitter {
  private readonly scalars = new Map<number, ValueId>();
  private readonly ints = new Map<string, ValueId>();

  constructor(
    readonly ctx: ReplayContext,
    readonly base: string,
    readonly dtype: DType,
    readonly clip: number | null,
  ) {}

  op<K extends OpName>(op: K, tag: string, inputs: ReadonlyArray<ValueId | null>, attrs: AttrsOf<K>, outName?: string): ValueId {
    return this.ctx.add(op, `${this.base}/${tag}`, inputs, attrs, [outName ?? `${this.base}/${tag}_out`])[0]!;
  }

  constant(tag: string, shape: readonly number[], values: ArrayLike<number>): ValueId {
    return this.ctx.b.addConstant(`${this.base}/${tag}`, fromNumbers(this.dtype, shape, values));
  }

  // Like constant, but takes `values` (a fresh array no one writes again) as the tensor's data when it
  // already has the tensor's dtype.
  ownedConstant(tag: string, shape: readonly number[], values: WeightValues): ValueId {
    if (this.dtype !== 'f32' || !(values instanceof Float32Array)) return this.constant(tag, shape, values);
    return this.ctx.b.addConstant(`${this.base}/${tag}`, makeTensor('f32', shape, values));
  }

  scalar(v: number): ValueId {
    let id = this.scalars.get(v);
    if (id === undefined) this.scalars.set(v, (id = this.ctx.b.addConstant(`${this.base}/const_${v}`, fromNumbers(this.dtype, [], [v]))));
    return id;
  }

  i64(values: readonly number[]): ValueId {
    const key = values.join(',');
    let id = this.ints.get(key);
    if (id === undefined) this.ints.set(key, (id = this.ctx.b.addConstant(`${this.base}/i64_${key}`, fromNumbers('i64', [values.length], values))));
    return id;
  }

  // b null only where recurrentWeight said no step needs it: reaching here then is a lowering bug.
  matmul(tag: string, a: ValueId, b: ValueId | null, bias: ValueId | null): ValueId {
    if (b === null) fail('VERIFY', `${this.base}/${tag}: a recurrent GEMM without its weight (the lowering judged every previous state zero)`);
    return this.op('MatMul', tag, bias === null ? [a, b] : [a, b, bias], { activation: null });
  }

  add(tag: string, a: ValueId, b: ValueId): ValueId {
    return this.op('Add', tag, [a, b], {});
  }

  sub(tag: string, a: ValueId, b: ValueId): ValueId {
    return this.op('Sub', tag, [a, b], {});
  }

  mul(tag: string, a: ValueId, b: ValueId): ValueId {
    return this.op('Mul', tag, [a, b], {});
  }

  // The cell's `clip` bounds every gate pre-activation.
  sigmoid(tag: string, x: ValueId): ValueId {
    return this.op('Sigmoid', tag, [this.clipped(tag, x)], {});
  }

  tanh(tag: string, x: ValueId): ValueId {
    return this.op('Tanh', tag, [this.clipped(tag, x)], {});
  }

  // Gate activations on an already clipped pre-activation (one Clip shared by several gates).
  sigmoidRaw(tag: string, x: ValueId): ValueId {
    return this.op('Sigmoid', tag, [x], {});
  }

  clipped(tag: string, x: ValueId): ValueId {
    if (this.clip === null) return x;
    return this.op('Clip', `${tag}_clip`, [x, this.scalar(-this.clip), this.scalar(this.clip)], {});
  }

  // Equal parts along `axis` (or the given sizes).
  split(tag: string, x: ValueId, axis: number, parts: number, sizes?: readonly number[]): ValueId[] {
    const names = Array.from({ length: parts }, (_, i) => `${this.base}/${tag}_${i}`);
    return this.ctx.add('Split', `${this.base}/${tag}`, sizes ? [x, this.i64(sizes)] : [x], { axis, numOutputs: null }, names);
  }

  squeeze(tag: string, x: ValueId, axes: readonly number[], outName?: string): ValueId {
    return this.op('Squeeze', tag, [x, this.i64(axes)], {}, outName);
  }

  unsqueeze(tag: string, x: ValueId, axes: readonly number[], outName?: string): ValueId {
    return this.op('Unsqueeze', tag, [x, this.i64(axes)], {}, outName);
  }

  concat(tag: string, xs: readonly ValueId[], axis: number, outName?: string): ValueId {
    return this.op('Concat', tag, xs, { axis }, outName);
  }

  transpose(tag: string, x: ValueId, perm: readonly number[], outName?: string): ValueId {
    return this.op('Transpose', tag, [x], { perm }, outName);
  }

  reshape(tag: string, x: ValueId, shape: readonly number[]): ValueId {
    return this.op('Reshape', tag, [x, this.i64(shape)], { allowzero: false });
  }

  // Element `index` of axis `axis`, with that axis removed.
  pick(tag: string, x: ValueId, axis: number, index: number, count: number): ValueId {
    if (count === 1) return this.squeeze(tag, x, [axis]);
    const s = this.op('Slice', `${tag}_slice`, [x, this.i64([index]), this.i64([index + 1]), this.i64([axis])], {});
    return this.squeeze(tag, s, [axis]);
  }
}

// The recurrent state between steps; null stands for the zero state (no initial state, before step 0).
export interface CellState {
  readonly h: ValueId | null;
  readonly c: ValueId | null; // LSTM only
}

// One direction of one cell, ready to unroll: the bias its input GEMM folds in, and one time step
// given that step's input projection x [N, gates*H].
export interface DirectionCell {
  readonly inputBias: Float64Array | null;
  step(tag: string, x: ValueId, prev: CellState): CellState;
}

export type CellFactory = (e: StepEmitter, w: RnnWeights, d: number) => DirectionCell;

// Wb + Rb of direction d for gate rows [r0, r1) (all of them by default).
export function foldedBias(w: RnnWeights, d: number, r0 = 0, r1 = w.gates * w.hidden): Float64Array | null {
  if (w.b === null) return null;
  const g = w.gates * w.hidden;
  const out = new Float64Array(g);
  for (let j = r0; j < r1; j++) out[j] = w.b[d * 2 * g + j]! + w.b[d * 2 * g + g + j]!;
  for (let j = 0; j < g; j++) if (j < r0 || j >= r1) out[j] = w.b[d * 2 * g + j]!;
  return out;
}

// R of direction d, gate rows [r0, r1), as a [H, r1-r0] constant; null when no step multiplies by it
// (steps only read it when their previous state is non-zero).
export function recurrentWeight(e: StepEmitter, w: RnnWeights, d: number, tag: string, r0: number, r1: number): ValueId | null {
  if (!w.recurrent) return null;
  const g = w.gates * w.hidden;
  return e.ownedConstant(tag, [w.hidden, r1 - r0], transposedRows(w.r, d * g * w.hidden, w.hidden, r0, r1));
}
