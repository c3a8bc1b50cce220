import { fail, isLoomError } from '../../ir/errors.js';
import { type ModelProto, onnx } from './proto.js';

// Bytes → ModelProto, with every failure a typed LoomError. protobufjs throws RangeError/Error on junk and
// happily decodes some junk into a message full of unknown fields, so the structure is validated as well.

export const IR_VERSION_MIN = 3;
export const IR_VERSION_MAX = 10;

// int64 fields decode as numbers (proto.ts), but fields absent from the bytes keep the generated
// prototype default, which is a Long object when the `long` package was present at load time.
export function int64(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'object' && v !== null && typeof (v as { toNumber?: unknown }).toNumber === 'function') {
    return (v as { toNumber(): number }).toNumber();
  }
  return 0;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function decodeModel(bytes: Uint8Array): ModelProto {
  if (!(bytes instanceof Uint8Array)) fail('USAGE', 'decodeModel expects a Uint8Array');
  if (bytes.length === 0) fail('MODEL_DECODE', 'the model is empty (0 bytes): not an ONNX model');
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    if (isLoomError(e)) throw e;
    fail('MODEL_DECODE', `the bytes (${bytes.length}) do not decode as an ONNX ModelProto (truncated or not an ONNX file): ${describe(e)}`);
  }
  validateStructure(model, bytes.length);
  return model;
}

function validateStructure(model: ModelProto, size: number): void {
  const notModel = `the bytes (${size}) decode as protobuf but not as an ONNX model (truncated, or another format?)`;
  const graph = model.graph;
  const opsets = model.opsetImport ?? [];
  if (!graph) fail('MODEL_DECODE', `${notModel}: there is no graph`);
  if (opsets.length === 0) fail('MODEL_DECODE', `${notModel}: there is no opset_import`);
  if ((graph.node ?? []).length === 0 && (graph.output ?? []).length === 0) {
    fail('MODEL_DECODE', `${notModel}: the graph has neither nodes nor outputs`);
  }
  const ir = int64(model.irVersion);
  if (!Number.isInteger(ir) || ir <= 0) fail('MODEL_DECODE', `${notModel}: ir_version is missing or invalid (${ir})`);
  if (ir < IR_VERSION_MIN) {
    fail(
      'UNSUPPORTED_FEATURE',
      `the model has ONNX IR version ${ir}; Loom reads IR versions ${IR_VERSION_MIN}..${IR_VERSION_MAX} (re-export it with a newer exporter)`,
    );
  }
  if (ir > IR_VERSION_MAX) {
    fail('UNSUPPORTED_FEATURE', `the model has ONNX IR version ${ir}, newer than Loom reads (${IR_VERSION_MIN}..${IR_VERSION_MAX})`);
  }
  for (const o of opsets) {
    const v = int64(o.version);
    if (!Number.isInteger(v) || v <= 0) {
      fail('MODEL_INVALID', `opset_import for domain '${o.domain ?? ''}' has an invalid version (${v})`);
    }
  }
}
