import { expect } from 'vitest';
import type { DType } from '../../ir/dtype.js';
import type { OpName } from '../../ir/ops/index.js';
import type { Tensor } from '../../ir/tensor.js';
import { type Attrs, evalInferOrt } from '../support/one-node.js';
import { expectAllClose, rng, uniformTensor } from '../support/tensors.js';

export interface CheckOpts {
  readonly nOut?: number;
  readonly opset?: number;
  readonly rtol?: number;
}

// Our evaluate against onnxruntime; also checks that infer predicts the evaluated output types.
export async function checkOp(op: OpName, inputs: ReadonlyArray<Tensor | null>, attrs: Attrs = {}, o: CheckOpts = {}): Promise<Tensor[]> {
  const { ours, inferred, ref } = await evalInferOrt(op, inputs, attrs, o.nOut ?? 1, o.opset ?? 17);
  ours.forEach((t, i) => expect(inferred[i]?.type, `infer output ${i}`).toEqual({ dtype: t.dtype, shape: t.shape }));
  const rtol = o.rtol ?? (inputs.some((t) => t?.dtype === 'f16') ? 2e-3 : 1e-5);
  ours.forEach((t, i) => expectAllClose(t, ref[i]!, rtol, `${op} output ${i}`));
  return ours;
}

let seedCounter = 1;

// Uniform in [lo, hi) (default [-3, 3)), from a fresh seed per call unless one is given, so a failure reproduces.
export function rand(shape: readonly number[], opts: { dtype?: DType; lo?: number; hi?: number; int?: boolean; seed?: number } = {}): Tensor {
  return uniformTensor(rng(opts.seed ?? seedCounter++), shape, { lo: opts.lo ?? -3, hi: opts.hi ?? 3, dtype: opts.dtype ?? 'f32', int: opts.int ?? false });
}
