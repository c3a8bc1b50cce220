import type { Node, ValueId } from '../graph.js';
import type { Activation } from '../ops/activation.js';
import { type Tensor, toNumbers } from '../tensor.js';
import type { GraphIndex } from './rewrite.js';

// Pattern helpers over the old graph (a GraphIndex), shared by the fusion passes.

// A numeric attribute read without knowing the op's attrs type (booleans read as 0/1).
export function numAttr(n: Node, name: string, dflt: number): number {
  const v = (n.attrs as Record<string, unknown>)[name];
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return dflt;
}

export function strAttr(n: Node, name: string, dflt: string): string {
  const v = (n.attrs as Record<string, unknown>)[name];
  return typeof v === 'string' ? v : dflt;
}

export function hasActivation(n: Node): boolean {
  const a = (n.attrs as { activation?: unknown }).activation;
  return a !== undefined && a !== null;
}

// The value of a one-element constant that does not raise the rank of a value of rank `rank`.
export function scalarConst(old: GraphIndex, v: ValueId | null | undefined, rank: number): number | undefined {
  if (v === null || v === undefined) return undefined;
  const t = old.constant(v);
  if (t === undefined || t.data.length !== 1 || t.shape.length > rank) return undefined;
  return toNumbers(t)[0];
}

// c (right-aligned against a rank-`rank` value) has size `channels` at `axis` and 1 everywhere else,
// or is a single value: one number per channel of that value.
export function perChannel(c: Tensor, rank: number, axis: number, channels: number): boolean {
  if (c.data.length === 1) return true;
  if (c.data.length !== channels) return false;
  const off = rank - c.shape.length;
  if (off > axis && channels !== 1) return false;
  return c.shape.every((d, i) => (i + off === axis ? d === channels : d === 1));
}

// An existing bias input: absent (undefined), a constant per channel or single value, or unusable (null).
export function existingBias(old: GraphIndex, v: ValueId | null | undefined, channels: number): Tensor | undefined | null {
  if (v === null || v === undefined) return undefined;
  const t = old.constant(v);
  if (t === undefined || (t.data.length !== channels && t.data.length !== 1)) return null;
  if (t.shape.filter((d) => d !== 1).length > 1) return null;
  if (t.data.length === channels && channels !== 1 && t.shape[t.shape.length - 1] !== channels) return null;
  return t;
}

const near = (a: number | undefined, b: number, tol = 1e-4): boolean => a !== undefined && Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

export interface ActivationMatch {
  readonly activation: Activation;
  readonly nodes: readonly Node[]; // old nodes the activation replaces
  readonly out: ValueId; // old value that the fused producer now computes
}

// Recognizes an activation applied to old value x, whose every use is inside the pattern.
export function matchActivation(old: GraphIndex, x: ValueId): ActivationMatch | undefined {
  if (old.isGraphOutput(x)) return undefined;
  return matchSingle(old, x) ?? matchGeluErf(old, x) ?? matchHardSwishProduct(old, x);
}

function matchSingle(old: GraphIndex, x: ValueId): ActivationMatch | undefined {
  const n = old.soleConsumer(x);
  if (n === undefined || n.inputs[0] !== x || n.outputs.length !== 1) return undefined;
  const act = singleActivation(old, n, old.value(x).type.shape.length);
  return act === undefined ? undefined : { activation: act, nodes: [n], out: n.outputs[0]! };
}

// Clip's bounds when absent: the f32 range (attrs stay JSON-able, so no Infinity).
const F32_MAX = 3.4028234663852886e38;

function singleActivation(old: GraphIndex, n: Node, rank: number): Activation | undefined {
  switch (n.op) {
    case 'Relu':
      return { kind: 'relu' };
    case 'Sigmoid':
      return { kind: 'sigmoid' };
    case 'Tanh':
      return { kind: 'tanh' };
    case 'LeakyRelu':
      return { kind: 'leaky_relu', alpha: numAttr(n, 'alpha', 0.01) };
    case 'HardSigmoid':
      return { kind: 'hard_sigmoid', alpha: numAttr(n, 'alpha', 0.2), beta: numAttr(n, 'beta', 0.5) };
    case 'HardSwish':
      return { kind: 'hard_swish' };
    case 'Gelu':
      return strAttr(n, 'approximate', 'none') === 'tanh' ? { kind: 'gelu_tanh' } : { kind: 'gelu_erf' };
    case 'Clip': {
      const lo = n.inputs[1] == null ? -F32_MAX : scalarConst(old, n.inputs[1], rank);
      const hi = n.inputs[2] == null ? F32_MAX : scalarConst(old, n.inputs[2], rank);
      return lo === undefined || hi === undefined ? undefined : { kind: 'clip', min: lo, max: hi };
    }
    default:
      return undefined;
  }
}

// A tree of Mul (and Div by a constant) nodes: its non-constant leaves and the product of its constants.
interface Product {
  readonly leaves: readonly ValueId[];
  readonly factor: number;
  readonly nodes: readonly Node[];
}

