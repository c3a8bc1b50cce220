import * as ort from 'onnxruntime-node';
import { expect } from 'vitest';
import { isLoomError, type LoomErrorCode } from '../../ir/errors.js';
import type { Graph, ValueId } from '../../ir/graph.js';
import { type OpName, opDef } from '../../ir/ops/index.js';
import { type Tensor, fromNumbers, toNumbers } from '../../ir/tensor.js';
import type { DType } from '../../ir/dtype.js';

// Seeded RNG (mulberry32): tests and fuzzing are deterministic.
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomTensor(shape: readonly number[], seed: number, dtype: DType = 'f32'): Tensor {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return fromNumbers(dtype, shape, Array.from({ length: n }, () => Math.round((r() * 2 - 1) * 1000) / 100));
}

// Asserts fn throws a LoomError of `code` whose message contains every fragment.
export function expectLoomError(fn: () => unknown, code: LoomErrorCode, ...fragments: string[]): string {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected a LoomError to be thrown').toBeDefined();
  if (!isLoomError(caught)) throw new Error(`expected LoomError ${code}, got ${String(caught)}`, { cause: caught });
  expect(`${caught.code}: ${caught.message}`).toMatch(new RegExp(`^${code}: `));
  for (const f of fragments) expect(caught.message).toContain(f);
  return caught.message;
}

// Straight-line reference evaluation of an imported graph with the ops' own `evaluate`.
export function evaluateGraph(g: Graph, feeds: Readonly<Record<string, Tensor>>): Tensor[] {
  const env = new Map<ValueId, Tensor>(g.constants);
  for (const id of g.inputs) {
    const name = g.values.get(id)!.name;
    const t = feeds[name];
    if (!t) throw new Error(`no feed for input ${name}`);
    env.set(id, t);
  }
  for (const n of g.nodes) {
    const def = opDef(n.op as OpName);
    const ins = n.inputs.map((v) => (v === null ? null : env.get(v)!));
    const outs = def.evaluate(n.attrs as never, ins, n.name, n.outputs.length);
    n.outputs.forEach((o, i) => env.set(o, outs[i]!));
  }
  return g.outputs.map((o) => env.get(o)!);
}

const ORT_TYPES: Partial<Record<DType, ort.Tensor.Type>> = { f32: 'float32', f64: 'float64', i64: 'int64', i32: 'int32', u8: 'uint8', i8: 'int8', bool: 'bool' };

export async function runOrt(bytes: Uint8Array, feeds: Readonly<Record<string, Tensor>>): Promise<Float64Array[]> {
  const session = await ort.InferenceSession.create(bytes);
  const inputs: Record<string, ort.Tensor> = {};
  for (const [k, t] of Object.entries(feeds)) inputs[k] = new ort.Tensor(ORT_TYPES[t.dtype]!, t.data as Float32Array, [...t.shape]);
  const out = await session.run(inputs);
  return session.outputNames.map((n) => {
    const d = out[n]!.data as ArrayLike<number | bigint>;
    return Float64Array.from(Array.from(d, (v) => Number(v)));
  });
}

export function expectClose(actual: Tensor, expected: Float64Array, tol = 1e-5): void {
  const a = toNumbers(actual);
  expect(a.length).toBe(expected.length);
  for (let i = 0; i < a.length; i++) {
    const e = expected[i]!;
    if (Math.abs(a[i]! - e) > tol * Math.max(1, Math.abs(e))) {
      expect.fail(`element ${i}: ${a[i]} vs expected ${e}`);
    }
  }
}

export function valueNamed(g: Graph, name: string): ValueId {
  for (const v of g.values.values()) if (v.name === name) return v.id;
  throw new Error(`no value named ${name}`);
}
