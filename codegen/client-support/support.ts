// The fixed part of every generated client (codegen/client.ts adds the per-tenant types and functions):
// tensor types, the transports (a running `loom serve` over Open Inference Protocol v2, or a loaded plan in
// process) and the checks every call makes. codegen/client.ts copies this file's text into client.ts, after
// the text of the input validator it imports (ir/contract/tenant-io.ts) and without the import lines, so the
// client imports nothing. That is why it must compile on its own under strict TypeScript with only the
// ES2020 library (no DOM, no @types/node), and its top-level names must not clash with the validator's: the
// globals it needs (fetch, TextEncoder, TextDecoder) are reached through `globalThis` with the few members it
// uses typed here. The project's tsc checks it like any other source file.
import { TYPED_ARRAY_NAMES, TenantIOError, arrayKindOf, checkInputNames, describeTenantIO, validateTenantInputs } from '../../ir/contract/tenant-io.js';

/** Element types of Loom tensors (f16/bf16 carry raw 16-bit patterns; bool is 0/1 bytes). */
export type DType = 'f32' | 'f64' | 'f16' | 'bf16' | 'i64' | 'i32' | 'i8' | 'u8' | 'bool';

export type TypedArray = Float32Array | Float64Array | Uint16Array | BigInt64Array | Int32Array | Int8Array | Uint8Array;

/** A tensor as Loom passes it: element type, row-major shape, flat data. */
export interface Tensor<D extends DType = DType, A extends TypedArray = TypedArray, S extends readonly number[] = readonly number[]> {
  readonly dtype: D;
  readonly shape: S;
  readonly data: A;
}

/** An input value: its flat data (the rows follow from its length) or data with its shape. */
export type Input<A extends TypedArray, S extends readonly number[]> = A | { readonly data: A; readonly shape: S };

/** How a call reaches the plan: see httpTransport and inProcessTransport. */
export interface Transport {
  infer(tenant: string, inputs: Readonly<Record<string, Tensor>>): Promise<Readonly<Record<string, Tensor>>>;
}

export interface TensorSpec {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[]; // at maxBatch rows
  readonly batchAxis: number | null; // the axis that holds the rows; null when the tensor has none
}

export interface TenantSpec {
  readonly id: string;
  readonly maxBatch: number;
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
}

/**
 * A failed call: a bad input (status null; path names the input field at fault, e.g. "inputs[0] ('x').shape"),
 * or the server's answer (status = its HTTP status).
 */
export class LoomClientError extends Error {
  readonly status: number | null;
  readonly path: string | null;
  constructor(message: string, status: number | null = null, path: string | null = null) {
    super(message);
    this.name = 'LoomClientError';
    this.status = status;
    this.path = path;
  }
}

const OIP_TYPES: Readonly<Record<DType, string>> = {
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

function allocArray(dtype: DType, n: number): TypedArray {
  switch (dtype) {
    case 'f32':
      return new Float32Array(n);
    case 'f64':
      return new Float64Array(n);
    case 'f16':
    case 'bf16':
      return new Uint16Array(n);
    case 'i64':
      return new BigInt64Array(n);
    case 'i32':
      return new Int32Array(n);
    case 'i8':
      return new Int8Array(n);
    case 'u8':
    case 'bool':
      return new Uint8Array(n);
  }
}

function product(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

// A call's inputs as tensors: flat data takes its rows from its length. Everything else is the validator's
// (the same check runTick and loom serve make), so a mistake reads the same here as there.
function toTensors(spec: TenantSpec, given: Readonly<Record<string, unknown>>): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  try {
    checkInputNames(spec, Object.keys(given));
    for (const s of spec.inputs) {
      const v = given[s.name];
      if (v === undefined) continue; // the validator names it
      if (!ArrayBuffer.isView(v)) {
        const t = v as { data?: unknown; shape?: readonly number[] };
        out[s.name] = { dtype: s.dtype, shape: Array.isArray(t.shape) ? [...t.shape] : (t.shape as readonly number[]), data: t.data as TypedArray };
        continue;
      }
      const data = v as TypedArray;
      const shape = [...s.shape];
      if (s.batchAxis !== null) {
        const perRow = product(s.shape) / s.shape[s.batchAxis]!;
        shape[s.batchAxis] = perRow > 0 ? data.length / perRow : 0;
        // whole rows or not is only a question for the right kind of array; the validator names a wrong kind
        if (!Number.isInteger(shape[s.batchAxis]) && arrayKindOf(data) === TYPED_ARRAY_NAMES[s.dtype]) {
          const message =
            "tenant '" + spec.id + "' input '" + s.name + "': " + data.length + ' values, not whole rows of ' + perRow + ' (' + describeTenantIO(s) + ')';
          throw new LoomClientError(message, null, 'inputs[' + spec.inputs.indexOf(s) + "] ('" + s.name + "').data");
        }
      }
      out[s.name] = { dtype: s.dtype, shape, data };
    }
    validateTenantInputs(spec, out);
  } catch (e) {
    if (e instanceof TenantIOError) throw new LoomClientError(e.message, null, e.path);
    throw e;
  }
  return out;
}

function checkOutputs(spec: TenantSpec, got: Readonly<Record<string, Tensor>>): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const s of spec.outputs) {
    const t = got[s.name];
    if (t === undefined) throw new LoomClientError("tenant '" + spec.id + "': the answer has no output '" + s.name + "'");
    if (t.dtype !== s.dtype) throw new LoomClientError("tenant '" + spec.id + "' output '" + s.name + "': " + t.dtype + ', expected ' + s.dtype);
    out[s.name] = t;
  }
  return out;
}

