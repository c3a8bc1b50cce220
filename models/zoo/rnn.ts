import { unitStd } from '../random.js';
import { type CommonOptions, type ZooModel, ZooGraph, batchDim, requirePositiveInt } from './graph.js';
import { linearGemm } from './layers.js';

export interface RnnOptions extends CommonOptions {
  readonly hidden?: number; // default 256
  readonly inputSize?: number; // default 128
  readonly seqLen?: number; // default 8
  readonly layers?: number; // stacked layers, one ONNX LSTM/GRU node each; default 1
  readonly classes?: number; // width of the Gemm head on the last Y_h; default 10
}

type Cell = 'LSTM' | 'GRU';

// torch.nn.LSTM / nn.GRU (batch_first=False) followed by nn.Linear on h_n[-1], as torch exports it:
// one ONNX LSTM/GRU per layer in layout 0 ([seq, batch, input]); Y [S, 1, N, H] squeezed on axis 1
// between layers; the last layer's Y_h [1, N, H] squeezed on axis 0 into the Gemm head. Weights are
// drawn directly in ONNX gate order (LSTM iofc, GRU zrh) with torch's U(-1/√H, 1/√H) init.
function recurrent(cell: Cell, opts: RnnOptions): ZooModel {
  const kind = cell.toLowerCase();
  const H = requirePositiveInt(kind, 'hidden', opts.hidden ?? 256);
  const I = requirePositiveInt(kind, 'inputSize', opts.inputSize ?? 128);
  const S = requirePositiveInt(kind, 'seqLen', opts.seqLen ?? 8);
  const L = requirePositiveInt(kind, 'layers', opts.layers ?? 1);
  const C = requirePositiveInt(kind, 'classes', opts.classes ?? 10);
  const n = batchDim(opts);
  const gates = cell === 'LSTM' ? 4 : 3;
  const g = new ZooGraph(opts.seed);
  const k = 1 / Math.sqrt(H);
  let x = g.input('input');
  let yh = '';
  for (let l = 0; l < L; l++) {
    const fin = l === 0 ? I : H;
    const W = g.param(`onnx::${cell}_W_l${l}`, [1, gates * H, fin], g.rng.uniformArray(gates * H * fin, -k, k));
    const R = g.param(`onnx::${cell}_R_l${l}`, [1, gates * H, H], g.rng.uniformArray(gates * H * H, -k, k));
    const B = g.param(`onnx::${cell}_B_l${l}`, [1, 2 * gates * H], g.rng.uniformArray(2 * gates * H, -k, k));
    const name = `/rnn/${cell}${l === 0 ? '' : `_${l}`}`;
    const attrs: Record<string, number> = cell === 'LSTM' ? { hidden_size: H } : { hidden_size: H, linear_before_reset: 1 };
    const outs = g.node(cell, name, [x, W, R, B], attrs, cell === 'LSTM' ? 3 : 2);
    yh = outs[1]!;
    if (l + 1 < L) {
      const axes = g.constI64(`/rnn/Constant_${l}`, [1]);
      x = g.op('Squeeze', `/rnn/Squeeze_${l}`, [outs[0]!, axes]);
    }
  }
  const axes0 = g.constI64('/Constant', [0]);
  const last = g.op('Squeeze', '/Squeeze', [yh, axes0]);
  linearGemm(g, 'fc', last, H, C, unitStd(H), 'output');
  return g.finish({
    kind,
    name: opts.name ?? `${kind}_h${H}_i${I}_s${S}_l${L}_s${opts.seed}`,
    description: `${L}-layer ${cell} (input ${I}, hidden ${H}, ${S} steps, layout 0${cell === 'GRU' ? ', linear_before_reset=1' : ''}) + Gemm head to ${C}`,
    seed: opts.seed,
    inputs: [{ name: 'input', dtype: 'f32', shape: [S, n, I] }],
    outputs: [{ name: 'output', dtype: 'f32', shape: [n, C] }],
  });
}

export function lstm(opts: RnnOptions): ZooModel {
  return recurrent('LSTM', opts);
}

export function gru(opts: RnnOptions): ZooModel {
  return recurrent('GRU', opts);
}
