import { describe, expect, it } from 'vitest';
import { isLoomError } from '../../ir/errors.js';
import type { Tensor } from '../../ir/tensor.js';
import { toNumbers } from '../../ir/tensor.js';
import { type Attrs, attrsOf, evalOp, inferOp } from '../support/one-node.js';
import { tensor } from '../support/tensors.js';
import { checkOp, rand } from './helpers-la.js';

const [SEQ, BATCH, IN, H] = [4, 2, 3, 5];

interface Case {
  readonly name: string;
  readonly direction: 'forward' | 'reverse' | 'bidirectional';
  readonly bias?: boolean;
  readonly initial?: boolean;
  readonly lens?: readonly number[];
  readonly peep?: boolean;
  readonly attrs?: Attrs;
}

// Inputs in ONNX order: X, W, R, B, sequence_lens, initial_h (, initial_c, P for LSTM).
function rnnInputs(gates: number, c: Case, lstm: boolean): Array<Tensor | null> {
  const dirs = c.direction === 'bidirectional' ? 2 : 1;
  const ins: Array<Tensor | null> = [
    rand([SEQ, BATCH, IN]),
    rand([dirs, gates * H, IN], -0.6, 0.6),
    rand([dirs, gates * H, H], -0.6, 0.6),
    c.bias ? rand([dirs, 2 * gates * H], -0.5, 0.5) : null,
    c.lens ? tensor('i32', [BATCH], c.lens) : null,
    c.initial ? rand([dirs, BATCH, H]) : null,
  ];
  if (lstm) ins.push(c.initial ? rand([dirs, BATCH, H]) : null, c.peep ? rand([dirs, 3 * H], -0.5, 0.5) : null);
  while (ins.length > 3 && ins[ins.length - 1] === null) ins.pop();
  return ins;
}

const common: Case[] = [
  { name: 'forward, no B, no initial state', direction: 'forward' },
  { name: 'forward with B and initial state', direction: 'forward', bias: true, initial: true },
  { name: 'reverse with B and sequence_lens', direction: 'reverse', bias: true, lens: [4, 2] },
  { name: 'bidirectional with B, initial state, sequence_lens', direction: 'bidirectional', bias: true, initial: true, lens: [3, 4] },
  { name: 'bidirectional, clip', direction: 'bidirectional', bias: true, attrs: { clip: { float: 0.7 } } },
];

describe('LSTM', () => {
  const cases: Case[] = [
    ...common,
    { name: 'bidirectional with peepholes', direction: 'bidirectional', bias: true, initial: true, peep: true },
    { name: 'input_forget', direction: 'forward', bias: true, initial: true, attrs: { input_forget: 1 } },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      await checkOp('LSTM', rnnInputs(4, c, true), { direction: c.direction, hidden_size: H, ...c.attrs }, 3);
    });
  }
});

describe('GRU', () => {
  for (const lbr of [0, 1]) {
    for (const c of common) {
      it(`linear_before_reset=${lbr}: ${c.name}`, async () => {
        await checkOp('GRU', rnnInputs(3, c, false), { direction: c.direction, hidden_size: H, linear_before_reset: lbr, ...c.attrs }, 2);
      });
    }
  }
});

describe('RNN', () => {
  for (const c of common) {
    it(c.name, async () => {
      await checkOp('RNN', rnnInputs(1, c, false), { direction: c.direction, hidden_size: H, ...c.attrs }, 2);
    });
  }
});

describe('recurrent IR behaviour', () => {
  // onnxruntime's CPU kernels reject layout=1, so check it against layout 0 on transposed data.
  it('layout=1 equals layout=0 on batch-major transposes', () => {
    const c: Case = { name: '', direction: 'bidirectional', bias: true, initial: true };
    const ins = rnnInputs(4, c, true);
    const swap = (t: Tensor): Tensor => {
      const [a, b, d] = t.shape as [number, number, number];
      const v = toNumbers(t);
      const out: number[] = new Array<number>(v.length);
      for (let i = 0; i < a; i++) for (let j = 0; j < b; j++) for (let k = 0; k < d; k++) out[(j * a + i) * d + k] = v[(i * b + j) * d + k]!;
      return tensor(t.dtype, [b, a, d], out);
    };
    const ref = evalOp('LSTM', ins, { direction: 'bidirectional', hidden_size: H }, 3);
    const batchMajor = ins.map((t, i) => (t && (i === 0 || i === 5 || i === 6) ? swap(t) : t));
    const got = evalOp('LSTM', batchMajor, { direction: 'bidirectional', hidden_size: H, layout: 1 }, 3);
    expect(got[0]!.shape).toEqual([BATCH, SEQ, 2, H]);
    expect(got[1]!.shape).toEqual([BATCH, 2, H]);
    // Y [seq, dirs, batch, H] -> [batch, seq, dirs, H]
    const y = toNumbers(ref[0]!);
    const yb = toNumbers(got[0]!);
    for (let t = 0; t < SEQ; t++) {
      for (let d = 0; d < 2; d++) {
        for (let b = 0; b < BATCH; b++) {
          for (let h = 0; h < H; h++) expect(yb[((b * SEQ + t) * 2 + d) * H + h]).toBe(y[((t * 2 + d) * BATCH + b) * H + h]);
        }
      }
    }
    expect(Array.from(toNumbers(got[1]!))).toEqual(Array.from(toNumbers(swap(ref[1]!))));
    expect(Array.from(toNumbers(got[2]!))).toEqual(Array.from(toNumbers(swap(ref[2]!))));
  });

  it('hidden_size may come from R; outputs can be fewer than the maximum', () => {
    const ins = rnnInputs(3, { name: '', direction: 'forward' }, false);
    const out = evalOp('GRU', ins, {}, 1);
    expect(out.length).toBe(1);
    expect(out[0]!.shape).toEqual([SEQ, 1, BATCH, H]);
  });

  it('infers symbolic batch and sequence dims', () => {
    const r = inferOp(
      'LSTM',
      [{ type: { dtype: 'f32', shape: ['T', 'N', IN] } }, { type: { dtype: 'f32', shape: [2, 4 * H, IN] } }, { type: { dtype: 'f32', shape: [2, 4 * H, H] } }],
      { direction: 'bidirectional', hidden_size: H },
      3,
    );
    expect(r.map((x) => x.type.shape)).toEqual([
      ['T', 2, 'N', H],
      [2, 'N', H],
      [2, 'N', H],
    ]);
  });

  it('non-default activations are UNSUPPORTED_FEATURE; defaults are accepted', () => {
    expect(() => attrsOf('LSTM', { activations: ['Sigmoid', 'Tanh', 'Tanh'] })).not.toThrow();
    try {
      attrsOf('GRU', { activations: ['Sigmoid', 'Relu'] });
      expect.unreachable();
    } catch (e) {
      expect(isLoomError(e) && e.code).toBe('UNSUPPORTED_FEATURE');
      expect(String(e)).toMatch(/activations/);
    }
  });
});
