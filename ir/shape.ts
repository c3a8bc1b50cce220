import { fail } from './errors.js';

// A dimension is a concrete size or a symbol (the batch dimension, usually 'N'). A symbolic dim may
// also be the batch symbol times a constant, spelled 'N*16': Flatten/Reshape make it when they merge
// the batch dim with static ones (TorchScript exports advanced indexing x[b, i] as Flatten + Gather).
export type Dim = number | string;
export type Shape = readonly Dim[];

const SCALED = /^(.+)\*(\d+)$/;

// The symbol and constant factor of a symbolic dim: 'N' → {N, 1}, 'N*16' → {N, 16}.
export function splitSymbolic(d: string): { readonly sym: string; readonly k: number } {
  const m = SCALED.exec(d);
  return m ? { sym: m[1]!, k: Number(m[2]) } : { sym: d, k: 1 };
}

// `sym` (itself possibly scaled) times k ≥ 0, in the canonical spelling, so equal products compare equal.
export function scaledSymbol(sym: string, k: number): Dim {
  const base = splitSymbolic(sym);
  const n = base.k * k;
  return n === 0 ? 0 : n === 1 ? base.sym : `${base.sym}*${n}`;
}

export function isStatic(s: Shape): s is readonly number[] {
  return s.every((d) => typeof d === 'number');
}

export function shapeToString(s: Shape): string {
  return `[${s.join(',')}]`;
}

// Element count, or undefined when a symbolic dimension is involved.
export function numelOf(s: Shape): number | undefined {
  let n = 1;
  for (const d of s) {
    if (typeof d !== 'number') return undefined;
    n *= d;
  }
  return n;
}

export function numel(s: readonly number[]): number {
  let n = 1;
  for (const d of s) n *= d;
  return n;
}

export function stridesOf(s: readonly number[]): number[] {
  const st = new Array<number>(s.length);
  let acc = 1;
  for (let i = s.length - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= s[i]!;
  }
  return st;
}

export function normalizeAxis(axis: number, rank: number, where: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) fail('SHAPE', `${where}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}

export function dimsEqual(a: Dim, b: Dim): boolean {
  return a === b;
}

export function shapesEqual(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

// Numpy-style multidirectional broadcasting. Symbolic dims broadcast with 1 or an equal symbol.
export function broadcastShapes(shapes: readonly Shape[], where: string): Dim[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: Dim[] = new Array<Dim>(rank).fill(1);
  for (const s of shapes) {
    const off = rank - s.length;
    for (let i = 0; i < s.length; i++) {
      const d = s[i]!;
      const cur = out[off + i]!;
      if (cur === 1) out[off + i] = d;
      else if (d === 1 || d === cur) continue;
      else fail('SHAPE', `${where}: shapes ${shapes.map(shapeToString).join(' and ')} cannot be broadcast (dim ${off + i}: ${cur} vs ${d})`);
    }
  }
  return out;
}
