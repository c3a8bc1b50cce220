import type { Graph, ValueId } from '../graph.js';
import type { RnnAttrs } from '../ops/rnn.js';
import { lstmCell } from './lower-lstm.js';
import { gruCell } from './lower-gru.js';
import { rnnCell } from './lower-rnn.js';
import {
  type CellFactory,
  type CellState,
  type RecurrentNode,
  StepEmitter,
  allZero,
  isRecurrent,
  isZeroState,
  readWeights,
  recurrentBlocker,
  transposedRows,
} from './recurrent-util.js';
import { type ReplayContext, indexGraph, replayGraph } from './rewrite.js';

// Unrolls LSTM / GRU / RNN into GEMMs and elementwise ops, so the planner batches them like any dense
// layer across tenants. Per direction: ONE input GEMM over the whole sequence, X[S*N, I]·Wᵀ with the
// foldable biases as its epilogue bias, then per step one recurrent GEMM h·Rᵀ (GRU with
// linear_before_reset=0 needs a second, (r⊙h)·R_hᵀ) and the gate math. A zero initial state (absent,
// a zero constant or ConstantOfShape(0)) drops step 0's recurrent GEMM. Nodes this cannot lower
// (weights computed at run time, ragged sequence_lens, input_forget) stay; unloweredRecurrent says why.
export function lowerRecurrent(g: Graph): Graph {
  return replayGraph(g, (n, ctx) => {
    if (!isRecurrent(n) || recurrentBlocker(n, ctx.old) !== null) return false;
    lowerNode(n, ctx);
    return true;
  });
}

export interface UnloweredRecurrent {
  readonly node: string;
  readonly op: RecurrentNode['op'];
  readonly reason: string;
}

export function unloweredRecurrent(g: Graph): UnloweredRecurrent[] {
  const old = indexGraph(g);
  return g.nodes.filter(isRecurrent).flatMap((n) => {
    const reason = recurrentBlocker(n, old);
    return reason === null ? [] : [{ node: n.name, op: n.op, reason }];
  });
}

function cellFor(n: RecurrentNode): CellFactory {
  switch (n.op) {
    case 'LSTM':
      return lstmCell;
    case 'GRU':
      return gruCell(n.attrs.linearBeforeReset);
    case 'RNN':
      return rnnCell;
    default: {
      const never: never = n;
      return never;
    }
  }
}

function lowerNode(n: RecurrentNode, ctx: ReplayContext): void {
  const attrs = n.attrs as RnnAttrs;
  const w = readWeights(n, ctx.old);
  const e = new StepEmitter(ctx, n.name, w.dtype, attrs.clip);
  const { seq: S, input: I, hidden: H, dirs } = w;
  const G = w.gates * H;
  const layout1 = attrs.layout === 1;
  // Internally time-major [S, N, ·]; layout 1 is transposed in and out.
  let x = ctx.map(n.inputs[0]!);
  if (layout1) x = e.transpose('x_time_major', x, [1, 0, 2]);
  const rows = e.reshape('x_rows', x, [-1, I]); // [S*N, I]: the batch dim becomes 'N*S' when symbolic
  const stateAxis = layout1 ? 1 : 0;
  const initial = (i: number): ValueId | null => {
    const v = n.inputs[i];
    return v === undefined || isZeroState(v, ctx.old) ? null : ctx.map(v!);
  };
  const h0 = initial(5);
  const c0 = n.op === 'LSTM' ? initial(6) : null;
  const cell = cellFor(n);

  const ys: ValueId[] = [];
  const lastH: ValueId[] = [];
  const lastC: ValueId[] = [];
  for (let d = 0; d < dirs; d++) {
    const reverse = attrs.direction === 'reverse' || d === 1;
    const dc = cell(e, w, d);
    const wT = e.ownedConstant(`W${d}_T`, [I, G], transposedRows(w.w, d * G * I, I, 0, G));
    const bias = dc.inputBias === null || allZero(dc.inputBias) ? null : e.constant(`B${d}`, [G], dc.inputBias);
    const xw = e.reshape(`xW${d}_steps`, e.matmul(`xW${d}`, rows, wT, bias), [S, -1, G]);
    const xs = S === 1 ? [xw] : e.split(`xW${d}_t`, xw, 0, S);
    let state: CellState = {
      h: h0 === null ? null : e.pick(`h0_${d}`, h0, stateAxis, d, dirs),
      c: c0 === null ? null : e.pick(`c0_${d}`, c0, stateAxis, d, dirs),
    };
    const out = new Array<ValueId>(S);
    for (let s = 0; s < S; s++) {
      const t = reverse ? S - 1 - s : s;
      const tag = `d${d}_t${t}`;
      state = dc.step(tag, e.squeeze(`${tag}/x`, xs[t]!, [0]), state);
      out[t] = state.h!;
    }
    if (used(n, 0, ctx)) {
      const steps = out.map((h, t) => e.unsqueeze(`d${d}_t${t}/y`, h, [0, 1])); // [1, 1, N, H]
      ys.push(steps.length === 1 ? steps[0]! : e.concat(`Y${d}`, steps, 0));
    }
    lastH.push(state.h!);
    if (state.c !== null) lastC.push(state.c);
  }

  if (used(n, 0, ctx)) {
    const y = ys.length === 1 ? ys[0]! : e.concat('Y', ys, 1); // [S, dirs, N, H]
    ctx.alias(n.outputs[0]!, layout1 ? e.transpose('Y_batch_major', y, [2, 0, 1, 3]) : y);
  }
  const finalState = (k: number, name: string, hs: readonly ValueId[]): void => {
    if (!used(n, k, ctx)) return;
    const parts = hs.map((h, d) => e.unsqueeze(`${name}${d}`, h, [0])); // [1, N, H]
    const v = parts.length === 1 ? parts[0]! : e.concat(name, parts, 0); // [dirs, N, H]
    ctx.alias(n.outputs[k]!, layout1 ? e.transpose(`${name}_batch_major`, v, [1, 0, 2]) : v);
  };
  finalState(1, 'Y_h', lastH);
  if (n.op === 'LSTM') finalState(2, 'Y_c', lastC);
}

function used(n: RecurrentNode, k: number, ctx: ReplayContext): boolean {
  const v = n.outputs[k];
  return v !== undefined && (ctx.old.isGraphOutput(v) || ctx.old.consumers(v).length > 0);
}
