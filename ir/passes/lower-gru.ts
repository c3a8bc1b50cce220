import type { ValueId } from '../graph.js';
import { type CellFactory, type CellState, type DirectionCell, allZero, foldedBias, recurrentWeight } from './recurrent-util.js';

// One GRU direction (gate order z, r, h):
//   z, r = σ(x_zr + h·R_zrᵀ)                       (x_t already holds X·Wᵀ + Wb, plus Rb where it folds)
//   linear_before_reset=0: n = tanh(x_h + (r⊙h)·R_hᵀ)     (Rb_h folds into the input GEMM)
//   linear_before_reset=1: n = tanh(x_h + r⊙(h·R_hᵀ + Rb_h))  (Rb_h must stay inside the reset product)
//   h' = (1-z)⊙n + z⊙h = n + z⊙(h - n)
// With the zero state the recurrent GEMMs drop out (Rb_h still counts under linear_before_reset=1).
export function gruCell(linearBeforeReset: boolean): CellFactory {
  return (e, w, d): DirectionCell => {
    const H = w.hidden;
    const g = 3 * H;
    // Rb_h of this direction (linear_before_reset=1 keeps it out of the input GEMM).
    const rbH = w.b === null ? null : w.b.slice(d * 2 * g + g + 2 * H, d * 2 * g + 2 * g);
    const keepRbH = linearBeforeReset && rbH !== null && !allZero(rbH);
    const rT = linearBeforeReset ? recurrentWeight(e, w, d, `R${d}_T`, 0, g) : recurrentWeight(e, w, d, `R${d}_zr_T`, 0, 2 * H);
    const rhT = linearBeforeReset ? null : recurrentWeight(e, w, d, `R${d}_h_T`, 2 * H, g);
    const recBias = keepRbH ? e.constant(`Rb${d}`, [g], [...new Array<number>(2 * H).fill(0), ...rbH!]) : null;
    const rbHConst = keepRbH ? e.constant(`Rb${d}_h`, [H], rbH!) : null;

    return {
      inputBias: linearBeforeReset ? foldedBias(w, d, 0, 2 * H) : foldedBias(w, d),
      step: (tag: string, x: ValueId, prev: CellState): CellState => {
        const [xZr, xH] = e.split(`${tag}/x`, x, 1, 2, [2 * H, H]) as [ValueId, ValueId];
        const h = prev.h;
        let zrPre = xZr;
        let hh: ValueId | null = null; // h·R_hᵀ (+ Rb_h) under linear_before_reset=1
        if (h !== null && linearBeforeReset) {
          const [hZr, hH] = e.split(`${tag}/hR`, e.matmul(`${tag}/hR`, h, rT, recBias), 1, 2, [2 * H, H]) as [ValueId, ValueId];
          zrPre = e.add(`${tag}/zr_pre`, xZr, hZr);
          hh = hH;
        } else if (h !== null) {
          zrPre = e.add(`${tag}/zr_pre`, xZr, e.matmul(`${tag}/hR_zr`, h, rT, null));
        } else if (rbHConst !== null) {
          hh = rbHConst;
        }
        const [z, r] = e.split(`${tag}/zr`, e.sigmoid(`${tag}/zr`, zrPre), 1, 2) as [ValueId, ValueId];
        let nPre = xH;
        if (hh !== null) nPre = e.add(`${tag}/n_pre`, xH, e.mul(`${tag}/r_hh`, r, hh));
        else if (h !== null && rhT !== null) nPre = e.add(`${tag}/n_pre`, xH, e.matmul(`${tag}/rh_R`, e.mul(`${tag}/rh`, r, h), rhT, null));
        const n = e.tanh(`${tag}/n`, nPre);
        const hNew = h === null ? e.sub(`${tag}/h`, n, e.mul(`${tag}/zn`, z, n)) : e.add(`${tag}/h`, n, e.mul(`${tag}/z_dh`, z, e.sub(`${tag}/dh`, h, n)));
        return { h: hNew, c: null };
      },
    };
  };
}
