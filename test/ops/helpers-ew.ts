import * as ort from 'onnxruntime-node';
import { expect } from 'vitest';
import type { DType } from '../../ir/dtype.js';
import { AttrReader, type InferArg, type InferResult, type RawAttr } from '../../ir/op.js';
import { type OpName, opDef } from '../../ir/ops/index.js';
import { type Tensor, fromNumbers, makeTensor, toNumbers } from '../../ir/tensor.js';
import { type AttrValue, encodeModel } from '../../src/onnx/write.js';

// One-node models run through Loom's reference `evaluate` and through onnxruntime (the oracle).

export type Attrs = Readonly<Record<string, AttrValue>>;

const ORT_TYPE: Record<Exclude<DType, 'bf16'>, ort.Tensor.Type> = {
  f32: 'float32',
  f64: 'float64',
  f16: 'float16',
  i64: 'int64',
  i32: 'int32',
  i8: 'int8',
  u8: 'uint8',
  bool: 'bool',
};

function rawAttr(v: AttrValue): RawAttr {
  if (typeof v === 'number') return Number.isInteger(v) ? { kind: 'int', value: v } : { kind: 'float', value: v };
  if (typeof v === 'string') return { kind: 'string', value: v };
  if (Array.isArray(v)) return typeof v[0] === 'string' ? { kind: 'strings', value: v as string[] } : { kind: 'ints', value: v as number[] };
  if (typeof v === 'object' && 'float' in v) return { kind: 'float', value: v.float };
  if (typeof v === 'object' && 'floats' in v) return { kind: 'floats', value: v.floats };
  return { kind: 'tensor', value: v as Tensor };
}

export function attrsOf(op: OpName, attrs: Attrs = {}, opset = 17): unknown {
  const raw = new Map(Object.entries(attrs).map(([k, v]) => [k, rawAttr(v)] as const));
  return opDef(op).attrs(new AttrReader(raw, { opset, where: 'test' }));
}

type AnyDef = {
  evaluate: (a: unknown, i: ReadonlyArray<Tensor | null>, w: string, n: number) => Tensor[];
  infer: (a: unknown, i: ReadonlyArray<InferArg | null>, w: string, n: number) => InferResult[];
};

export function evalOp(op: OpName, inputs: ReadonlyArray<Tensor | null>, attrs: Attrs = {}, nOut = 1, opset = 17): Tensor[] {
  return (opDef(op) as unknown as AnyDef).evaluate(attrsOf(op, attrs, opset), inputs, `node 'n' (${op})`, nOut);
}

export function inferOp(op: OpName, inputs: ReadonlyArray<InferArg | null>, attrs: Attrs = {}, nOut = 1, opset = 17): InferResult[] {
  return (opDef(op) as unknown as AnyDef).infer(attrsOf(op, attrs, opset), inputs, `node 'n' (${op})`, nOut);
}

export async function runOrt(op: string, inputs: ReadonlyArray<Tensor | null>, attrs: Attrs, outs: readonly Tensor[], opset: number): Promise<Tensor[]> {
  const model = encodeModel({
    opset,
    irVersion: opset >= 21 ? 10 : opset >= 19 ? 9 : 8,
    inputs: inputs.flatMap((t, i) => (t ? [{ name: `in${i}`, dtype: t.dtype, shape: t.shape }] : [])),
    outputs: outs.map((t, i) => ({ name: `out${i}`, dtype: t.dtype, shape: t.shape })),
    nodes: [{ op, inputs: inputs.map((t, i) => (t ? `in${i}` : '')), outputs: outs.map((_, i) => `out${i}`), attrs }],
  });
  const session = await ort.InferenceSession.create(model);
  const feeds: Record<string, ort.Tensor> = {};
  inputs.forEach((t, i) => {
    if (!t) return;
    if (t.dtype === 'bf16') throw new Error('onnxruntime-node takes no bf16 inputs');
    feeds[`in${i}`] = new ort.Tensor(ORT_TYPE[t.dtype], t.data as Float32Array, t.shape);
  });
  const res = await session.run(feeds);
  await session.release();
  return outs.map((o, i) => {
    const r = res[`out${i}`]!;
    let data = r.data as Float32Array;
    if (o.dtype === 'bool' && !(data instanceof Uint8Array)) data = Uint8Array.from(data as ArrayLike<number>) as unknown as Float32Array;
    return makeTensor(o.dtype, r.dims.map(Number), data.slice());
  });
}

export function expectClose(ours: Tensor, ref: Tensor, rtol: number, label = ''): void {
  expect(ours.dtype, `${label} dtype`).toBe(ref.dtype);
  expect(ours.shape, `${label} shape`).toEqual(ref.shape);
  if (ours.dtype === 'i64') {
    expect(Array.from(ours.data as BigInt64Array), label).toEqual(Array.from(ref.data as BigInt64Array));
    return;
  }
  const a = toNumbers(ours);
  const b = toNumbers(ref);
  const atol = rtol * 0.1;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (Number.isNaN(y) && Number.isNaN(x)) continue;
    if (x === y) continue;
    if (!(Math.abs(x - y) <= rtol * Math.abs(y) + atol)) {
      expect.fail(`${label} element ${i}: ours ${x}, onnxruntime ${y} (rtol ${rtol})`);
    }
  }
}

export interface CheckOpts {
  readonly nOut?: number;
  readonly opset?: number;
  readonly rtol?: number;
}

// Our evaluate against onnxruntime; also checks that infer predicts the evaluated output types.
export async function checkOp(op: OpName, inputs: ReadonlyArray<Tensor | null>, attrs: Attrs = {}, o: CheckOpts = {}): Promise<Tensor[]> {
  const nOut = o.nOut ?? 1;
  const opset = o.opset ?? 17;
  const ours = evalOp(op, inputs, attrs, nOut, opset);
  const inferred = inferOp(op, inputs.map((t) => (t ? { type: { dtype: t.dtype, shape: t.shape }, value: t } : null)), attrs, nOut, opset);
  ours.forEach((t, i) => expect(inferred[i]?.type, `infer output ${i}`).toEqual({ dtype: t.dtype, shape: t.shape }));
  const ref = await runOrt(op, inputs, attrs, ours, opset);
  const rtol = o.rtol ?? (inputs.some((t) => t?.dtype === 'f16') ? 2e-3 : 1e-5);
  ours.forEach((t, i) => expectClose(t, ref[i]!, rtol, `${op} output ${i}`));
  return ours;
}

// Deterministic inputs (mulberry32) so a failure reproduces.
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

export function rand(shape: readonly number[], opts: { dtype?: DType; lo?: number; hi?: number; int?: boolean; seed?: number } = {}): Tensor {
  const r = rng(opts.seed ?? seedCounter++);
  const lo = opts.lo ?? -3;
  const hi = opts.hi ?? 3;
  const n = shape.reduce((p, d) => p * d, 1);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const x = lo + (hi - lo) * r();
    v[i] = opts.int ? Math.floor(x) : x;
  }
  return fromNumbers(opts.dtype ?? 'f32', shape, v);
}

export function tensor(dtype: DType, shape: readonly number[], values: readonly number[]): Tensor {
  return fromNumbers(dtype, shape, values);
}

export function i64(values: readonly number[], shape: readonly number[] = [values.length]): Tensor {
  return fromNumbers('i64', shape, values);
}

export function typeArg(dtype: DType, shape: readonly (number | string)[], dims?: readonly (number | string)[]): InferArg {
  return dims ? { type: { dtype, shape }, dims } : { type: { dtype, shape } };
}
