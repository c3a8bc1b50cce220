import type { DType } from '../../ir/dtype.js';
import { dtypeToOnnx } from '../../ir/dtype.js';
import type { Dim } from '../../ir/shape.js';
import { type Tensor, tensorBytes } from '../../ir/tensor.js';
import { AttributeType, type AttributeProto, type NodeProto, type TensorProto, type ValueInfoProto, onnx } from './proto.js';

// Writes real ONNX files through the same proto library the importer reads with. Used by the model zoo
// and by tests that build small models for onnxruntime to check against.

export type AttrValue = number | string | readonly number[] | readonly string[] | Tensor | { readonly float: number } | { readonly floats: readonly number[] };

export interface NodeSpec {
  readonly op: string;
  readonly inputs: readonly string[]; // '' for an optional input left out
  readonly outputs: readonly string[];
  readonly name?: string;
  readonly attrs?: Readonly<Record<string, AttrValue>>;
  readonly domain?: string;
}

export interface IOSpec {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly Dim[];
}

export interface ModelSpec {
  readonly name?: string;
  readonly inputs: readonly IOSpec[];
  readonly outputs: readonly IOSpec[];
  readonly nodes: readonly NodeSpec[];
  readonly initializers?: Readonly<Record<string, Tensor>>;
  readonly opset?: number; // default 17
  readonly irVersion?: number; // default 8
  readonly producer?: string;
}

export function tensorProto(name: string, t: Tensor): TensorProto {
  return { name, dims: [...t.shape], dataType: dtypeToOnnx(t.dtype), rawData: tensorBytes(t).slice() };
}

function valueInfo(io: IOSpec): ValueInfoProto {
  return {
    name: io.name,
    type: {
      tensorType: {
        elemType: dtypeToOnnx(io.dtype),
        shape: { dim: io.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function isTensor(v: AttrValue): v is Tensor {
  return typeof v === 'object' && v !== null && 'data' in v && 'dtype' in v;
}

// Numbers are written as INT when integral; wrap in {float} / {floats} to force FLOAT(S).
export function attributeProto(name: string, v: AttrValue): AttributeProto {
  if (typeof v === 'number') {
    return Number.isInteger(v) ? { name, type: AttributeType.INT, i: v } : { name, type: AttributeType.FLOAT, f: v };
  }
  if (typeof v === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(v) };
  if (isTensor(v)) return { name, type: AttributeType.TENSOR, t: tensorProto('', v) };
  if (Array.isArray(v)) {
    if (v.length > 0 && typeof v[0] === 'string') {
      return { name, type: AttributeType.STRINGS, strings: (v as string[]).map((s) => new TextEncoder().encode(s)) };
    }
    const nums = v as number[];
    return nums.every(Number.isInteger) ? { name, type: AttributeType.INTS, ints: nums } : { name, type: AttributeType.FLOATS, floats: nums };
  }
  if ('float' in (v as object)) return { name, type: AttributeType.FLOAT, f: (v as { float: number }).float };
  return { name, type: AttributeType.FLOATS, floats: [...(v as { floats: readonly number[] }).floats] };
}

export function nodeProto(n: NodeSpec, index: number): NodeProto {
  return {
    opType: n.op,
    name: n.name ?? `${n.op}_${index}`,
    input: [...n.inputs],
    output: [...n.outputs],
    domain: n.domain ?? '',
    attribute: Object.entries(n.attrs ?? {}).map(([k, v]) => attributeProto(k, v)),
  };
}

export function encodeModel(spec: ModelSpec): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: spec.irVersion ?? 8,
    producerName: spec.producer ?? 'loom-zoo',
    opsetImport: [{ domain: '', version: spec.opset ?? 17 }],
    graph: {
      name: spec.name ?? 'graph',
      input: spec.inputs.map(valueInfo),
      output: spec.outputs.map(valueInfo),
      node: spec.nodes.map(nodeProto),
      initializer: Object.entries(spec.initializers ?? {}).map(([k, t]) => tensorProto(k, t)),
    },
  });
  return onnx.ModelProto.encode(model).finish();
}
