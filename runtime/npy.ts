// NumPy .npy files (format 1.0/2.0/3.0; little-endian, C order): how `loom run` takes inputs and writes
// outputs. Writes exactly what numpy.save writes, so files diff cleanly against numpy's own.
import { writeFileSync } from 'node:fs';
import { type DType, allocArray, byteSize } from '../ir/dtype.js';
import { fail } from '../ir/errors.js';
import { GiB, KiB, openRegularFile } from '../ir/files.js';
import { numel } from '../ir/shape.js';
import type { Tensor } from '../ir/tensor.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ARRAY_ALIGN = 64; // numpy pads the header so data starts on a 64-byte boundary
const GROWTH_AXIS_MAX_DIGITS = 21; // numpy leaves room to rewrite shape[0] in place

const DESCR_OF: Partial<Record<DType, string>> = {
  f32: '<f4',
  f64: '<f8',
  f16: '<f2',
  i64: '<i8',
  i32: '<i4',
  i8: '|i1',
  u8: '|u1',
  bool: '|b1',
};
// Single-byte types have no byte order; numpy writes '|', but '<' and '=' mean the same thing there.
const DTYPE_OF: Record<string, DType> = {
  '<f4': 'f32',
  '<f8': 'f64',
  '<f2': 'f16',
  '<i8': 'i64',
  '<i4': 'i32',
  '|i1': 'i8',
  '<i1': 'i8',
  '=i1': 'i8',
  '|u1': 'u8',
  '<u1': 'u8',
  '=u1': 'u8',
  '|b1': 'bool',
  '<b1': 'bool',
  '=b1': 'bool',
};

export const NPY_DTYPES: readonly DType[] = Object.keys(DESCR_OF) as DType[];

// Real headers are under 1 KiB (numpy pads to 64 bytes); format 2.0/3.0 allows 4 GiB, which Loom refuses.
export const NPY_MAX_HEADER_BYTES = 64 * KiB;
// The most data one .npy input may hold (as ONNX tensors in src/onnx/tensor.ts); `loom run` caps it further at
// what the tenant's input holds at maxBatch rows.
export const NPY_MAX_DATA_BYTES = 2 * GiB;
const PREAMBLE_MAX = 12;

export interface ReadNpyOptions {
  readonly maxDataBytes?: number; // default NPY_MAX_DATA_BYTES
  readonly limitNote?: string; // says where maxDataBytes comes from, in the message that refuses more
  // Called with the header once it is known to match the file, before the data is read (or the limit checked):
  // a caller that knows what the array should be refuses a wrong one here, without reading it.
  readonly beforeData?: (header: { readonly dtype: DType; readonly shape: readonly number[]; readonly bytes: number }) => void;
}

// A regular file only (a FIFO or a device is refused before any read), its header length capped, and the data
// size the header's shape implies checked against the file and the limit before the data is read.
export function readNpy(path: string, opts: ReadNpyOptions = {}): Tensor {
  const maxData = opts.maxDataBytes ?? NPY_MAX_DATA_BYTES;
  const f = openRegularFile(path, { what: '.npy file', maxBytes: PREAMBLE_MAX + NPY_MAX_HEADER_BYTES + NPY_MAX_DATA_BYTES });
  try {
    const pre = parsePreamble(f.read(0, Math.min(f.size, PREAMBLE_MAX)), path);
    if (f.size < pre.dataStart) truncatedHeader(path, pre.headerLen, f.size);
    const h = parseHeader(f.read(pre.headerStart, pre.headerLen), pre.major, path);
    checkDataSize(h, f.size - pre.dataStart, Number.POSITIVE_INFINITY, path);
    opts.beforeData?.(h);
    checkDataSize(h, f.size - pre.dataStart, maxData, path, opts.limitNote);
    const data = allocArray(h.dtype, h.count);
    f.read(pre.dataStart, h.bytes, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    return { dtype: h.dtype, shape: h.shape, data };
  } finally {
    f.close();
  }
}

export function writeNpy(path: string, t: Tensor): void {
  const bytes = encodeNpy(t, path);
  try {
    writeFileSync(path, bytes);
  } catch (e) {
    fail('IO', `cannot write .npy file '${path}': ${(e as Error).message}`);
  }
}

// `where` names the file (or tensor) in error messages.
export function decodeNpy(bytes: Uint8Array, where = '<npy>'): Tensor {
  const pre = parsePreamble(bytes, where);
  if (bytes.length < pre.dataStart) truncatedHeader(where, pre.headerLen, bytes.length);
  const h = parseHeader(bytes.subarray(pre.headerStart, pre.dataStart), pre.major, where);
  checkDataSize(h, bytes.length - pre.dataStart, NPY_MAX_DATA_BYTES, where);
  const data = allocArray(h.dtype, h.count);
  // copy: the file buffer's data offset need not be aligned for the typed array
  new Uint8Array(data.buffer, data.byteOffset, data.byteLength).set(bytes.subarray(pre.dataStart, pre.dataStart + h.bytes));
  return { dtype: h.dtype, shape: h.shape, data };
}

function invalid(where: string, why: string): never {
  return fail('IO', `'${where}' is not a valid .npy file: ${why}`);
}

function truncatedHeader(where: string, headerLen: number, size: number): never {
  return fail('IO', `'${where}' is truncated: its header says ${headerLen} header bytes, the file has ${size} bytes in all`);
}

interface Preamble {
  readonly major: number;
  readonly headerLen: number;
  readonly headerStart: number;
  readonly dataStart: number;
}

// The magic, the version and the header length (the first 10 or 12 bytes); the length is capped here.
function parsePreamble(bytes: Uint8Array, where: string): Preamble {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) invalid(where, 'it does not start with the \\x93NUMPY magic');
  const major = bytes[6]!;
  const minor = bytes[7]!;
  if (major < 1 || major > 3 || minor !== 0) invalid(where, `unknown format version ${major}.${minor} (Loom reads 1.0, 2.0, 3.0)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = dv.getUint16(8, true);
    headerStart = 10;
  } else {
    if (bytes.length < 12) invalid(where, 'truncated before the header length');
    headerLen = dv.getUint32(8, true);
    headerStart = 12;
  }
  if (headerLen > NPY_MAX_HEADER_BYTES) {
    invalid(where, `its header length is ${headerLen} bytes, more than Loom's limit of ${NPY_MAX_HEADER_BYTES} bytes (numpy writes headers under 1 KiB)`);
  }
  return { major, headerLen, headerStart, dataStart: headerStart + headerLen };
}

