import { realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { type AnyTypedArray, type DType, allocArray, byteSize, dtypeFromOnnx, viewArray } from '../../ir/dtype.js';
import { fail } from '../../ir/errors.js';
import { openRegularFile } from '../../ir/files.js';
import { type Tensor, makeTensor } from '../../ir/tensor.js';
import { int64 } from './decode.js';
import type { TensorProto } from './proto.js';

// TensorProto → IR Tensor. Every size comes from the file, so each is checked before anything is allocated.

export const MAX_TENSOR_BYTES = 2 ** 31;

export interface TensorContext {
  readonly baseDir?: string; // folder external data is read from
  readonly what: string; // e.g. "initializer 'conv1.weight'" for messages
  // raw_data lies in bytes this import owns (a model file it read): the tensor may view them in place.
  readonly ownsRaw?: boolean;
  readonly onExternalFile?: (file: string) => void; // told the real path of every external data file read
}

const EXTERNAL = 1;

export function tensorFromProto(t: TensorProto, ctx: TensorContext): Tensor {
  const what = ctx.what;
  const dtype = dtypeFromOnnx(int64(t.dataType), what);
  const shape = (t.dims ?? []).map((d, i) => {
    const n = int64(d);
    if (!Number.isSafeInteger(n) || n < 0) fail('MODEL_INVALID', `${what}: dim ${i} is ${n}; dims must be non-negative integers`);
    return n;
  });
  let count = 1;
  for (const d of shape) count *= d;
  const bytes = count * byteSize(dtype);
  if (bytes > MAX_TENSOR_BYTES) {
    fail('MODEL_INVALID', `${what}: shape [${shape.join(',')}] of ${dtype} is ${bytes} bytes, more than Loom's limit of ${MAX_TENSOR_BYTES} bytes per tensor`);
  }
  if (t.segment) fail('UNSUPPORTED_FEATURE', `${what}: segmented tensors are not supported`);
  if (int64(t.dataLocation) === EXTERNAL) {
    return makeTensor(dtype, shape, fromBytes(dtype, readExternal(t, bytes, ctx), count, what));
  }
  const raw = t.rawData;
  if (raw && raw.length > 0) {
    if (raw.length !== bytes) {
      fail('MODEL_INVALID', `${what}: raw_data has ${raw.length} bytes; shape [${shape.join(',')}] of ${dtype} needs ${bytes}`);
    }
    return makeTensor(dtype, shape, ctx.ownsRaw ? ownedView(dtype, raw, count, what) : fromBytes(dtype, raw, count, what));
  }
  return makeTensor(dtype, shape, fromTypedFields(t, dtype, count, what));
}

// raw_data as a typed view of the owned file bytes: copying every weight out of the file buffer was a third
// of a big fleet's import. A field's payload follows its own tag (1 byte for raw_data) and length varint,
// so sliding the payload left by up to that many bytes aligns it while overwriting only bytes that were
// already decoded and that no other view covers. (The TensorProto's rawData view is stale afterwards.)
function ownedView(dtype: DType, raw: Uint8Array, count: number, what: string): AnyTypedArray {
  const size = byteSize(dtype);
  const misalign = raw.byteOffset % size;
  if (dtype === 'bool' || misalign > 1 + varintBytes(raw.length)) return fromBytes(dtype, raw, count, what);
  const start = raw.byteOffset - misalign;
  if (misalign > 0) new Uint8Array(raw.buffer, start, raw.length + misalign).copyWithin(0, misalign);
  return viewArray(dtype, raw.buffer, start, count);
}

function varintBytes(n: number): number {
  let k = 1;
  for (let v = n; v >= 0x80; v = Math.floor(v / 0x80)) k++;
  return k;
}

// The raw view is usually unaligned (a slice of the model file), so copy into a fresh buffer first.
// ONNX raw data is little-endian, as are the typed arrays on every platform Loom runs on.
function fromBytes(dtype: DType, raw: Uint8Array, count: number, what: string): AnyTypedArray {
  const out = allocArray(dtype, count);
  new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(raw);
  if (dtype === 'bool') {
    const b = out as Uint8Array;
    for (let i = 0; i < count; i++) if (b[i]! > 1) fail('MODEL_INVALID', `${what}: bool value ${b[i]} at element ${i} is not 0 or 1`);
  }
  return out;
}

function fromTypedFields(t: TensorProto, dtype: DType, count: number, what: string): AnyTypedArray {
  const out = allocArray(dtype, count);
  const check = (field: string, n: number): void => {
    if (n !== count)
      fail(
        'MODEL_INVALID',
        `${what}: ${field} has ${n} values; a ${dtype} tensor of ${count} elements needs ${count}${n === 0 ? ' (the tensor has no data)' : ''}`,
      );
  };
  switch (dtype) {
    case 'f32': {
      const src = t.floatData ?? [];
      check('float_data', src.length);
      (out as Float32Array).set(src);
      return out;
    }
    case 'f64': {
      const src = t.doubleData ?? [];
      check('double_data', src.length);
      (out as Float64Array).set(src);
      return out;
    }
    case 'i64': {
      const src = t.int64Data ?? [];
      check('int64_data', src.length);
      const o = out as BigInt64Array;
      for (let i = 0; i < count; i++) o[i] = toBigInt64(int64(src[i]));
      return out;
    }
    // int32_data also carries the narrower types: f16/bf16 as their 16 bits, bool/u8/i8 as values.
    case 'i32':
    case 'i8':
    case 'u8':
    case 'bool':
    case 'f16':
    case 'bf16': {
      const src = t.int32Data ?? [];
      check('int32_data', src.length);
      if (dtype === 'i32') {
        (out as Int32Array).set(src);
        return out;
      }
      const [lo, hi] = INT32_RANGE[dtype];
      for (let i = 0; i < count; i++) {
        const v = src[i]!;
        if (v < lo || v > hi) fail('MODEL_INVALID', `${what}: int32_data value ${v} at element ${i} is out of range for ${dtype}`);
        out[i] = v;
      }
      return out;
    }
  }
}

const INT32_RANGE: Record<'i8' | 'u8' | 'bool' | 'f16' | 'bf16', readonly [number, number]> = {
  i8: [-128, 127],
  u8: [0, 255],
  bool: [0, 1],
  f16: [0, 0xffff],
  bf16: [0, 0xffff],
};

const I64_MAX = 2n ** 63n - 1n;
const I64_MIN = -(2n ** 63n);

// Numbers past 2^63 (INT64_MAX after float rounding) would wrap in a BigInt64Array; clamp them instead.
export function toBigInt64(v: number): bigint {
  if (!Number.isFinite(v)) return v > 0 ? I64_MAX : v < 0 ? I64_MIN : 0n;
  const b = BigInt(Math.trunc(v));
  return b > I64_MAX ? I64_MAX : b < I64_MIN ? I64_MIN : b;
}

export function i64Tensor(values: readonly number[], shape: readonly number[] = [values.length]): Tensor {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = toBigInt64(values[i]!);
  return makeTensor('i64', shape, data);
}

function readExternal(t: TensorProto, bytes: number, ctx: TensorContext): Uint8Array {
  const what = ctx.what;
  const kv = new Map<string, string>();
  for (const e of t.externalData ?? []) kv.set(e.key ?? '', e.value ?? '');
  const location = kv.get('location');
  if (!location) fail('EXTERNAL_DATA', `${what}: external data has no 'location'`);
  const parseSize = (key: string): number | undefined => {
    const s = kv.get(key);
    if (s === undefined) return undefined;
    if (!/^\d{1,15}$/.test(s)) fail('EXTERNAL_DATA', `${what}: external data ${key} '${s}' is not a non-negative integer`);
    return Number(s);
  };
  const offset = parseSize('offset') ?? 0;
  const length = parseSize('length');
  if (ctx.baseDir === undefined) {
    fail(
      'EXTERNAL_DATA',
      `${what}: data is in external file '${location}', but no base folder was given to read it from (pass baseDir, or import the model from its file)`,
    );
  }
  const base = resolve(ctx.baseDir);
  const file = resolve(base, location);
  const rel = relative(base, file);
  if (isAbsolute(location) || rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    fail('EXTERNAL_DATA', `${what}: external data location '${location}' is outside the model's folder '${base}'; refusing to read it`);
  }
  if (length !== undefined && length !== bytes) {
    fail('EXTERNAL_DATA', `${what}: external data length is ${length} bytes; the tensor needs ${bytes}`);
  }
  // ONNX: a location is relative to the model's folder. Symlinks are resolved before the check, so a link
  // inside the folder cannot lead out of it (to /etc/passwd, or another tenant's weights).
  let realBase: string;
  let realFile: string;
  try {
    realBase = realpathSync(base);
    realFile = realpathSync(file);
  } catch (e) {
    fail('EXTERNAL_DATA', `${what}: cannot open external data file '${file}' (location '${location}'): ${(e as Error).message}`);
  }
  const realRel = relative(realBase, realFile);
  if (realRel === '' || realRel === '..' || realRel.startsWith(`..${sep}`) || isAbsolute(realRel)) {
    fail(
      'EXTERNAL_DATA',
      `${what}: external data location '${location}' resolves to '${realFile}', outside the model's folder '${realBase}' (through a symbolic link); refusing to read it`,
    );
  }
  ctx.onExternalFile?.(realFile);
  // The file may hold many tensors (no limit on its size); only [offset, offset + bytes) is read.
  const f = openRegularFile(realFile, {
    what: `${what}: external data file (location '${location}')`,
    maxBytes: Number.MAX_SAFE_INTEGER,
    code: 'EXTERNAL_DATA',
  });
  try {
    if (offset + bytes > f.size) {
      fail('EXTERNAL_DATA', `${what}: external data range [${offset}, ${offset + bytes}) is past the end of '${file}' (${f.size} bytes)`);
    }
    return f.read(offset, bytes);
  } finally {
    f.close();
  }
}
