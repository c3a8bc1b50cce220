import type { DType } from './dtype.js';
import { fail } from './errors.js';
import type { Dim } from './shape.js';
import type { Tensor, TensorType } from './tensor.js';

// ONNX attribute values after decoding (the importer builds these; ops never see protobuf).
export type RawAttr =
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'ints'; readonly value: readonly number[] }
  | { readonly kind: 'floats'; readonly value: readonly number[] }
  | { readonly kind: 'strings'; readonly value: readonly string[] }
  | { readonly kind: 'tensor'; readonly value: Tensor }
  | { readonly kind: 'graph' };

export interface AttrContext {
  readonly opset: number; // default-domain opset of the model
  readonly where: string; // "node 'name' (Op)" for messages
}

// Typed, defaulting access to a node's ONNX attributes. Missing required attributes and
// wrong kinds are MODEL_INVALID errors naming the node and attribute.
export class AttrReader {
  constructor(
    private readonly raw: ReadonlyMap<string, RawAttr>,
    readonly ctx: AttrContext,
  ) {}

  has(name: string): boolean {
    return this.raw.has(name);
  }

  private get<K extends RawAttr['kind']>(name: string, kind: K): Extract<RawAttr, { kind: K }> | undefined {
    const a = this.raw.get(name);
    if (a === undefined) return undefined;
    if (a.kind !== kind) fail('MODEL_INVALID', `${this.ctx.where}: attribute '${name}' should be ${kind}, got ${a.kind}`);
    return a as Extract<RawAttr, { kind: K }>;
  }

  private missing(name: string): never {
    fail('MODEL_INVALID', `${this.ctx.where}: required attribute '${name}' is missing`);
  }

  int(name: string, dflt?: number): number {
    return this.get(name, 'int')?.value ?? dflt ?? this.missing(name);
  }
  float(name: string, dflt?: number): number {
    const a = this.raw.get(name);
    if (a?.kind === 'int') return a.value; // some exporters write integral floats as ints
    return this.get(name, 'float')?.value ?? dflt ?? this.missing(name);
  }
  string(name: string, dflt?: string): string {
    return this.get(name, 'string')?.value ?? dflt ?? this.missing(name);
  }
  ints(name: string, dflt?: readonly number[]): readonly number[] {
    return this.get(name, 'ints')?.value ?? dflt ?? this.missing(name);
  }
  floats(name: string, dflt?: readonly number[]): readonly number[] {
    return this.get(name, 'floats')?.value ?? dflt ?? this.missing(name);
  }
  strings(name: string, dflt?: readonly string[]): readonly string[] {
    return this.get(name, 'strings')?.value ?? dflt ?? this.missing(name);
  }
  tensor(name: string): Tensor | undefined {
    return this.get(name, 'tensor')?.value;
  }
  // An attribute value Loom does not implement: a clear error, never a silent wrong answer.
  unsupported(name: string, detail: string): never {
    fail('UNSUPPORTED_FEATURE', `${this.ctx.where}: attribute ${name}: ${detail}`);
  }
}

// What shape inference knows about one input.
export interface InferArg {
  readonly type: TensorType;
  readonly value?: Tensor; // the full value, when it is a constant
  readonly dims?: readonly Dim[]; // contents of a 1-D (or scalar) integer tensor when known, possibly symbolic (e.g. Shape(x))
}

export interface InferResult {
  readonly type: TensorType;
  readonly dims?: readonly Dim[]; // known contents of a shape-like integer output
}

export interface OpDef<A> {
  readonly name: string; // IR op name; equals the ONNX op type for imported ops
  readonly inputs: readonly [min: number, max: number]; // max may be Infinity (variadic)
  readonly outputs: readonly [min: number, max: number];
  // Decode ONNX attributes into typed attrs (defaults applied). Attrs are plain JSON-able data.
  readonly attrs: (r: AttrReader) => A;
  // Output types from input types; `where` names the node for error messages.
  readonly infer: (attrs: A, inputs: ReadonlyArray<InferArg | null>, where: string, nOutputs: number) => InferResult[];
  // Reference semantics on concrete tensors (float64 or float32 accumulation).
  readonly evaluate: (attrs: A, inputs: ReadonlyArray<Tensor | null>, where: string, nOutputs: number) => Tensor[];
}

export function defineOp<A>(def: OpDef<A>): OpDef<A> {
  return def;
}

// Small helpers for op implementations.
export function requireInput<T>(inputs: ReadonlyArray<T | null>, i: number, where: string, what = `input ${i}`): T {
  const v = inputs[i];
  if (v === null || v === undefined) fail('MODEL_INVALID', `${where}: ${what} is required`);
  return v;
}

export function requireDType(t: TensorType, allowed: readonly DType[], where: string, what: string): void {
  if (!allowed.includes(t.dtype)) fail('SHAPE', `${where}: ${what} has dtype ${t.dtype}; expected one of ${allowed.join(', ')}`);
}

export const noAttrs = (): Record<string, never> => ({});
