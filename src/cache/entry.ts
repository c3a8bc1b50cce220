// One tenant's lowered IR on disk: the concrete graph as IR text with its constants as binary blobs, and the
// tenant's I/O. Layout (little-endian):
//   'LOOMTEN\n' | u32 header bytes | u32 crc32(header) | header (JSON) | zeros to 64 | payload (blobs, each at a
//   multiple of 64)
// The header names the cache format, the key, the files the tenant was compiled from (with their hashes),
// every blob's dtype, shape, offset and crc32, and the payload's size and crc32. Reading checks all of it: a
// truncated, corrupt or foreign entry is reported as a reason and never used. readEntryLazy reads the header
// and the small blobs only; each large blob's bytes are read (and checked against its crc32) where the
// compile needs them (ir/deferred.ts), from the file descriptor it keeps open.
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { type AnyTypedArray, type DType, DTYPES, allocArray, byteSize, viewArray } from '../../ir/dtype.js';
import { DeferredReadError, TrackedConstants, standIn } from '../../ir/deferred.js';
import type { Graph } from '../../ir/graph.js';
import { parseGraph } from '../../ir/parse.js';
import { printGraph } from '../../ir/print.js';
import { type Tensor, makeTensor, tensorBytes } from '../../ir/tensor.js';
import type { ConcreteIO, ConcreteTenant } from '../planner/index.js';
import { writeAtomic } from './atomic.js';
import { CACHE_FORMAT } from './location.js';

const MAGIC = Buffer.from('LOOMTEN\n', 'latin1');
const PREFIX = 16;
const ALIGN = 64;
const FORMAT_NAME = 'loom-tenant-cache';
const MAX_ENTRY_BYTES = 2 ** 31 - 1; // an entry is read with one readFileSync

export interface Dependency {
  readonly file: string; // real path
  readonly sha256: string;
}

interface BlobInfo {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly offset: number; // in the payload
  readonly crc32: number; // of the blob's bytes
}

interface Header {
  readonly format: string;
  readonly version: number;
  readonly key: string;
  readonly deps: readonly Dependency[];
  readonly inputs: readonly ConcreteIO[];
  readonly outputs: readonly ConcreteIO[];
  readonly ir: string;
  readonly blobs: readonly BlobInfo[];
  readonly payloadBytes: number;
  readonly payloadCrc32: number;
}

export interface Entry {
  readonly deps: readonly Dependency[];
  readonly tenant: ConcreteTenant;
}

export type ReadResult = { readonly entry: Entry } | { readonly rejected: string };

const pad = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;

// Writes the entry atomically; returns its size in bytes.
export function writeEntry(file: string, key: string, deps: readonly Dependency[], tenant: ConcreteTenant): number {
  const blobs: Tensor[] = [];
  const ir = printGraph(tenant.graph, { blobs });
  const infos: BlobInfo[] = [];
  const parts: Uint8Array[] = [];
  let offset = 0;
  let crc = 0;
  for (const t of blobs) {
    const gap = pad(offset) - offset;
    if (gap > 0) {
      const zeros = new Uint8Array(gap);
      parts.push(zeros);
      crc = crc32(zeros, crc);
      offset += gap;
    }
    const bytes = tensorBytes(t);
    infos.push({ dtype: t.dtype, shape: t.shape, offset, crc32: crc32(bytes) });
    parts.push(bytes);
    crc = crc32(bytes, crc);
    offset += bytes.byteLength;
  }
  const header: Header = {
    format: FORMAT_NAME,
    version: CACHE_FORMAT,
    key,
    deps,
    inputs: tenant.inputs,
    outputs: tenant.outputs,
    ir,
    blobs: infos,
    payloadBytes: offset,
    payloadCrc32: crc,
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(PREFIX);
  MAGIC.copy(prefix, 0);
  prefix.writeUInt32LE(json.byteLength, 8);
  prefix.writeUInt32LE(crc32(json), 12);
  const headPad = new Uint8Array(pad(PREFIX + json.byteLength) - PREFIX - json.byteLength);
  const total = pad(PREFIX + json.byteLength) + offset;
  if (total > MAX_ENTRY_BYTES)
    throw new Error(`its lowered IR is ${total} bytes, more than one entry holds (${MAX_ENTRY_BYTES}); it is compiled afresh each time`);
  writeAtomic(file, [prefix, json, headPad, ...parts]);
  return total;
}

// An entry's prefix and header, checked (magic, header checksum, format, key, total size), from an entry of
// `size` bytes read through `read(at, bytes)`; `start` is where its payload begins.
function readHeader(size: number, read: (at: number, bytes: number) => Buffer, key: string): { h: Header; start: number } | { rejected: string } {
  if (size < PREFIX) return { rejected: 'not a tenant cache entry (bad magic)' };
  const prefix = read(0, PREFIX);
  if (!prefix.subarray(0, 8).equals(MAGIC)) return { rejected: 'not a tenant cache entry (bad magic)' };
  const headerBytes = prefix.readUInt32LE(8);
  if (PREFIX + headerBytes > size) return { rejected: 'truncated (header)' };
  const json = read(PREFIX, headerBytes);
  if (crc32(json) !== prefix.readUInt32LE(12)) return { rejected: 'corrupt (header checksum)' };
  let h: Header;
  try {
    h = JSON.parse(json.toString('utf8')) as Header;
  } catch {
    return { rejected: 'corrupt (header is not JSON)' };
  }
  if (h.format !== FORMAT_NAME || h.version !== CACHE_FORMAT) return { rejected: `another cache format (${String(h.format)} ${String(h.version)})` };
  if (h.key !== key) return { rejected: 'written for another key' };
  const start = pad(PREFIX + headerBytes);
  if (size !== start + h.payloadBytes) return { rejected: `truncated or padded (${size} bytes, header says ${start + h.payloadBytes})` };
  return { h, start };
}

// Reads and checks an entry written for `key`. A missing file is a plain miss (rejected: '').
export function readEntry(file: string, key: string): ReadResult {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    return { rejected: (e as NodeJS.ErrnoException).code === 'ENOENT' ? '' : `unreadable (${(e as Error).message})` };
  }
  const head = readHeader(buf.byteLength, (at, n) => buf.subarray(at, at + n), key);
  if ('rejected' in head) return head;
  const { h, start } = head;
  const payload = buf.subarray(start);
  if (crc32(payload) !== h.payloadCrc32) return { rejected: 'corrupt (payload checksum)' };
  try {
    const blobs = h.blobs.map((b) => blobTensor(payload, b));
    const graph: Graph = parseGraph(h.ir, { blobs });
    return { entry: { deps: h.deps, tenant: { graph, inputs: h.inputs, outputs: h.outputs } } };
  } catch (e) {
    return { rejected: `unreadable IR (${(e as Error).message})` };
  }
}

