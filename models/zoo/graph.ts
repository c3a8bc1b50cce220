import { fail } from '../../ir/errors.js';
import type { Dim } from '../../ir/shape.js';
import { type Tensor, makeTensor } from '../../ir/tensor.js';
import { type AttrValue, type IOSpec, type NodeSpec, encodeModel } from '../../src/onnx/write.js';
import { Rng } from '../random.js';

// What every zoo generator returns: a real ONNX file plus the facts a fleet manifest and tests need.
export interface ZooModel {
  readonly kind: string;
  readonly name: string;
  readonly description: string;
  readonly seed: number;
  readonly bytes: Uint8Array;
  readonly inputs: readonly IOSpec[];
  readonly outputs: readonly IOSpec[];
  readonly opset: number;
  readonly paramCount: number; // learned weights only (not shape constants or buffers)
}

export interface CommonOptions {
  readonly seed: number;
  readonly batch?: number | string; // fixed batch size or a symbol; default 'N'
  readonly name?: string;
}

export const ZOO_OPSET = 17;

// Accumulates nodes and initializers the way PyTorch's TorchScript exporter names them: node '/a/b/Conv',
// its outputs '/a/b/Conv_output_0'. Checks names are unique so a generator bug cannot write a graph that
// silently shadows a value.
export class ZooGraph {
  readonly rng: Rng;
  private readonly nodes: NodeSpec[] = [];
  private readonly inits: Record<string, Tensor> = {};
  private readonly values = new Set<string>();
  private readonly nodeNames = new Set<string>();
  private params = 0;

  constructor(seed: number) {
    this.rng = new Rng(seed);
  }

  private claim(name: string): void {
    if (this.values.has(name)) fail('MODEL_INVALID', `model zoo: value '${name}' defined twice`);
    this.values.add(name);
  }

  input(name: string): string {
    this.claim(name);
    return name;
  }

  // A learned weight (counted in paramCount).
  param(name: string, shape: readonly number[], data: Float32Array): string {
    this.claim(name);
    this.inits[name] = makeTensor('f32', shape, data);
    this.params += data.length;
    return name;
  }

  // A non-learned initializer (buffers such as position ids, folded constants).
  buffer(name: string, t: Tensor): string {
    this.claim(name);
    this.inits[name] = t;
    return name;
  }

  // Adds a node named `name`; outputs are named '<name>_output_<i>' unless given.
  node(
    op: string,
    name: string,
    inputs: readonly string[],
    attrs: Readonly<Record<string, AttrValue>> = {},
    outputs: number | readonly string[] = 1,
  ): string[] {
    if (this.nodeNames.has(name)) fail('MODEL_INVALID', `model zoo: node name '${name}' used twice`);
    this.nodeNames.add(name);
    for (const i of inputs) {
      if (i !== '' && !this.values.has(i)) fail('MODEL_INVALID', `model zoo: node '${name}' (${op}) reads undefined value '${i}'`);
    }
    const outs = typeof outputs === 'number' ? Array.from({ length: outputs }, (_, i) => `${name}_output_${i}`) : [...outputs];
    for (const o of outs) if (o !== '') this.claim(o);
    this.nodes.push({ op, name, inputs: [...inputs], outputs: outs, attrs });
    return outs;
  }

  // Single-output shorthand.
  op(op: string, name: string, inputs: readonly string[], attrs: Readonly<Record<string, AttrValue>> = {}, output?: string): string {
    return this.node(op, name, inputs, attrs, output === undefined ? 1 : [output])[0]!;
  }

  // A Constant node, as the TorchScript exporter writes scalars and shape pieces.
  constant(name: string, t: Tensor): string {
    return this.op('Constant', name, [], { value: t });
  }

  constF32(name: string, values: readonly number[], shape: readonly number[] = []): string {
    return this.constant(name, makeTensor('f32', shape, Float32Array.from(values)));
  }

  constI64(name: string, values: readonly number[], shape: readonly number[] = [values.length]): string {
    return this.constant(name, makeTensor('i64', shape, BigInt64Array.from(values.map((v) => BigInt(v)))));
  }

  finish(meta: { kind: string; name: string; description: string; seed: number; inputs: readonly IOSpec[]; outputs: readonly IOSpec[] }): ZooModel {
    for (const o of meta.outputs) {
      if (!this.values.has(o.name)) fail('MODEL_INVALID', `model zoo: graph output '${o.name}' is never produced`);
    }
    const bytes = encodeModel({
      name: meta.name,
      inputs: meta.inputs,
      outputs: meta.outputs,
      nodes: this.nodes,
      initializers: this.inits,
      opset: ZOO_OPSET,
      producer: 'loom-zoo',
    });
    return { ...meta, bytes, opset: ZOO_OPSET, paramCount: this.params };
  }
}

export function batchDim(opts: CommonOptions): Dim {
  const b = opts.batch ?? 'N';
  if (typeof b === 'number' && (!Number.isInteger(b) || b < 1)) fail('USAGE', `model zoo: option 'batch' must be a positive integer or a symbol, got ${b}`);
  if (typeof b === 'string' && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(b)) fail('USAGE', `model zoo: option 'batch' symbol '${b}' is not an identifier`);
  return b;
}

export function requirePositiveInt(kind: string, option: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) fail('USAGE', `model zoo: ${kind} option '${option}' must be a positive integer, got ${v}`);
  return v;
}
