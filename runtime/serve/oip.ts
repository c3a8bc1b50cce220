// Open Inference Protocol v2 (KServe / Triton HTTP) ⇄ Loom: datatype names, model metadata, and the
// decoding of an infer request (JSON tensors, or the binary tensor extension) into IR tensors, with every
// error a 400 that names the field. Pure functions; the HTTP routes live in server.ts.
import { type DType, allocArray, byteSize, f16ToF32, f32ToBf16, f32ToF16, bf16ToF32 } from '../../ir/dtype.js';
import { type Tensor, makeTensor, tensorBytes } from '../../ir/tensor.js';
import { refuse } from './errors.js';
import type { PlannedTenant, TenantIO } from '../../ir/contract/plan.js';
import { shapeFits } from '../../ir/contract/tenant-io.js';

export type OipDatatype = 'FP32' | 'FP64' | 'FP16' | 'BF16' | 'INT64' | 'INT32' | 'INT8' | 'UINT8' | 'BOOL';

const TO_OIP: Readonly<Record<DType, OipDatatype>> = {
  f32: 'FP32',
  f64: 'FP64',
  f16: 'FP16',
  bf16: 'BF16',
  i64: 'INT64',
  i32: 'INT32',
  i8: 'INT8',
  u8: 'UINT8',
  bool: 'BOOL',
};
const FROM_OIP: ReadonlyMap<string, DType> = new Map(Object.entries(TO_OIP).map(([d, o]) => [o, d as DType]));

export function oipDatatype(d: DType): OipDatatype {
  return TO_OIP[d];
}

export interface OipTensorMetadata {
  readonly name: string;
  readonly datatype: OipDatatype;
  readonly shape: readonly number[]; // -1 on the batch axis
}

export interface OipModelMetadata {
  readonly name: string;
  readonly versions: readonly string[];
  readonly platform: string;
  readonly inputs: readonly OipTensorMetadata[];
  readonly outputs: readonly OipTensorMetadata[];
  readonly parameters: { readonly max_batch_size: number; readonly slo_ms: number | null };
}

export const MODEL_VERSION = '1'; // a plan holds one version of each tenant's model

function tensorMetadata(io: TenantIO): OipTensorMetadata {
  return { name: io.name, datatype: TO_OIP[io.dtype], shape: io.shape.map((d, i) => (i === io.batchAxis ? -1 : d)) };
}

export function modelMetadata(tenant: PlannedTenant, sloMs: number | null): OipModelMetadata {
  return {
    name: tenant.id,
    versions: [MODEL_VERSION],
    platform: 'loom_launchplan',
    inputs: tenant.inputs.map(tensorMetadata),
    outputs: tenant.outputs.map(tensorMetadata),
    parameters: { max_batch_size: tenant.maxBatch, slo_ms: sloMs },
  };
}

// "FP32[-1,32] (1..4 rows on axis 0)": what a model's input accepts, in the protocol's words.
export function describeOip(io: TenantIO): string {
  const m = tensorMetadata(io);
  const rows = io.batchAxis !== null ? ` with 1..${io.shape[io.batchAxis]} rows on axis ${io.batchAxis}` : '';
  return `${m.datatype}[${m.shape.join(',')}]${rows}`;
}

export interface RequestedOutput {
  readonly io: TenantIO;
  readonly binary: boolean;
}

