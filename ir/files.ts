// Reading files the user named (models, external data, manifests, .npy inputs, plan directories, stage dumps).
// One rule for all of them: open once (without blocking, so a FIFO with no writer cannot hang the open),
// fstat the descriptor, refuse anything that is not a regular file (FIFO, socket, device such as /dev/zero,
// directory), refuse a file over the caller's size limit before reading a byte, and never read past the size
// fstat reported. Every refusal is a LoomError naming the file. It sits in ir/ so that every layer may use it.
import { closeSync, constants, fstatSync, openSync, read, readSync, statSync } from 'node:fs';
import { type LoomErrorCode, fail, isLoomError } from './errors.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
// The longest string V8 builds (2^29 - 24 UTF-16 units): text files past it cannot be decoded at all.
export const MAX_TEXT_BYTES = 2 ** 29 - 24;

export interface FileReadOptions {
  readonly what: string; // how messages name the file: "model file", "manifest", "external data file"
  readonly maxBytes: number; // refuse larger files before reading
  readonly code?: LoomErrorCode; // the error code of a refusal (default IO)
}

const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0);

export class RegularFile {
  private fd: number | null;
  constructor(
    fd: number,
    readonly path: string,
    readonly size: number,
    private readonly opts: FileReadOptions,
  ) {
    this.fd = fd;
  }

  // `length` bytes at `offset`, into `into` (at its start) or a fresh array; the range must lie within the
  // size fstat reported, and a file that shrank meanwhile is an error, not a short result.
  read(offset: number, length: number, into?: Uint8Array): Uint8Array {
    const code = this.opts.code ?? 'IO';
    if (this.fd === null) throw new Error(`${this.path}: read after close`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      fail(code, `${this.opts.what} '${this.path}': bytes [${offset}, ${offset + length}) are past the end of the file (${this.size} bytes)`);
    }
    const out = into ?? new Uint8Array(length);
    let done = 0;
    try {
      while (done < length) {
        const n = readSync(this.fd, out, done, Math.min(length - done, 1 << 30), offset + done);
        if (n <= 0) fail(code, `${this.opts.what} '${this.path}' ended at byte ${offset + done} of ${this.size} (did it change while being read?)`);
        done += n;
      }
    } catch (e) {
      if (isLoomError(e)) throw e;
      fail(code, `cannot read ${this.opts.what} '${this.path}': ${(e as Error).message}`);
    }
    return out;
  }