function isProductNode(old: GraphIndex, n: Node, rank: number): boolean {
  return n.op === 'Mul' || (n.op === 'Div' && scalarConst(old, n.inputs[1], rank) !== undefined);
}

function flattenProduct(old: GraphIndex, root: Node, rank: number): Product {
  const leaves: ValueId[] = [];
  const nodes: Node[] = [];
  let factor = 1;
  const visit = (n: Node): void => {
    nodes.push(n);
    const [a, b] = n.inputs;
    const operands = n.op === 'Div' ? [a] : [a, b];
    if (n.op === 'Div') factor /= scalarConst(old, b, rank)!;
    for (const v of operands) {
      if (v === null || v === undefined) continue;
      const c = scalarConst(old, v, rank);
      if (c !== undefined) {
        factor *= c;
        continue;
      }
      const p = old.producer(v);
      if (p !== undefined && old.soleConsumer(v) === n && p.outputs.length === 1 && isProductNode(old, p, rank)) visit(p);
      else leaves.push(v);
    }
  };
  visit(root);
  return { leaves, factor, nodes };
}

// `gate` is a value computed from x by `branch` nodes; finds the lowest product tree above gate whose
// leaves are exactly {x, gate} with constant factor `factor`, and where every use of x is in the pattern.
function matchGatedProduct(old: GraphIndex, x: ValueId, gate: ValueId, branch: readonly Node[], factor: number): ActivationMatch | undefined {
  const rank = old.value(x).type.shape.length;
  let v = gate;
  for (;;) {
    const m = old.soleConsumer(v);
    if (m === undefined || m.outputs.length !== 1 || !isProductNode(old, m, rank) || (m.op === 'Div' && m.inputs[0] !== v)) return undefined;
    v = m.outputs[0]!;
    const p = flattenProduct(old, m, rank);
    const ok =
      p.leaves.length === 2 &&
      p.leaves.includes(x) &&
      p.leaves.includes(gate) &&
      near(p.factor, factor, 1e-6) &&
      p.nodes.every((n) => n === m || !old.isGraphOutput(n.outputs[0]!));
    if (!ok) continue;
    const inPattern = new Set<Node>([...branch, ...p.nodes]);
    if (!old.consumers(x).every((c) => inPattern.has(c))) return undefined;
    return { activation: undefined as never, nodes: [...branch, ...p.nodes], out: v };
  }
}

function otherOperand(n: Node, v: ValueId): ValueId | null | undefined {
  return n.inputs[0] === v ? n.inputs[1] : n.inputs[1] === v ? n.inputs[0] : undefined;
}

// PyTorch's exact GELU: x * 0.5 * (1 + erf(x / sqrt(2))), in its exporters' several orderings.
function matchGeluErf(old: GraphIndex, x: ValueId): ActivationMatch | undefined {
  const rank = old.value(x).type.shape.length;
  for (const e of old.consumers(x)) {
    const scaled =
      (e.op === 'Div' && e.inputs[0] === x && near(scalarConst(old, e.inputs[1], rank), Math.SQRT2)) ||
      (e.op === 'Mul' && near(scalarConst(old, otherOperand(e, x), rank), Math.SQRT1_2));
    if (!scaled) continue;
    const erf = old.soleConsumer(e.outputs[0]!);
    if (erf?.op !== 'Erf') continue;
    const add = old.soleConsumer(erf.outputs[0]!);
    if (add?.op !== 'Add' || !near(scalarConst(old, otherOperand(add, erf.outputs[0]!), rank), 1)) continue;
    const m = matchGatedProduct(old, x, add.outputs[0]!, [e, erf, add], 0.5);
    if (m !== undefined) return { ...m, activation: { kind: 'gelu_erf' } };
  }
  return undefined;
}

// hard_swish(x) = x * HardSigmoid(x; 1/6, 1/2) (Paddle) = x * Clip(x + 3, 0, 6) / 6 (PyTorch-style).
function matchHardSwishProduct(old: GraphIndex, x: ValueId): ActivationMatch | undefined {
  const rank = old.value(x).type.shape.length;
  for (const c of old.consumers(x)) {
    if (c.op === 'HardSigmoid' && near(numAttr(c, 'alpha', 0.2), 1 / 6) && near(numAttr(c, 'beta', 0.5), 0.5)) {
      const m = matchGatedProduct(old, x, c.outputs[0]!, [c], 1);
      if (m !== undefined) return { ...m, activation: { kind: 'hard_swish' } };
    }
    if (c.op === 'Add' && near(scalarConst(old, otherOperand(c, x), rank), 3)) {
      const clip = old.soleConsumer(c.outputs[0]!);
      if (clip?.op !== 'Clip' || clip.inputs[0] !== c.outputs[0]) continue;
      if (!near(scalarConst(old, clip.inputs[1], rank), 0) || !near(scalarConst(old, clip.inputs[2], rank), 6)) continue;
      const m = matchGatedProduct(old, x, clip.outputs[0]!, [c, clip], 1 / 6);
      if (m !== undefined) return { ...m, activation: { kind: 'hard_swish' } };
    }
  }
  return undefined;
}
