// Fleets whose tenants share an architecture but not its scalar constants (CPU: eltwise-params.test.ts, GPU:
// test/gpu/cuda-consts.test.ts): copies of the Hugging Face BERT export with every f32 constant scaled
// differently, and a small chain of scalar Mul/Add/Sub/Div whose constants differ per tenant.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fromNumbers } from '../../ir/tensor.js';
import { encodeModel } from '../../src/onnx/write.js';
import { scaleFloatConstants } from '../support/scaled-constants.js';
import { type TestTenant, tenantFromBytes } from './fleet-helpers.js';

const TORCH = path.resolve(import.meta.dirname, '../../models/torch/onnx');

// hf_bert_tiny.onnx three times, every f32 constant (weights, attention scale, GELU's constants, the mask
// value) scaled by 0.99, 0.98, 0.97: no copy keeps the exact GELU pattern, as exports with other scalars.
export function bertCopies(count = 3): TestTenant[] {
  const bytes = readFileSync(path.join(TORCH, 'hf_bert_tiny.onnx'));
  return Array.from({ length: count }, (_, i) => ({ ...tenantFromBytes(`bert-${i}`, scaleFloatConstants(bytes, 1 - 0.01 * (i + 1)), 2), intRange: 500 }));
}

const CHAIN_OPS = ['Mul', 'Add', 'Sub', 'Div'] as const;

// y = (((x ∘₀ c₀) ∘₁ c₁) …) with ∘ cycling Mul Add Sub Div and scalar initializers c: one fused program.
export function scalarChainModel(consts: readonly number[]): Uint8Array {
  const nodes = consts.map((_, k) => ({
    op: CHAIN_OPS[k % CHAIN_OPS.length]!,
    inputs: [k === 0 ? 'x' : `t${k - 1}`, `c${k}`],
    outputs: [k === consts.length - 1 ? 'y' : `t${k}`],
    name: `op${k}`,
  }));
  const initializers = Object.fromEntries(consts.map((v, k) => [`c${k}`, fromNumbers('f32', [], [v])]));
  return encodeModel({
    inputs: [{ name: 'x', dtype: 'f32', shape: ['N', 6] }],
    outputs: [{ name: 'y', dtype: 'f32', shape: ['N', 6] }],
    nodes,
    initializers,
  });
}

// Three tenants of a chain of `length` scalar ops; constant 0 is the same in all of them, the others differ
// (so `length` - 1 constants differ between any two tenants).
export function chainFleet(length: number): TestTenant[] {
  return [0, 1, 2].map((t) => {
    const consts = Array.from({ length }, (_, k) => (0.5 + k / 16) * (k === 0 ? 1 : 1 + 0.125 * t));
    return tenantFromBytes(`chain${length}-${t}`, scalarChainModel(consts), 3);
  });
}