/** One call of a tenant: check the inputs, run them through the transport, check the outputs. */
export async function callTenant<O>(transport: Transport, spec: TenantSpec, inputs: object): Promise<O> {
  const out = checkOutputs(spec, await transport.infer(spec.id, toTensors(spec, inputs as Readonly<Record<string, unknown>>)));
  return out as unknown as O;
}

// ---- in process ----------------------------------------------------------------------------------

/** What inProcessTransport needs of a plan: Loom's LoadedPlan (from loadPlan) has it. */
export interface InProcessPlan {
  runTick(inputs: Readonly<Record<string, Readonly<Record<string, Tensor>>>>): Promise<Readonly<Record<string, Readonly<Record<string, Tensor>>>>>;
}

interface Pending {
  readonly tenant: string;
  readonly inputs: Readonly<Record<string, Tensor>>;
  readonly resolve: (v: Readonly<Record<string, Tensor>>) => void;
  readonly reject: (e: unknown) => void;
}

/**
 * Calls a plan loaded in this process (import { loadPlan } from 'loom'). Calls made together (in the same
 * turn of the event loop) for different tenants share one tick, as a server would batch them.
 */
export function inProcessTransport(plan: InProcessPlan): Transport {
  let batches: Array<Map<string, Pending>> = [];
  const runBatch = async (batch: Map<string, Pending>): Promise<void> => {
    const ticks: Record<string, Readonly<Record<string, Tensor>>> = {};
    for (const [tenant, p] of batch) ticks[tenant] = p.inputs;
    try {
      const out = await plan.runTick(ticks);
      for (const [tenant, p] of batch) p.resolve(out[tenant] ?? {});
    } catch (e) {
      // one bad request must not fail the others that shared its tick: run each alone to say whose it was
      if (batch.size === 1) for (const p of batch.values()) p.reject(e);
      else for (const [tenant, p] of batch) await runBatch(new Map([[tenant, p]]));
    }
  };
  const flush = (): void => {
    const todo = batches;
    batches = [];
    void todo.reduce((prev, b) => prev.then(() => runBatch(b)), Promise.resolve());
  };
  return {
    infer(tenant, inputs) {
      return new Promise((resolve, reject) => {
        if (batches.length === 0) void Promise.resolve().then(flush);
        let batch = batches.find((b) => !b.has(tenant));
        if (!batch) batches.push((batch = new Map()));
        batch.set(tenant, { tenant, inputs, resolve, reject });
      });
    },
  };
}

// ---- over HTTP: Open Inference Protocol v2 -------------------------------------------------------

interface FetchResponse {
  readonly ok: boolean;
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  arrayBuffer(): Promise<ArrayBuffer>;
}
export type FetchLike = (url: string, init: { method: string; headers: Record<string, string>; body: string | Uint8Array }) => Promise<FetchResponse>;

