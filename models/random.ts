import { fail } from '../ir/errors.js';

// Seeded randomness for the model zoo. Same seed → same stream → byte-identical ONNX files, so tenants of a
// fleet are reproducible and a weight mix-up between two tenants shows up as a wrong answer.

// mulberry32: 32-bit state, fast, good enough for weight init (not for cryptography).
export class Rng {
  private state: number;
  private spare: number | null = null; // Box-Muller yields pairs; keep the second for the next call

  constructor(seed: number) {
    this.state = hashSeed(seed);
  }

  // Uniform in [0, 1).
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  // Integer in [0, n).
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  // Standard normal via Box-Muller.
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u = this.next();
    while (u === 0) u = this.next(); // log(0) would be -inf
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  normalArray(n: number, std: number, mean = 0): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = mean + std * this.normal();
    return out;
  }

  uniformArray(n: number, lo: number, hi: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * this.next();
    return out;
  }
}

// Spreads nearby seeds (0, 1, 2, ...) over the state space so their streams do not start out correlated.
function hashSeed(seed: number): number {
  if (!Number.isSafeInteger(seed)) fail('USAGE', `model zoo: option 'seed' must be an integer, got ${seed}`);
  let h = (seed ^ 0x9e3779b9) | 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 0;
}

// He (Kaiming) normal: keeps E[x²] constant through a linear map followed by ReLU.
export function heStd(fanIn: number): number {
  return Math.sqrt(2 / fanIn);
}

// Unit-gain (LeCun/Xavier-in) normal: keeps E[x²] constant through a linear map with no rectifier after it.
export function unitStd(fanIn: number): number {
  return Math.sqrt(1 / fanIn);
}
