// Shared helpers for pass tests: build ONNX models (onnxruntime is the oracle), run one pass with the
// verifier, and compare the graph before and after on the same seeded inputs.
import { expect } from 'vitest';
import type { Graph, Node } from '../../ir/graph.js';
import { interpret } from '../../ir/interpret.js';
import { type Tensor, fromNumbers, toNumbers } from '../../ir/tensor.js';
import { verifyGraph } from '../../ir/verify.js';
import { importModelBytes } from '../../src/onnx/import.js';
import { type ModelSpec, encodeModel } from '../../src/onnx/write.js';
import { makeFeeds } from '../oracle/harness.js';
import { runOrt } from '../support/ort.js';
import { relativeError, rng, uniformTensor } from '../support/tensors.js';

export const TOL = 1e-5;

export const seeded = (seed: number): (() => number) => rng(seed >>> 0 || 1);

// Uniform in [lo, hi).
export const randomF32 = (rand: () => number, shape: number[], lo = -1, hi = 1): Tensor => uniformTensor(rand, shape, { lo, hi });

export const f32 = (shape: number[], values: number[]): Tensor => fromNumbers('f32', shape, values);
export const i64 = (shape: number[], values: number[]): Tensor => fromNumbers('i64', shape, values);

export interface Model {
  readonly bytes: Uint8Array;
  readonly graph: Graph;
}

export function onnxModel(spec: ModelSpec): Model {
  const bytes = encodeModel(spec);
  return { bytes, graph: importModelBytes(bytes) };
}

export function opsOf(g: Graph): string[] {
  return g.nodes.map((n) => n.op);
}

export function nodesOf(g: Graph, op: string): Node[] {
  return g.nodes.filter((n) => n.op === op);
}

export function constantInput(g: Graph, n: Node, i: number): Tensor | undefined {
  const v = n.inputs[i];
  return v === null || v === undefined ? undefined : g.constants.get(v);
}

export function numbers(t: Tensor | undefined): number[] {
  if (t === undefined) throw new Error('expected a constant');
  return Array.from(toNumbers(t));
}

function signature(g: Graph): unknown {
  const io = (ids: readonly unknown[]) => ids.map((id) => g.values.get(id as never)!).map((v) => ({ name: v.name, dtype: v.type.dtype, shape: v.type.shape }));
  return { inputs: io(g.inputs), outputs: io(g.outputs) };
}

// Runs `pass`, verifies the result, checks graph inputs/outputs kept their names, order and types, and
// that the reference executor gives the same outputs before and after (and matches onnxruntime when
// the graph came from an ONNX model).
export async function checkPass(pass: (g: Graph) => Graph, g: Graph, opts: { model?: Uint8Array; batch?: number; seed?: number } = {}): Promise<Graph> {
  const after = pass(g);
  verifyGraph(after);
  expect(signature(after)).toEqual(signature(g));
  await expectSameOutputs(g, after, opts);
  return after;
}

export async function expectSameOutputs(before: Graph, after: Graph, opts: { model?: Uint8Array; batch?: number; seed?: number } = {}): Promise<void> {
  for (const batch of opts.batch === undefined ? [1, 3] : [opts.batch]) {
    const feeds = makeFeeds(before, { batch, seed: opts.seed ?? 7 });
    const want = interpret(before, feeds);
    const got = interpret(after, feeds);
    expect(Object.keys(got)).toEqual(Object.keys(want));
    for (const [name, w] of Object.entries(want)) expect(relativeError(got[name]!, w), `output ${name}`).toBeLessThanOrEqual(TOL);
    if (opts.model) {
      const ortOut = await runOrt(opts.model, feeds);
      for (const [name, w] of Object.entries(ortOut)) expect(relativeError(got[name]!, w), `output ${name} vs onnxruntime`).toBeLessThanOrEqual(TOL);
    }
  }
}
