// Activations that canonicalization attaches to the Gemm/MatMul/Conv they follow (an epilogue),
// and the scalar function each computes. Shared by op reference semantics and later stages.
export type Activation =
  | { readonly kind: 'relu' }
  | { readonly kind: 'sigmoid' }
  | { readonly kind: 'tanh' }
  | { readonly kind: 'gelu_erf' }
  | { readonly kind: 'gelu_tanh' }
  | { readonly kind: 'leaky_relu'; readonly alpha: number }
  | { readonly kind: 'clip'; readonly min: number; readonly max: number }
  | { readonly kind: 'hard_sigmoid'; readonly alpha: number; readonly beta: number }
  | { readonly kind: 'hard_swish' };

// The same activation with its fields in declaration order (kind first): an activation read back from IR
// text has them in the printer's order, and kernel keys and names hash the op's JSON.
export function canonicalActivation(a: Activation): Activation;
export function canonicalActivation(a: Activation | null): Activation | null;
export function canonicalActivation(a: Activation | null): Activation | null {
  if (a === null) return null;
  switch (a.kind) {
    case 'leaky_relu':
      return { kind: a.kind, alpha: a.alpha };
    case 'clip':
      return { kind: a.kind, min: a.min, max: a.max };
    case 'hard_sigmoid':
      return { kind: a.kind, alpha: a.alpha, beta: a.beta };
    default:
      return { kind: a.kind };
  }
}

// Abramowitz–Stegun 7.1.26 is too coarse for 1e-5 oracles; use a series/continued-fraction erf.
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    // Maclaurin series, converges fast for |x| < 2.5
    let sum = x;
    let term = x;
    const x2 = x * x;
    for (let n = 1; n < 60; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction (Lentz) for larger |x|
  const t = ax;
  let f = t;
  let c = t;
  let d = 0;
  for (let n = 1; n < 200; n++) {
    const an = n / 2;
    d = t + an * d;
    d = d === 0 ? 1e-300 : 1 / d;
    c = t + an / c;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-t * t) / Math.sqrt(Math.PI) / f;
  return x > 0 ? 1 - erfc : erfc - 1;
}

export function applyActivation(a: Activation, x: number): number {
  switch (a.kind) {
    case 'relu':
      return x > 0 ? x : 0;
    case 'sigmoid':
      return 1 / (1 + Math.exp(-x));
    case 'tanh':
      return Math.tanh(x);
    case 'gelu_erf':
      return 0.5 * x * (1 + erf(x / Math.SQRT2));
    case 'gelu_tanh':
      return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
    case 'leaky_relu':
      return x >= 0 ? x : a.alpha * x;
    case 'clip':
      return Math.min(a.max, Math.max(a.min, x));
    case 'hard_sigmoid':
      return Math.max(0, Math.min(1, a.alpha * x + a.beta));
    case 'hard_swish':
      return x * Math.max(0, Math.min(1, x / 6 + 0.5));
    default: {
      const never: never = a;
      throw new Error(`unknown activation ${JSON.stringify(never)}`);
    }
  }
}