export interface HttpOptions {
  /** Send inputs and ask for outputs in the binary tensor extension (exact for INT64 beyond 2^53, and smaller). */
  readonly binary?: boolean;
  readonly headers?: Readonly<Record<string, string>>;
  /** A bearer token for a server started with --auth: sent as 'Authorization: Bearer <token>'. */
  readonly token?: string;
  /** Defaults to the global fetch (Node 18+, browsers). */
  readonly fetch?: FetchLike;
}

interface Codec {
  encode(s: string): Uint8Array;
}
interface Decoder {
  decode(b: Uint8Array): string;
}
const textCodecs = globalThis as unknown as { TextEncoder: new () => Codec; TextDecoder: new () => Decoder; fetch?: FetchLike };

function bytesOf(data: TypedArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

function f16ToNumber(h: number): number {
  const e = (h & 0x7c00) >> 10;
  const f = h & 0x03ff;
  const v = e === 0 ? f * 2 ** -24 : e === 31 ? (f ? NaN : Infinity) : (1 + f / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -v : v;
}

function numberToF16(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

function bf16ToNumber(h: number): number {
  u32buf[0] = h << 16;
  return f32buf[0]!;
}

function numberToBf16(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0]!;
  if ((u & 0x7f800000) === 0x7f800000 && u & 0x7fffff) return (u >>> 16) | 0x40;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

// JSON has no literal for NaN and the infinities: loom serve writes and reads them as these strings.
function floatJson(values: number[]): Array<number | string> {
  const out: Array<number | string> = values;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isNaN(v)) out[i] = 'NaN';
    else if (v === Infinity) out[i] = 'Infinity';
    else if (v === -Infinity) out[i] = '-Infinity';
  }
  return out;
}

function toJsonData(t: Tensor, where: string): Array<number | boolean | string> {
  switch (t.dtype) {
    case 'f16':
      return floatJson(Array.from(t.data as Uint16Array, f16ToNumber));
    case 'bf16':
      return floatJson(Array.from(t.data as Uint16Array, bf16ToNumber));
    case 'bool':
      return Array.from(t.data as Uint8Array, (x) => x !== 0);
    case 'i64':
      return Array.from(t.data as BigInt64Array, (x) => {
        const n = Number(x);
        if (!Number.isSafeInteger(n))
          throw new LoomClientError(where + ': ' + x + ' does not fit a JSON number exactly; use httpTransport(url, { binary: true })');
        return n;
      });
    case 'f32':
    case 'f64':
      return floatJson(Array.from(t.data as Float32Array));
    default:
      return Array.from(t.data as Int32Array);
  }
}

function flatValues(v: unknown, out: unknown[]): unknown[] {
  if (Array.isArray(v)) for (const x of v) flatValues(x, out);
  else out.push(v);
  return out;
}

const NON_FINITE: Readonly<Record<string, number>> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };

function fromJsonData(dtype: DType, values: readonly unknown[], where: string): TypedArray {
  const out = allocArray(dtype, values.length);
  const float = dtype === 'f32' || dtype === 'f64' || dtype === 'f16' || dtype === 'bf16';
  values.forEach((v, i) => {
    // numbers; for floats also "NaN", "Infinity", "-Infinity"; for INT64 a decimal string; booleans for BOOL
    const ok =
      typeof v === 'number' ||
      typeof v === 'boolean' ||
      (typeof v === 'string' && (float ? v === 'NaN' || v === 'Infinity' || v === '-Infinity' : dtype === 'i64' && /^-?[0-9]+$/.test(v)));
    if (!ok)
      throw new LoomClientError(where + '[' + i + ']: ' + (typeof v === 'string' ? JSON.stringify(v) : String(v)) + ' is not a ' + OIP_TYPES[dtype] + ' value');
    const n = typeof v === 'boolean' ? (v ? 1 : 0) : typeof v === 'string' && float ? NON_FINITE[v]! : Number(v);
    switch (dtype) {
      case 'f16':
        (out as Uint16Array)[i] = numberToF16(n);
        break;
      case 'bf16':
        (out as Uint16Array)[i] = numberToBf16(n);
        break;
      case 'i64':
        (out as BigInt64Array)[i] = BigInt(typeof v === 'string' ? v : Math.trunc(n));
        break;
      case 'bool':
        (out as Uint8Array)[i] = n !== 0 ? 1 : 0;
        break;
      default:
        (out as Float64Array)[i] = n;
    }
  });
  return out;
}