  // As read(), into `into`, on libuv's thread pool: the caller can work (hash the last chunk) meanwhile.
  async readInto(offset: number, into: Uint8Array): Promise<void> {
    const code = this.opts.code ?? 'IO';
    const fd = this.fd;
    if (fd === null) throw new Error(`${this.path}: read after close`);
    const length = into.byteLength;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + length > this.size) {
      fail(code, `${this.opts.what} '${this.path}': bytes [${offset}, ${offset + length}) are past the end of the file (${this.size} bytes)`);
    }
    let done = 0;
    while (done < length) {
      let n: number;
      try {
        n = await new Promise<number>((resolve, reject) =>
          read(fd, into, done, Math.min(length - done, 1 << 30), offset + done, (e, bytes) => (e ? reject(e) : resolve(bytes))),
        );
      } catch (e) {
        fail(code, `cannot read ${this.opts.what} '${this.path}': ${(e as Error).message}`);
      }
      if (n <= 0) fail(code, `${this.opts.what} '${this.path}' ended at byte ${offset + done} of ${this.size} (did it change while being read?)`);
      done += n;
    }
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

// Opens `path` for bounded reads. The caller closes it (try/finally).
export function openRegularFile(path: string, opts: FileReadOptions): RegularFile {
  const code = opts.code ?? 'IO';
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS);
  } catch (e) {
    // opening a socket fails (ENXIO) before there is a descriptor to fstat: name the kind from lstat
    const kind = kindOf(path);
    if (kind !== null && kind !== 'regular file') fail(code, notRegular(opts.what, path, kind));
    fail(code, `cannot open ${opts.what} '${path}': ${(e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) fail(code, notRegular(opts.what, path, describeKind(st)));
    if (st.size > opts.maxBytes) {
      fail(code, `${opts.what} '${path}' is ${st.size} bytes, more than the limit of ${limitText(opts.maxBytes)} for a ${opts.what}; refusing to read it`);
    }
    return new RegularFile(fd, path, st.size, opts);
  } catch (e) {
    closeSync(fd);
    if (isLoomError(e)) throw e;
    fail(code, `cannot read ${opts.what} '${path}': ${(e as Error).message}`);
  }
}

// The whole file, bounded by opts.maxBytes.
export function readRegularFile(path: string, opts: FileReadOptions): Uint8Array {
  const f = openRegularFile(path, opts);
  try {
    return f.read(0, f.size);
  } finally {
    f.close();
  }
}

// The whole file as UTF-8 text, bounded by opts.maxBytes (and by the longest string V8 can hold).
export function readTextFile(path: string, opts: FileReadOptions): string {
  const bytes = readRegularFile(path, { ...opts, maxBytes: Math.min(opts.maxBytes, MAX_TEXT_BYTES) });
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}

// JSON nesting Loom's own formats never come near (manifests: 4 levels, plan.json and dumps: about 10); far
// below what the recursive walkers (revivers, validators, JSON.stringify in messages) survive.
export const MAX_JSON_DEPTH = 256;

export interface JsonParseOptions {
  readonly what: string; // "manifest 'fleet.json'", "plan.json", ...
  readonly code?: LoomErrorCode; // default USAGE
  readonly reviver?: (key: string, value: unknown) => unknown;
}

// JSON.parse itself copes with deep nesting, but everything that walks the result recursively does not, and a
// stack overflow is an untyped RangeError; so the nesting is measured first (one pass, strings skipped).
export function parseJsonText(text: string, opts: JsonParseOptions): unknown {
  const code = opts.code ?? 'USAGE';
  checkJsonDepth(text, opts);
  try {
    return opts.reviver ? JSON.parse(text, opts.reviver) : JSON.parse(text);
  } catch (e) {
    if (isLoomError(e)) throw e;
    fail(code, `${opts.what} is not valid JSON: ${(e as Error).message}`);
  }
}

// For callers with their own parser: refuses JSON text nested deeper than MAX_JSON_DEPTH.
export function checkJsonDepth(text: string, opts: Pick<JsonParseOptions, 'what' | 'code'>): void {
  if (jsonDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    fail(opts.code ?? 'USAGE', `${opts.what} is nested more than ${MAX_JSON_DEPTH} levels deep (arrays and objects); refusing to read it`);
  }
}

// The deepest bracket nesting outside strings, counting stops once past `limit`.
function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

function notRegular(what: string, path: string, kind: string): string {
  return `${what} '${path}' is a ${kind}, not a regular file; Loom reads only regular files`;
}

function kindOf(path: string): string | null {
  try {
    return describeKind(statSync(path));
  } catch {
    return null;
  }
}

interface StatKind {
  isFile(): boolean;
  isDirectory(): boolean;
  isFIFO(): boolean;
  isSocket(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
}

function describeKind(st: StatKind): string {
  if (st.isFile()) return 'regular file';
  if (st.isDirectory()) return 'directory';
  if (st.isFIFO()) return 'FIFO (named pipe)';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  return 'special file';
}

function limitText(n: number): string {
  return n < KiB ? `${n} bytes` : `${n} bytes (${formatBytes(n)})`;
}

export function formatBytes(n: number): string {
  if (n >= GiB) return `${+(n / GiB).toFixed(2)} GiB`;
  if (n >= MiB) return `${+(n / MiB).toFixed(2)} MiB`;
  if (n >= KiB) return `${+(n / KiB).toFixed(2)} KiB`;
  return `${n} bytes`;
}
