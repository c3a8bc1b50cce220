import type { ValueId } from '../graph.js';
import { type CellFactory, type CellState, type DirectionCell, foldedBias, recurrentWeight } from './recurrent-util.js';

// One plain RNN direction: h' = tanh(x_t + h·Rᵀ), x_t holding X·Wᵀ + Wb + Rb.
export const rnnCell: CellFactory = (e, w, d): DirectionCell => {
  const rT = recurrentWeight(e, w, d, `R${d}_T`, 0, w.hidden);
  return {
    inputBias: foldedBias(w, d),
    step: (tag: string, x: ValueId, prev: CellState): CellState => {
      const pre = prev.h === null ? x : e.add(`${tag}/pre`, x, e.matmul(`${tag}/hR`, prev.h, rT, null));
      return { h: e.tanh(`${tag}/h`, pre), c: null };
    },
  };
};