interface OipOutput {
  readonly name: string;
  readonly datatype: string;
  readonly shape: readonly number[];
  readonly data?: unknown;
  readonly parameters?: { readonly binary_data_size?: number };
}

const FROM_OIP: Readonly<Record<string, DType>> = Object.fromEntries(Object.entries(OIP_TYPES).map(([d, o]) => [o, d as DType]));

/**
 * Calls a running 'loom serve' (Open Inference Protocol v2): POST {baseUrl}/v2/models/{tenant}/infer.
 * JSON tensors by default; { binary: true } uses the binary tensor extension both ways.
 */
export function httpTransport(baseUrl: string, options: HttpOptions = {}): Transport {
  const base = baseUrl.replace(/\/+$/, '');
  return {
    async infer(tenant, inputs) {
      const doFetch = options.fetch ?? textCodecs.fetch;
      if (!doFetch) throw new LoomClientError('no fetch in this JavaScript runtime; pass httpTransport(url, { fetch })');
      const where = "tenant '" + tenant + "'";
      const chunks: Uint8Array[] = [];
      const tensors = Object.entries(inputs).map(([name, t]) => {
        const head = { name, shape: [...t.shape], datatype: OIP_TYPES[t.dtype] };
        if (!options.binary) return { ...head, data: toJsonData(t, where + " input '" + name + "'") };
        chunks.push(bytesOf(t.data));
        return { ...head, parameters: { binary_data_size: t.data.byteLength } };
      });
      const request = { inputs: tensors, ...(options.binary ? { parameters: { binary_data_output: true } } : {}) };
      const json = JSON.stringify(request);
      const headers: Record<string, string> = { 'content-type': options.binary ? 'application/octet-stream' : 'application/json', ...options.headers };
      if (options.token !== undefined) headers.authorization = 'Bearer ' + options.token;
      let body: string | Uint8Array = json;
      if (options.binary) {
        const head = new textCodecs.TextEncoder().encode(json);
        headers['inference-header-content-length'] = String(head.byteLength);
        const all = new Uint8Array(head.byteLength + chunks.reduce((a, c) => a + c.byteLength, 0));
        all.set(head, 0);
        let at = head.byteLength;
        for (const c of chunks) {
          all.set(c, at);
          at += c.byteLength;
        }
        body = all;
      }
      const res = await doFetch(base + '/v2/models/' + encodeURIComponent(tenant) + '/infer', { method: 'POST', headers, body });
      const bytes = new Uint8Array(await res.arrayBuffer());
      const headerLength = res.headers.get('inference-header-content-length');
      const jsonEnd = headerLength !== null ? Number(headerLength) : bytes.byteLength;
      const text = new textCodecs.TextDecoder().decode(bytes.subarray(0, jsonEnd));
      let answer: { outputs?: readonly OipOutput[]; error?: string };
      try {
        answer = JSON.parse(text) as typeof answer;
      } catch {
        throw new LoomClientError(where + ': HTTP ' + res.status + ', not JSON: ' + text.slice(0, 200), res.status);
      }
      if (!res.ok) throw new LoomClientError(where + ': HTTP ' + res.status + ': ' + (answer.error ?? text.slice(0, 200)), res.status);
      const out: Record<string, Tensor> = {};
      let at = jsonEnd;
      for (const o of answer.outputs ?? []) {
        const dtype = FROM_OIP[o.datatype];
        if (dtype === undefined) throw new LoomClientError(where + " output '" + o.name + "': unknown datatype " + o.datatype);
        const size = o.parameters?.binary_data_size;
        let data: TypedArray;
        if (size !== undefined) {
          data = allocArray(dtype, product(o.shape));
          if (data.byteLength !== size || at + size > bytes.byteLength)
            throw new LoomClientError(where + " output '" + o.name + "': " + size + ' binary bytes do not fit shape [' + o.shape.join(', ') + ']');
          bytesOf(data).set(bytes.subarray(at, at + size));
          at += size;
        } else {
          data = fromJsonData(dtype, flatValues(o.data, []), where + " output '" + o.name + "'");
          if (data.length !== product(o.shape))
            throw new LoomClientError(where + " output '" + o.name + "': " + data.length + ' values for shape [' + o.shape.join(', ') + ']');
        }
        out[o.name] = { dtype, shape: [...o.shape], data };
      }
      return out;
    },
  };
}
