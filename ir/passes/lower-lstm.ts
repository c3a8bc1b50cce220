import type { ValueId } from '../graph.js';
import { type CellFactory, type CellState, type DirectionCell, allZero, foldedBias, recurrentWeight } from './recurrent-util.js';

// One LSTM direction (gate order i, o, f, c):
//   pre = x_t + h·Rᵀ                  (x_t already holds X·Wᵀ + Wb + Rb)
//   i = σ(pre_i + Pi⊙c), f = σ(pre_f + Pf⊙c), g = tanh(pre_c)
//   c' = f⊙c + i⊙g,  o = σ(pre_o + Po⊙c'),  h' = o⊙tanh(c')
// Terms with a zero previous state are left out, so step 0 without initial state has no GEMM.
export const lstmCell: CellFactory = (e, w, d): DirectionCell => {
  const H = w.hidden;
  const rT = recurrentWeight(e, w, d, `R${d}_T`, 0, 4 * H);
  const peep = (k: number): ValueId | null => {
    if (w.p === null) return null;
    const v = w.p.subarray(d * 3 * H + k * H, d * 3 * H + (k + 1) * H);
    return allZero(v) ? null : e.constant(`P${d}_${'iof'[k]}`, [H], v);
  };
  const [pi, po, pf] = [peep(0), peep(1), peep(2)];
  const hasPeep = pi !== null || po !== null || pf !== null;

  return {
    inputBias: foldedBias(w, d),
    step: (tag: string, x: ValueId, prev: CellState): CellState => {
      let pre = x;
      if (prev.h !== null) pre = e.add(`${tag}/pre`, x, e.matmul(`${tag}/hR`, prev.h, rT, null));
      // Without peepholes every gate's pre-activation is `pre` itself: one Clip covers all four.
      if (!hasPeep) pre = e.clipped(`${tag}/pre`, pre);
      const [iPre, oPre, fPre, cPre] = e.split(`${tag}/gates`, pre, 1, 4) as [ValueId, ValueId, ValueId, ValueId];
      const gate = (name: string, v: ValueId, p: ValueId | null, state: ValueId | null): ValueId => {
        if (!hasPeep) return e.sigmoidRaw(`${tag}/${name}`, v);
        const withPeep = p !== null && state !== null ? e.add(`${tag}/${name}_peep`, v, e.mul(`${tag}/${name}_pc`, state, p)) : v;
        return e.sigmoid(`${tag}/${name}`, withPeep);
      };
      const i = gate('i', iPre, pi, prev.c);
      const g = hasPeep ? e.tanh(`${tag}/g`, cPre) : e.op('Tanh', `${tag}/g`, [cPre], {});
      let c = e.mul(`${tag}/ig`, i, g);
      if (prev.c !== null) c = e.add(`${tag}/c`, e.mul(`${tag}/fc`, gate('f', fPre, pf, prev.c), prev.c), c);
      const o = gate('o', oPre, po, c);
      const h = e.mul(`${tag}/h`, o, e.op('Tanh', `${tag}/tanh_c`, [c], {}));
      return { h, c };
    },
  };
};
