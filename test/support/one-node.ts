// One-node models: an op run through Loom's own attrs reader, `infer` and reference `evaluate`, and the same
// node encoded as an ONNX model for onnxruntime (the oracle).
import type { DType } from '../../ir/dtype.js';
import { AttrReader, type InferArg, type InferResult, type RawAttr } from '../../ir/op.js';
import { type OpName, opDef } from '../../ir/ops/index.js';
import type { Tensor } from '../../ir/tensor.js';
import { type AttrValue, encodeModel } from '../../src/onnx/write.js';
import { ORT_DEFAULTS, runOrt } from './ort.js';

export type Attrs = Readonly<Record<string, AttrValue>>;

function rawAttr(v: AttrValue): RawAttr {
  if (typeof v === 'number') return Number.isInteger(v) ? { kind: 'int', value: v } : { kind: 'float', value: v };
  if (typeof v === 'string') return { kind: 'string', value: v };
  if (Array.isArray(v)) return typeof v[0] === 'string' ? { kind: 'strings', value: v as string[] } : { kind: 'ints', value: v as number[] };
  if (typeof v === 'object' && 'float' in v) return { kind: 'float', value: v.float };
  if (typeof v === 'object' && 'floats' in v) return { kind: 'floats', value: v.floats };
  return { kind: 'tensor', value: v as Tensor };
}

// ONNX attributes decoded through the op's reader into its typed IR attrs.
export function attrsOf(op: OpName, attrs: Attrs = {}, opset = 17): unknown {
  const raw = new Map(Object.entries(attrs).map(([k, v]) => [k, rawAttr(v)] as const));
  return opDef(op).attrs(new AttrReader(raw, { opset, where: `node 'n' (${op})` }));
}

type AnyDef = {
  evaluate: (a: unknown, i: ReadonlyArray<Tensor | null>, w: string, n: number) => Tensor[];
  infer: (a: unknown, i: ReadonlyArray<InferArg | null>, w: string, n: number) => InferResult[];
};
const anyDef = (op: OpName) => opDef(op) as unknown as AnyDef;

// `evaluate` with typed IR attrs as they are (e.g. a fused activation no ONNX attribute spells).
export function evalIr(op: OpName, inputs: ReadonlyArray<Tensor | null>, irAttrs: object, nOut = 1): Tensor[] {
  return anyDef(op).evaluate(irAttrs, inputs, `node 'n' (${op})`, nOut);
}

export function evalOp(op: OpName, inputs: ReadonlyArray<Tensor | null>, attrs: Attrs = {}, nOut = 1, opset = 17): Tensor[] {
  return evalIr(op, inputs, attrsOf(op, attrs, opset) as object, nOut);
}

export function inferOp(op: OpName, inputs: ReadonlyArray<InferArg | null>, attrs: Attrs = {}, nOut = 1, opset = 17): InferResult[] {
  return anyDef(op).infer(attrsOf(op, attrs, opset), inputs, `node 'n' (${op})`, nOut);
}

export function typeArg(dtype: DType, shape: readonly (number | string)[], dims?: readonly (number | string)[]): InferArg {
  return dims ? { type: { dtype, shape }, dims } : { type: { dtype, shape } };
}

// Every input as a known constant, the way `checkOp`s ask `infer` for the evaluated shapes.
export function constantArgs(inputs: ReadonlyArray<Tensor | null>): Array<InferArg | null> {
  return inputs.map((t) => (t ? { type: { dtype: t.dtype, shape: t.shape }, value: t } : null));
}

// Runs the node in onnxruntime; `outs` (Loom's results) give the outputs' count, dtypes and declared shapes.
export async function runOrtNode(op: string, inputs: ReadonlyArray<Tensor | null>, attrs: Attrs, outs: readonly Tensor[], opset = 17): Promise<Tensor[]> {
  const model = encodeModel({
    opset,
    irVersion: opset >= 21 ? 10 : opset >= 19 ? 9 : 8,
    inputs: inputs.flatMap((t, i) => (t ? [{ name: `in${i}`, dtype: t.dtype, shape: t.shape }] : [])),
    outputs: outs.map((t, i) => ({ name: `out${i}`, dtype: t.dtype, shape: t.shape })),
    nodes: [{ op, inputs: inputs.map((t, i) => (t ? `in${i}` : '')), outputs: outs.map((_, i) => `out${i}`), attrs }],
  });
  const feeds: Record<string, Tensor> = {};
  inputs.forEach((t, i) => {
    if (t) feeds[`in${i}`] = t;
  });
  const res = await runOrt(model, feeds, ORT_DEFAULTS);
  return outs.map((_, i) => res[`out${i}`]!);
}

// Loom's evaluate, Loom's infer (all inputs constant) and onnxruntime on the same node, for a checkOp to compare.
export async function evalInferOrt(
  op: OpName,
  inputs: ReadonlyArray<Tensor | null>,
  attrs: Attrs,
  nOut: number,
  opset = 17,
): Promise<{ ours: Tensor[]; inferred: InferResult[]; ref: Tensor[] }> {
  const ours = evalOp(op, inputs, attrs, nOut, opset);
  const inferred = inferOp(op, constantArgs(inputs), attrs, nOut, opset);
  const ref = await runOrtNode(op, inputs, attrs, ours, opset);
  return { ours, inferred, ref };
}