export interface DecodedInfer {
  readonly id: string | null;
  readonly inputs: Record<string, Tensor>;
  readonly outputs: readonly RequestedOutput[]; // in the order asked (every output when the request names none)
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describeValue(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

// body: the raw request bytes; headerLength: the Inference-Header-Content-Length header, when present.
export function decodeInferRequest(tenant: PlannedTenant, body: Uint8Array | undefined, headerLength: string | undefined): DecodedInfer {
  if (!body || body.length === 0) refuse(400, 'the request has no body; expected a JSON inference request {"inputs": [...]}');
  let jsonBytes = body;
  let binary: Uint8Array | null = null;
  if (headerLength !== undefined) {
    const n = Number(headerLength);
    if (!Number.isInteger(n) || n < 0 || n > body.length) {
      refuse(400, `header Inference-Header-Content-Length: ${describeValue(headerLength)} is not a byte count within the ${body.length}-byte body`);
    }
    jsonBytes = body.subarray(0, n);
    binary = body.subarray(n);
  }
  let req: unknown;
  try {
    req = JSON.parse(Buffer.from(jsonBytes.buffer, jsonBytes.byteOffset, jsonBytes.byteLength).toString('utf8'));
  } catch (e) {
    refuse(400, `malformed JSON in the request body: ${(e as Error).message}`);
  }
  return decodeInferObject(tenant, req, binary);
}

// The parsed request object and the binary tensor data that followed it (null: none), for protocols that
// do not arrive as JSON bytes (gRPC builds the same object, so its requests meet the same checks and messages).
export function decodeInferObject(tenant: PlannedTenant, req: unknown, binary: Uint8Array | null): DecodedInfer {
  if (!isObject(req)) refuse(400, `the request body must be a JSON object {"inputs": [...]}, got ${describeValue(req)}`);
  let id: string | null = null;
  if (req.id !== undefined && req.id !== null) {
    if (typeof req.id !== 'string') refuse(400, `field 'id' must be a string, got ${describeValue(req.id)}`);
    id = req.id;
  }
  const params = req.parameters;
  if (params !== undefined && !isObject(params)) refuse(400, `field 'parameters' must be an object, got ${describeValue(params)}`);
  const binaryDefault = params?.binary_data_output === true;

  if (!Array.isArray(req.inputs) || req.inputs.length === 0)
    refuse(400, `field 'inputs' must be a non-empty array of tensors, got ${describeValue(req.inputs)}`);
  const byName = new Map(tenant.inputs.map((io) => [io.name, io]));
  const inputs: Record<string, Tensor> = {};
  let binaryAt = 0;
  req.inputs.forEach((raw, i) => {
    const f = `inputs[${i}]`;
    if (!isObject(raw)) refuse(400, `${f} must be an object {name, shape, datatype, data}, got ${describeValue(raw)}`);
    if (typeof raw.name !== 'string') refuse(400, `${f}.name must be a string, got ${describeValue(raw.name)}`);
    const io = byName.get(raw.name);
    const at = `${f} ('${raw.name}')`;
    if (!io)
      refuse(400, `${at}: model '${tenant.id}' has no input '${raw.name}' (its inputs: ${tenant.inputs.map((x) => `${x.name} ${describeOip(x)}`).join(', ')})`);
    if (raw.name in inputs) refuse(400, `${at}: input '${raw.name}' is given twice`);
    const dtype = typeof raw.datatype === 'string' ? FROM_OIP.get(raw.datatype) : undefined;
    if (dtype === undefined) refuse(400, `${at}.datatype: ${describeValue(raw.datatype)} is not an OIP datatype (${[...FROM_OIP.keys()].join(', ')})`);
    if (dtype !== io.dtype) refuse(400, `${at}.datatype: ${raw.datatype as string}, model '${tenant.id}' expects ${describeOip(io)}`);
    const shape = raw.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      refuse(400, `${at}.shape must be an array of non-negative integers, got ${describeValue(shape)}`);
    }
    const dims = shape as number[];
    if (!shapeFits(io, dims)) refuse(400, `${at}.shape: [${dims.join(',')}], model '${tenant.id}' expects ${describeOip(io)}`);
    const n = dims.reduce((a, b) => a * b, 1);
    const p = raw.parameters;
    if (p !== undefined && !isObject(p)) refuse(400, `${at}.parameters must be an object, got ${describeValue(p)}`);
    if (p?.binary_data_size !== undefined) {
      const size = p.binary_data_size;
      if (binary === null)
        refuse(400, `${at}.parameters.binary_data_size is set but the request has no Inference-Header-Content-Length header (binary tensor extension)`);
      if (!Number.isSafeInteger(size) || (size as number) < 0)
        refuse(400, `${at}.parameters.binary_data_size must be a byte count, got ${describeValue(size)}`);
      const want = n * byteSize(dtype);
      if (size !== want)
        refuse(400, `${at}.parameters.binary_data_size: ${size as number} bytes, shape [${dims.join(',')}] of ${raw.datatype as string} needs ${want}`);
      if (binaryAt + want > binary.length)
        refuse(400, `${at}: binary data runs past the end of the body (${binary.length - binaryAt} bytes left, ${want} needed)`);
      if (raw.data !== undefined) refuse(400, `${at}: give either 'data' or parameters.binary_data_size, not both`);
      const arr = allocArray(dtype, n);
      new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength).set(binary.subarray(binaryAt, binaryAt + want));
      binaryAt += want;
      inputs[raw.name] = makeTensor(dtype, dims, arr);
      return;
    }
    inputs[raw.name] = makeTensor(dtype, dims, decodeData(raw.data, dtype, n, `${at}.data`, dims, tenant.id));
  });
  if (binary !== null && binaryAt !== binary.length)
    refuse(400, `the body carries ${binary.length} bytes of binary tensor data but the inputs' binary_data_size add up to ${binaryAt}`);

