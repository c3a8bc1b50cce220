// Copies of one ONNX model that differ in every f32 constant, scalars included (initializers and Constant
// nodes' tensors): what exports of one architecture with different weights and different scalars look like
// (attention scale, GELU's constants, the mask value). Exponents of Pow are left alone so the model stays
// defined on negative inputs.
import { decodeModel } from '../../src/onnx/decode.js';
import { type TensorProto, onnx } from '../../src/onnx/proto.js';
import { tensorFromProto } from '../../src/onnx/tensor.js';
import { tensorProto } from '../../src/onnx/write.js';
import { fromNumbers } from '../../ir/tensor.js';

// Every f32 constant times `factor` (keep |factor| <= 1 where a constant sits near the f32 limit, as BERT's
// finfo.min mask value does).
export function scaleFloatConstants(bytes: Uint8Array, factor: number): Uint8Array {
  const model = decodeModel(bytes);
  const graph = model.graph!;
  const exponents = new Set<string>();
  for (const n of graph.node ?? []) if (n.opType === 'Pow' && n.input?.[1]) exponents.add(n.input[1]);
  const scaled = (t: TensorProto, name: string): TensorProto => {
    const x = tensorFromProto(t, { what: `constant '${name}'` });
    if (x.dtype !== 'f32' || exponents.has(name)) return t;
    const values = Array.from(x.data as Float32Array, (v) => v * factor);
    return tensorProto(t.name ?? '', fromNumbers('f32', x.shape, values));
  };
  graph.initializer = (graph.initializer ?? []).map((t) => scaled(t, t.name ?? ''));
  for (const n of graph.node ?? []) {
    if (n.opType !== 'Constant') continue;
    for (const a of n.attribute ?? []) if (a.name === 'value' && a.t) a.t = scaled(a.t, n.output?.[0] ?? '');
  }
  return onnx.ModelProto.encode(model).finish();
}