function blobTensor(payload: Buffer, b: BlobInfo): Tensor {
  if (!DTYPES.includes(b.dtype) || !Array.isArray(b.shape) || !b.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error('bad blob table');
  const n = b.shape.reduce((a, d) => a * d, 1);
  const bytes = n * byteSize(b.dtype);
  if (!Number.isSafeInteger(b.offset) || b.offset < 0 || b.offset + bytes > payload.byteLength) throw new Error('blob outside the payload');
  const at = payload.byteOffset + b.offset;
  let data: AnyTypedArray;
  if (at % byteSize(b.dtype) === 0) data = viewArray(b.dtype, payload.buffer, at, n);
  else {
    data = allocArray(b.dtype, n); // a small file's Buffer may sit misaligned in Node's pool
    new Uint8Array(data.buffer, data.byteOffset, bytes).set(payload.subarray(b.offset, b.offset + bytes));
  }
  return makeTensor(b.dtype, b.shape, data);
}

// Blobs at least this large stay on disk until needed (a model's weight matrices); smaller ones (biases,
// scalars, shapes: what the planner reads) are read with the header.
export const DEFER_MIN_BYTES = 64 * 1024;

// As readEntry, keeping blobs of DEFER_MIN_BYTES or more on disk: the entry's file stays open (`fd`, closed by
// the caller once the compile is done) and each such blob is read and checked only where it is needed.
export function readEntryLazy(file: string, key: string): ReadResult & { readonly fd?: number } {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    return { rejected: (e as NodeJS.ErrnoException).code === 'ENOENT' ? '' : `unreadable (${(e as Error).message})` };
  }
  let keep = false;
  try {
    const size = fstatSync(fd).size;
    const pread = (at: number, n: number): Buffer => {
      const buf = Buffer.allocUnsafe(n);
      for (let got = 0; got < n; ) {
        const r = readSync(fd, buf, got, n - got, at + got);
        if (r === 0) throw new Error(`it ends at byte ${at + got}`);
        got += r;
      }
      return buf;
    };
    const head = readHeader(size, pread, key);
    if ('rejected' in head) return head;
    const { h, start } = head;
    let deferred = 0;
    let blobs: Tensor[];
    try {
      blobs = h.blobs.map((b, i) => {
        const { n, bytes } = blobSize(b, h.payloadBytes);
        if (bytes < DEFER_MIN_BYTES) {
          const data = pread(start + b.offset, bytes);
          if (crc32(data) !== b.crc32) throw new CorruptBlob(i);
          return blobTensor(data, { ...b, offset: 0 });
        }
        const what = `tenant cache entry ${file}, blob ${i}`;
        const data = standIn(b.dtype, n, {
          what,
          read: () => {
            let got: Buffer;
            try {
              got = pread(start + b.offset, bytes);
            } catch (e) {
              throw new DeferredReadError(`${what}: unreadable (${(e as Error).message})`);
            }
            if (crc32(got) !== b.crc32) throw new DeferredReadError(`${what}: corrupt (blob checksum)`);
            return got;
          },
        }); // zeros standing in for the bytes until they are needed
        deferred++;
        return makeTensor(b.dtype, b.shape, data);
      });
    } catch (e) {
      if (e instanceof CorruptBlob) return { rejected: 'corrupt (blob checksum)' };
      return { rejected: `unreadable IR (${(e as Error).message})` };
    }
    try {
      const parsed: Graph = parseGraph(h.ir, { blobs });
      const graph: Graph = deferred === 0 ? parsed : { ...parsed, constants: new TrackedConstants(parsed.constants) };
      keep = deferred > 0;
      return { entry: { deps: h.deps, tenant: { graph, inputs: h.inputs, outputs: h.outputs } }, ...(keep ? { fd } : {}) };
    } catch (e) {
      return { rejected: `unreadable IR (${(e as Error).message})` };
    }
  } catch (e) {
    return { rejected: `unreadable (${(e as Error).message})` };
  } finally {
    if (!keep) closeSync(fd);
  }
}

class CorruptBlob extends Error {
  constructor(readonly blob: number) {
    super(`blob ${blob}`);
  }
}

function blobSize(b: BlobInfo, payloadBytes: number): { n: number; bytes: number } {
  if (!DTYPES.includes(b.dtype) || !Array.isArray(b.shape) || !b.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error('bad blob table');
  const n = b.shape.reduce((a, d) => a * d, 1);
  const bytes = n * byteSize(b.dtype);
  if (!Number.isSafeInteger(b.offset) || b.offset < 0 || b.offset + bytes > payloadBytes) throw new Error('blob outside the payload');
  if (!Number.isInteger(b.crc32)) throw new Error('bad blob table (no crc32)');
  return { n, bytes };
}