  const outputs = decodeOutputs(tenant, req.outputs, binaryDefault);
  return { id, inputs, outputs };
}

function decodeOutputs(tenant: PlannedTenant, raw: Json | undefined, binaryDefault: boolean): RequestedOutput[] {
  if (raw === undefined || raw === null) return tenant.outputs.map((io) => ({ io, binary: binaryDefault }));
  if (!Array.isArray(raw)) refuse(400, `field 'outputs' must be an array of {name}, got ${describeValue(raw)}`);
  const seen = new Set<string>();
  return raw.map((o, i) => {
    const f = `outputs[${i}]`;
    if (!isObject(o) || typeof o.name !== 'string') refuse(400, `${f} must be an object with a string 'name', got ${describeValue(o)}`);
    const io = tenant.outputs.find((x) => x.name === o.name);
    if (!io) refuse(400, `${f}.name: model '${tenant.id}' has no output '${o.name}' (its outputs: ${tenant.outputs.map((x) => x.name).join(', ')})`);
    if (seen.has(o.name)) refuse(400, `${f}.name: output '${o.name}' is asked for twice`);
    seen.add(o.name);
    const p = o.parameters;
    if (p !== undefined && !isObject(p)) refuse(400, `${f}.parameters must be an object, got ${describeValue(p)}`);
    const b = p?.binary_data;
    if (b !== undefined && typeof b !== 'boolean') refuse(400, `${f}.parameters.binary_data must be true or false, got ${describeValue(b)}`);
    return { io, binary: b ?? binaryDefault };
  });
}

// OIP JSON data: row-major, flat or nested to the tensor's shape.
function flatten(data: Json | undefined, field: string, dims: readonly number[]): Json[] {
  if (!Array.isArray(data)) refuse(400, `${field} must be an array of values, got ${describeValue(data)}`);
  if (!data.some(Array.isArray)) return data;
  const out: Json[] = [];
  const walk = (v: Json, depth: number, path: string): void => {
    if (!Array.isArray(v)) {
      out.push(v);
      return;
    }
    if (depth >= dims.length) refuse(400, `${field}${path}: nested deeper than the shape [${dims.join(',')}]`);
    if (v.length !== dims[depth]) refuse(400, `${field}${path}: ${v.length} entries, shape [${dims.join(',')}] needs ${dims[depth]} on axis ${depth}`);
    v.forEach((x, i) => walk(x, depth + 1, `${path}[${i}]`));
  };
  walk(data, 0, '');
  return out;
}

