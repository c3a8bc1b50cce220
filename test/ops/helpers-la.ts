import * as ort from 'onnxruntime-node';
import { expect } from 'vitest';
import type { DType } from '../../ir/dtype.js';
import { AttrReader, type InferArg, type InferResult, type RawAttr } from '../../ir/op.js';
import { type OpName, opDef } from '../../ir/ops/index.js';
import { type Tensor, fromNumbers, makeTensor, toNumbers } from '../../ir/tensor.js';
import { type AttrValue, encodeModel } from '../../src/onnx/write.js';

// One-node models evaluated by Loom's reference `evaluate` and by onnxruntime-node (the oracle).

export type Attrs = Readonly<Record<string, AttrValue>>;

function rawAttr(v: AttrValue): RawAttr {
  if (typeof v === 'number') return Number.isInteger(v) ? { kind: 'int', value: v } : { kind: 'float', value: v };
  if (typeof v === 'string') return { kind: 'string', value: v };
  if (Array.isArray(v)) return typeof v[0] === 'string' ? { kind: 'strings', value: v as string[] } : { kind: 'ints', value: v as number[] };
  if (typeof v === 'object' && 'float' in v) return { kind: 'float', value: v.float };
  if (typeof v === 'object' && 'floats' in v) return { kind: 'floats', value: v.floats };
  return { kind: 'tensor', value: v as Tensor };
}

export function attrsOf(op: OpName, attrs: Attrs = {}): unknown {
  const raw = new Map(Object.entries(attrs).map(([k, v]) => [k, rawAttr(v)] as const));
  return opDef(op).attrs(new AttrReader(raw, { opset: 17, where: 't' }));
}

type AnyDef = {
  evaluate: (a: unknown, i: ReadonlyArray<Tensor | null>, w: string, n: number) => Tensor[];
  infer: (a: unknown, i: ReadonlyArray<InferArg | null>, w: string, n: number) => InferResult[];
};

// `attrs` may be ONNX attributes (decoded through the op's reader) or, with `ir`, typed IR attrs as is.
export function evalOp(op: OpName, inputs: ReadonlyArray<Tensor | null>, attrs: Attrs = {}, nOut = 1, ir?: object): Tensor[] {
  return (opDef(op) as unknown as AnyDef).evaluate(ir ?? attrsOf(op, attrs), inputs, `node 'n' (${op})`, nOut);
}

export function inferOp(op: OpName, inputs: ReadonlyArray<InferArg | null>, attrs: Attrs = {}, nOut = 1): InferResult[] {
  return (opDef(op) as unknown as AnyDef).infer(attrsOf(op, attrs), inputs, `node 'n' (${op})`, nOut);
}

// Deterministic uniform values in [lo, hi).
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let seedCounter = 1;
export function rand(shape: readonly number[], lo = -1, hi = 1, dtype: DType = 'f32'): Tensor {
  const r = rng(seedCounter++ * 7919);
  const n = shape.reduce((a, b) => a * b, 1);
  return fromNumbers(dtype, shape, Array.from({ length: n }, () => lo + (hi - lo) * r()));
}

export function tensor(dtype: DType, shape: readonly number[], values: readonly number[]): Tensor {
  return fromNumbers(dtype, shape, values);
}

const ORT_TYPE: Partial<Record<DType, ort.Tensor.Type>> = { f32: 'float32', f64: 'float64', i64: 'int64', i32: 'int32' };

export async function runOrt(op: string, inputs: ReadonlyArray<Tensor | null>, attrs: Attrs, outs: readonly Tensor[]): Promise<Tensor[]> {
  const model = encodeModel({
    opset: 17,
    inputs: inputs.flatMap((t, i) => (t ? [{ name: `in${i}`, dtype: t.dtype, shape: t.shape }] : [])),
    outputs: outs.map((t, i) => ({ name: `out${i}`, dtype: t.dtype, shape: t.shape.map((_, j) => `o${i}_${j}`) })),
    nodes: [{ op, inputs: inputs.map((t, i) => (t ? `in${i}` : '')), outputs: outs.map((_, i) => `out${i}`), attrs }],
  });
  const session = await ort.InferenceSession.create(model);
  const feeds: Record<string, ort.Tensor> = {};
  inputs.forEach((t, i) => {
    if (t) feeds[`in${i}`] = new ort.Tensor(ORT_TYPE[t.dtype]!, t.data as Float32Array, t.shape);
  });
  const res = await session.run(feeds);
  await session.release();
  return outs.map((o, i) => {
    const r = res[`out${i}`]!;
    return makeTensor(o.dtype, r.dims.map(Number), (r.data as Float32Array).slice());
  });
}

export function expectClose(ours: Tensor, ref: Tensor, tol = 1e-4, label = ''): void {
  expect(ours.dtype, `${label} dtype`).toBe(ref.dtype);
  expect(ours.shape, `${label} shape`).toEqual(ref.shape);
  const a = toNumbers(ours);
  const b = toNumbers(ref);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const err = Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!));
    if (!(err <= worst)) {
      worst = err;
      at = i;
    }
  }
  expect(worst, `${label} worst rel. error at flat index ${at}: ours ${a[at]} vs ort ${b[at]}`).toBeLessThanOrEqual(tol);
}

// Evaluate with Loom, check the shape rule agrees with the computed shapes, then compare with onnxruntime.
export async function checkOp(op: OpName, inputs: ReadonlyArray<Tensor | null>, attrs: Attrs = {}, nOut = 1, tol = 1e-4): Promise<Tensor[]> {
  const ours = evalOp(op, inputs, attrs, nOut);
  expect(ours.length).toBe(nOut);
  const inferred = inferOp(
    op,
    inputs.map((t) => (t ? { type: { dtype: t.dtype, shape: t.shape }, value: t } : null)),
    attrs,
    nOut,
  );
  inferred.forEach((r, i) => expect(r.type.shape, `inferred shape of output ${i}`).toEqual(ours[i]!.shape));
  const ref = await runOrt(op, inputs, attrs, ours);
  ours.forEach((t, i) => expectClose(t, ref[i]!, tol, `${op} output ${i}`));
  return ours;
}
