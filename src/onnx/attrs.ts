import { fail } from '../../ir/errors.js';
import type { RawAttr } from '../../ir/op.js';
import { int64 } from './decode.js';
import { type AttributeProto, AttributeType } from './proto.js';
import { type TensorContext, tensorFromProto } from './tensor.js';

type FileContext = Pick<TensorContext, 'baseDir' | 'onExternalFile'>; // where a tensor attribute's external data is read from

// AttributeProto[] → the RawAttr map that op attribute readers see.

const utf8 = new TextDecoder('utf-8');

export function decodeAttributes(attrs: readonly AttributeProto[], where: string, files: FileContext = {}): Map<string, RawAttr> {
  const out = new Map<string, RawAttr>();
  for (const a of attrs) {
    const name = a.name ?? '';
    if (name === '') fail('MODEL_INVALID', `${where}: has an attribute without a name`);
    if (out.has(name)) fail('MODEL_INVALID', `${where}: attribute '${name}' is given twice`);
    if (a.refAttrName) fail('MODEL_INVALID', `${where}: attribute '${name}' refers to a function attribute ('${a.refAttrName}') outside a function`);
    out.set(name, decodeAttribute(a, name, where, files));
  }
  return out;
}

// Very old exporters leave `type` unset; then the kind is whichever value field is populated.
function kindOf(a: AttributeProto): number {
  const t = int64(a.type);
  if (t !== AttributeType.UNDEFINED) return t;
  if ((a.floats ?? []).length) return AttributeType.FLOATS;
  if ((a.ints ?? []).length) return AttributeType.INTS;
  if ((a.strings ?? []).length) return AttributeType.STRINGS;
  if (a.t) return AttributeType.TENSOR;
  if (a.g) return AttributeType.GRAPH;
  if (a.s && a.s.length) return AttributeType.STRING;
  if (a.i !== undefined && int64(a.i) !== 0) return AttributeType.INT;
  if (a.f !== undefined && a.f !== 0) return AttributeType.FLOAT;
  return AttributeType.UNDEFINED;
}

function decodeAttribute(a: AttributeProto, name: string, where: string, files: FileContext): RawAttr {
  const kind = kindOf(a);
  switch (kind) {
    case AttributeType.FLOAT:
      return { kind: 'float', value: a.f ?? 0 };
    case AttributeType.INT:
      return { kind: 'int', value: int64(a.i) };
    case AttributeType.STRING:
      return { kind: 'string', value: utf8.decode(a.s ?? new Uint8Array()) };
    case AttributeType.FLOATS:
      return { kind: 'floats', value: [...(a.floats ?? [])] };
    case AttributeType.INTS:
      return { kind: 'ints', value: (a.ints ?? []).map(int64) };
    case AttributeType.STRINGS:
      return { kind: 'strings', value: (a.strings ?? []).map((s) => utf8.decode(s)) };
    case AttributeType.TENSOR:
      if (!a.t) fail('MODEL_INVALID', `${where}: tensor attribute '${name}' has no tensor`);
      return { kind: 'tensor', value: tensorFromProto(a.t, { what: `${where}: attribute '${name}'`, ...files }) };
    case AttributeType.GRAPH:
    case AttributeType.GRAPHS:
      return { kind: 'graph' };
    case AttributeType.UNDEFINED:
      fail('MODEL_INVALID', `${where}: attribute '${name}' has no type and no value`);
    default:
      fail('UNSUPPORTED_FEATURE', `${where}: attribute '${name}' is of ONNX attribute type ${AttributeType[kind] ?? kind}, which Loom does not read`);
  }
}