interface NpyHeader {
  readonly descr: string;
  readonly dtype: DType;
  readonly shape: number[];
  readonly count: number;
  readonly bytes: number; // data bytes the shape needs
}

function parseHeader(headerBytes: Uint8Array, major: number, where: string): NpyHeader {
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(headerBytes);
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(header)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined)
    invalid(where, `cannot parse its header ${JSON.stringify(header.trim().slice(0, 200))}`);
  if (fortran === 'True') {
    fail('UNSUPPORTED_FEATURE', `'${where}': fortran_order=True arrays are not supported; save a C-order array (numpy.ascontiguousarray)`);
  }
  const dtype = DTYPE_OF[descr];
  if (dtype === undefined) {
    const supported = NPY_DTYPES.map((d) => DESCR_OF[d]).join(', ');
    const hint = descr.startsWith('>') ? ' (big-endian; convert with arr.astype(arr.dtype.newbyteorder("<")))' : '';
    fail('UNSUPPORTED_FEATURE', `'${where}': dtype '${descr}'${hint} is not supported (supported: ${supported})`);
  }
  const shape = shapeText
    .split(',')
    .map((s) => s.trim().replace(/L$/, ''))
    .filter((s) => s !== '')
    .map((s) => {
      const n = Number(s);
      if (!Number.isSafeInteger(n) || n < 0) invalid(where, `shape entry '${s}' is not a non-negative integer`);
      return n;
    });
  const count = numel(shape);
  return { descr, dtype, shape, count, bytes: count * byteSize(dtype) };
}

// The shape's data size against what the file holds, and against the limit, before anything is allocated.
function checkDataSize(h: NpyHeader, have: number, maxData: number, where: string, limitNote?: string): void {
  const what = `a ${h.descr} array of shape (${h.shape.join(', ')})`;
  if (have < h.bytes) fail('IO', `'${where}' is truncated: ${what} needs ${h.bytes} data bytes, the file has ${have}`);
  if (have > h.bytes) invalid(where, `${have - h.bytes} bytes follow the ${h.bytes} data bytes of ${what}`);
  if (h.bytes > maxData) fail('IO', `'${where}': ${what} is ${h.bytes} bytes, more than the limit of ${maxData} bytes${limitNote ? ` (${limitNote})` : ''}`);
}

export function encodeNpy(t: Tensor, where = '<tensor>'): Uint8Array {
  const descr = DESCR_OF[t.dtype];
  if (descr === undefined) {
    fail('UNSUPPORTED_FEATURE', `${where}: dtype ${t.dtype} has no NumPy equivalent (supported: ${NPY_DTYPES.join(', ')})`);
  }
  const shapeRepr = t.shape.length === 0 ? '()' : t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeRepr}, }`;
  if (t.shape.length > 0) dict += ' '.repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(t.shape[0]).length));
  // numpy: version 1.0 unless the header needs more than 65535 bytes
  let prefix = 10;
  let pad = ARRAY_ALIGN - ((prefix + dict.length + 1) % ARRAY_ALIGN);
  let major = 1;
  if (dict.length + 1 + pad > 0xffff) {
    prefix = 12;
    pad = ARRAY_ALIGN - ((prefix + dict.length + 1) % ARRAY_ALIGN);
    major = 2;
  }
  const header = `${dict}${' '.repeat(pad)}\n`;
  const body = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const out = new Uint8Array(prefix + header.length + body.length);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (major === 1) dv.setUint16(8, header.length, true);
  else dv.setUint32(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[prefix + i] = header.charCodeAt(i);
  out.set(body, prefix + header.length);
  return out;
}
