// Expected moments of an activation of a Gaussian, for generators that set BatchNorm running stats to the
// scale activations will actually have (what a trained, calibrated BN does), so deep nets with saturating
// activations (HardSwish, HardSigmoid gates) neither blow up nor fade out.

export interface Moments {
  readonly mean: number;
  readonly ms: number; // mean square
}

// E[f(z)] and E[f(z)²] for z ~ N(0, s²): midpoint rule on [-8s, 8s].
export function gaussMoments(f: (z: number) => number, s: number): Moments {
  const steps = 2000;
  const h = (16 * s) / steps;
  let mean = 0;
  let ms = 0;
  let wsum = 0;
  for (let i = 0; i < steps; i++) {
    const z = -8 * s + (i + 0.5) * h;
    const w = Math.exp((-0.5 * z * z) / (s * s));
    const v = f(z);
    mean += w * v;
    ms += w * v * v;
    wsum += w;
  }
  return { mean: mean / wsum, ms: ms / wsum };
}

export const reluFn = (z: number): number => (z > 0 ? z : 0);
export const hardSigmoidFn = (z: number): number => Math.min(1, Math.max(0, z / 6 + 0.5));
export const hardSwishFn = (z: number): number => z * hardSigmoidFn(z);
