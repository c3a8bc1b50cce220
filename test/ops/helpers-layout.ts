import { expect } from 'vitest';
import type { OpName } from '../../ir/ops/index.js';
import { type Tensor, fromNumbers, toNumbers } from '../../ir/tensor.js';
import { type Attrs, evalInferOrt } from '../support/one-node.js';

// Our evaluate, our infer (all inputs constant) and onnxruntime must agree exactly.
export async function checkOp(
  op: OpName,
  inputs: ReadonlyArray<Tensor | null>,
  attrs: Attrs = {},
  opts: { nOut?: number; opset?: number } = {},
): Promise<Tensor[]> {
  const nOut = opts.nOut ?? 1;
  const { ours, inferred, ref: theirs } = await evalInferOrt(op, inputs, attrs, nOut, opts.opset ?? 17);
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
