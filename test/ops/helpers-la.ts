import { expect } from 'vitest';
import type { DType } from '../../ir/dtype.js';
import type { OpName } from '../../ir/ops/index.js';
import type { Tensor } from '../../ir/tensor.js';
import { type Attrs, evalInferOrt } from '../support/one-node.js';
import { expectClose, rng, uniformTensor } from '../support/tensors.js';

let seedCounter = 1;

// Uniform in [lo, hi), from a fresh seed per call.
export function rand(shape: readonly number[], lo = -1, hi = 1, dtype: DType = 'f32'): Tensor {
  return uniformTensor(rng(seedCounter++ * 7919), shape, { lo, hi, dtype });
}

// Evaluate with Loom, check the shape rule agrees with the computed shapes, then compare with onnxruntime.
export async function checkOp(op: OpName, inputs: ReadonlyArray<Tensor | null>, attrs: Attrs = {}, nOut = 1, tol = 1e-4): Promise<Tensor[]> {
  const { ours, inferred, ref } = await evalInferOrt(op, inputs, attrs, nOut);
  expect(ours.length).toBe(nOut);
  inferred.forEach((r, i) => expect(r.type.shape, `inferred shape of output ${i}`).toEqual(ours[i]!.shape));
  ours.forEach((t, i) => expectClose(t, ref[i]!, tol, `${op} output ${i}`));
  return ours;
}
