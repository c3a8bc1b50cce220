import * as ort from 'onnxruntime-node';
import { expect } from 'vitest';
import type { DType } from '../../ir/dtype.js';
import { AttrReader, type InferArg, type RawAttr } from '../../ir/op.js';
import { type OpName, opDef } from '../../ir/ops/index.js';
import { type Tensor, fromNumbers, makeTensor, tensorType, toNumbers } from '../../ir/tensor.js';
import { type AttrValue, encodeModel } from '../../src/onnx/write.js';

// One-node models run both through Loom's reference `evaluate` and onnxruntime, the oracle.

export type Attrs = Readonly<Record<string, AttrValue>>;

const ORT_TYPE: Partial<Record<DType, ort.Tensor.Type>> = {
  f32: 'float32',
  f64: 'float64',
  i64: 'int64',
  i32: 'int32',
  i8: 'int8',
  u8: 'uint8',
  bool: 'bool',
};

function isTensor(v: AttrValue): v is Tensor {
  return typeof v === 'object' && v !== null && 'data' in v && 'dtype' in v;
}

export function rawAttrs(attrs: Attrs): Map<string, RawAttr> {
  const m = new Map<string, RawAttr>();
  for (const [k, v] of Object.entries(attrs)) {
    let r: RawAttr;
    if (typeof v === 'number') r = Number.isInteger(v) ? { kind: 'int', value: v } : { kind: 'float', value: v };
    else if (typeof v === 'string') r = { kind: 'string', value: v };
    else if (isTensor(v)) r = { kind: 'tensor', value: v };
    else if (Array.isArray(v)) r = typeof v[0] === 'string' ? { kind: 'strings', value: v as string[] } : { kind: 'ints', value: v as number[] };
    else if ('float' in v) r = { kind: 'float', value: v.float };
    else r = { kind: 'floats', value: (v as { floats: number[] }).floats };
    m.set(k, r);
  }
  return m;
}

export function readAttrs(op: OpName, attrs: Attrs, opset = 17): unknown {
  return opDef(op).attrs(new AttrReader(rawAttrs(attrs), { opset, where: 't' }));
}

export function evalOurs(op: OpName, inputs: ReadonlyArray<Tensor | null>, attrs: Attrs = {}, nOut = 1, opset = 17): Tensor[] {
  const def = opDef(op) as unknown as { evaluate: (a: unknown, i: ReadonlyArray<Tensor | null>, w: string, n: number) => Tensor[] };
  return def.evaluate(readAttrs(op, attrs, opset), inputs, 't', nOut);
}

export function inferOurs(op: OpName, inputs: ReadonlyArray<InferArg | null>, attrs: Attrs = {}, nOut = 1, opset = 17) {
  const def = opDef(op) as unknown as { infer: (a: unknown, i: ReadonlyArray<InferArg | null>, w: string, n: number) => { type: { dtype: DType; shape: readonly (number | string)[] }; dims?: readonly (number | string)[] }[] };
  return def.infer(readAttrs(op, attrs, opset), inputs, 't', nOut);
}

export async function runOrt(op: string, inputs: ReadonlyArray<Tensor | null>, attrs: Attrs, outs: readonly Tensor[], opset = 17): Promise<Tensor[]> {
  const names = inputs.map((t, i) => (t ? `in${i}` : ''));
  const model = encodeModel({
    opset,
    inputs: inputs.flatMap((t, i) => (t ? [{ name: `in${i}`, dtype: t.dtype, shape: t.shape }] : [])),
    outputs: outs.map((t, i) => ({ name: `out${i}`, dtype: t.dtype, shape: t.shape })),
    nodes: [{ op, inputs: names, outputs: outs.map((_, i) => `out${i}`), attrs }],
  });
  const session = await ort.InferenceSession.create(model);
  const feeds: Record<string, ort.Tensor> = {};
  inputs.forEach((t, i) => {
    if (t) feeds[`in${i}`] = new ort.Tensor(ORT_TYPE[t.dtype]!, t.data as Float32Array, t.shape);
  });
  const res = await session.run(feeds);
  return outs.map((o, i) => {
    const r = res[`out${i}`]!;
    return makeTensor(o.dtype, r.dims.map(Number), (r.data as Float32Array).slice());
  });
}

// Our evaluate, our infer (all inputs constant) and onnxruntime must agree exactly.
export async function checkOp(op: OpName, inputs: ReadonlyArray<Tensor | null>, attrs: Attrs = {}, opts: { nOut?: number; opset?: number } = {}): Promise<Tensor[]> {
  const nOut = opts.nOut ?? 1;
  const opset = opts.opset ?? 17;
  const ours = evalOurs(op, inputs, attrs, nOut, opset);
  const theirs = await runOrt(op, inputs, attrs, ours, opset);
  const inferred = inferOurs(op, inputs.map((t) => (t ? { type: tensorType(t), value: t } : null)), attrs, nOut, opset);
  expect(ours.length).toBe(nOut);
  ours.forEach((t, i) => {
    const o = theirs[i]!;
    expect(t.shape, `output ${i} shape`).toEqual(o.shape);
    expect(Array.from(toNumbers(t)), `output ${i} values`).toEqual(Array.from(toNumbers(o)));
    expect(inferred[i]!.type.shape, `output ${i} inferred shape`).toEqual(t.shape);
    expect(inferred[i]!.type.dtype).toBe(t.dtype);
  });
  return ours;
}

// Deterministic distinct-ish values, so a wrong permutation shows.
export function f32(shape: readonly number[], values?: readonly number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return fromNumbers('f32', shape, values ?? Array.from({ length: n }, (_, i) => ((i * 37) % 101) / 4 - 10));
}

export function ints(dtype: 'i64' | 'i32', shape: readonly number[], values?: readonly number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return fromNumbers(dtype, shape, values ?? Array.from({ length: n }, (_, i) => i * 3 - 7));
}

export const i64 = (values: readonly number[], shape: readonly number[] = [values.length]): Tensor => fromNumbers('i64', shape, values);
export const i64s = (v: number): Tensor => fromNumbers('i64', [], [v]);