const INT_RANGE: Partial<Record<DType, readonly [number, number]>> = {
  i32: [-2147483648, 2147483647],
  i8: [-128, 127],
  u8: [0, 255],
  i64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

// JSON has no literal for NaN and the infinities: in `data` they are these strings, both ways (outputs are
// encoded so, float inputs accept them). A client reads them back with Number(s) or float(s).
export const NON_FINITE_JSON: ReadonlyMap<string, number> = new Map([
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['-Infinity', Number.NEGATIVE_INFINITY],
]);

// The largest finite value of each float datatype, for the out-of-range message.
const FLOAT_MAX: Partial<Record<DType, number>> = { f64: Number.MAX_VALUE, f32: 3.4028234663852886e38, f16: 65504, bf16: 3.3895313892515355e38 };

function decodeData(data: Json | undefined, dtype: DType, n: number, field: string, dims: readonly number[], model: string): ReturnType<typeof allocArray> {
  const values = flatten(data, field, dims);
  if (values.length !== n) refuse(400, `${field}: ${values.length} values, shape [${dims.join(',')}] needs ${n}`);
  const out = allocArray(dtype, n);
  const bad = (i: number, want: string): never => refuse(400, `model '${model}' ${field}[${i}]: ${describeValue(values[i])} is not ${want}`);
  // a float element: a JSON number the datatype can hold, or one of the non-finite strings
  const float = (i: number): number => {
    const v = values[i];
    if (typeof v === 'string') {
      const x = NON_FINITE_JSON.get(v);
      if (x === undefined) bad(i, `a number (NaN and the infinities are the strings "NaN", "Infinity", "-Infinity")`);
      return x as number;
    }
    if (typeof v !== 'number') bad(i, 'a number');
    return v as number;
  };
  // a JSON number that overflowed when parsed (1e400) or does not fit the datatype (the encoded value is infinite)
  const tooBig = (i: number): never =>
    refuse(
      400,
      `model '${model}' ${field}[${i}]: ${describeValue(values[i])} is beyond the range of ${TO_OIP[dtype]} (largest finite ${FLOAT_MAX[dtype]}); send "Infinity" or "-Infinity" for an infinity`,
    );
  switch (dtype) {
    case 'f64':
    case 'f32': {
      const o = out as Float32Array | Float64Array;
      for (let i = 0; i < n; i++) {
        const v = float(i);
        o[i] = v;
        if (!Number.isFinite(o[i]!) && typeof values[i] === 'number') tooBig(i);
      }
      break;
    }
    case 'f16':
    case 'bf16': {
      const enc = dtype === 'f16' ? f32ToF16 : f32ToBf16;
      const infBits = dtype === 'f16' ? 0x7c00 : 0x7f80;
      for (let i = 0; i < n; i++) {
        const v = float(i);
        const h = enc(v);
        if ((h & 0x7fff) === infBits && typeof values[i] === 'number') tooBig(i);
        (out as Uint16Array)[i] = h;
      }
      break;
    }
    case 'bool':
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (v === true || v === 1) (out as Uint8Array)[i] = 1;
        else if (v !== false && v !== 0) bad(i, 'a boolean');
      }
      break;
    case 'i64':
    case 'i32':
    case 'i8':
    case 'u8': {
      const [lo, hi] = INT_RANGE[dtype]!;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) bad(i, `an integer in [${lo}, ${hi}] (${TO_OIP[dtype]})`);
        if (dtype === 'i64') (out as BigInt64Array)[i] = BigInt(v as number);
        else (out as Int32Array)[i] = v as number;
      }
      break;
    }
  }
  return out;
}

// A float's JSON form: the number, or "NaN" / "Infinity" / "-Infinity" (JSON has no literal for them).
function floatJson(values: number[]): Array<number | string> {
  const out: Array<number | string> = values;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) out[i] = Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
  }
  return out;
}

// A tensor's values as JSON numbers/booleans (i64 as numbers: exact up to 2^53; non-finite floats as the
// strings "NaN", "Infinity", "-Infinity").
export function tensorToJson(t: Tensor): Array<number | boolean | string> {
  const d = t.data;
  switch (t.dtype) {
    case 'f16':
      return floatJson(Array.from(d as Uint16Array, f16ToF32));
    case 'bf16':
      return floatJson(Array.from(d as Uint16Array, bf16ToF32));
    case 'i64':
      return Array.from(d as BigInt64Array, Number);
    case 'bool':
      return Array.from(d as Uint8Array, (x) => x !== 0);
    case 'f32':
    case 'f64':
      return floatJson(Array.from(d as Float32Array));
    default:
      return Array.from(d as Int32Array);
  }
}

export interface EncodedInfer {
  readonly json: Record<string, unknown>;
  readonly binary: readonly Uint8Array[]; // appended after the JSON header, in output order
}

export function encodeInferResponse(model: string, id: string, outs: Readonly<Record<string, Tensor>>, wanted: readonly RequestedOutput[]): EncodedInfer {
  const binary: Uint8Array[] = [];
  const outputs = wanted.map(({ io, binary: asBinary }) => {
    const t = outs[io.name]!;
    const head = { name: io.name, datatype: TO_OIP[t.dtype], shape: t.shape };
    if (!asBinary) return { ...head, data: tensorToJson(t) };
    const bytes = tensorBytes(t);
    binary.push(bytes);
    return { ...head, parameters: { binary_data_size: bytes.byteLength } };
  });
  return { json: { model_name: model, model_version: MODEL_VERSION, id, outputs }, binary };
}
