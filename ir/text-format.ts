import { createHash } from 'node:crypto';
import { type DType, DTYPES, allocArray, bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './dtype.js';
import { fail } from './errors.js';
import type { Dim } from './shape.js';
import { type Tensor, type TensorType, makeTensor, tensorBytes } from './tensor.js';

// Lexical pieces of the IR text form shared by the printer (ir/print.ts) and the parser (ir/parse.ts).
// The printer checks every inline constant by parsing it back, so text is exact by construction.

const BARE_NAME = /^[A-Za-z0-9_.\-/]+(?::+[A-Za-z0-9_.\-/]+)*$/; // ':' only inside, so `%x: f32` stays unambiguous
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const KEYWORDS = new Set(['true', 'false', 'null', 'nan', 'inf']);

// A value/graph/node name: bare when safe, else a JSON string.
export function formatName(name: string): string {
  return BARE_NAME.test(name) ? name : JSON.stringify(name);
}

export function formatDim(d: Dim): string {
  return typeof d === 'number' ? String(d) : IDENT.test(d) && !KEYWORDS.has(d) ? d : JSON.stringify(d);
}

export function formatType(t: TensorType): string {
  return `${t.dtype}[${t.shape.map(formatDim).join(',')}]`;
}

// Exact text for a double (attrs are doubles): String() round-trips, plus -0 and non-finite spellings.
export function formatNumber(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (Object.is(x, -0)) return '-0';
  return String(x);
}

// Attribute values: JSON-like, object keys sorted so equal attrs print equally whoever built them.
export function formatAttrValue(v: unknown, where: string): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'number':
      return formatNumber(v);
    case 'boolean':
      return String(v);
    case 'string':
      return IDENT.test(v) && !KEYWORDS.has(v) ? v : JSON.stringify(v);
    case 'object': {
      if (Array.isArray(v)) return `[${v.map((e) => formatAttrValue(e, where)).join(', ')}]`;
      if (Object.getPrototypeOf(v) !== Object.prototype) fail('VERIFY', `${where}: attribute value is not plain data`);
      return `{${formatAttrFields(v as Record<string, unknown>, ': ', where)}}`;
    }
    default:
      return fail('VERIFY', `${where}: attribute value of type ${typeof v} is not plain data`);
  }
}

export function formatAttrFields(o: Record<string, unknown>, sep: string, where: string): string {
  return Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${IDENT.test(k) ? k : JSON.stringify(k)}${sep}${formatAttrValue(o[k], `${where}: attribute '${k}'`)}`)
    .join(', ');
}

// Shortest decimal that maps back to the same stored bits through `encode`.
function shortestFloat(x: number, encode: (v: number) => number, bits: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x) || x === 0) return formatNumber(x);
  for (let p = 1; p < 17; p++) {
    const s = formatNumber(Number(x.toPrecision(p)));
    if (encode(Number(s)) === bits) return s;
  }
  return formatNumber(x);
}

const f32box = new Float32Array(1);
const u32box = new Uint32Array(f32box.buffer);
function f32Bits(x: number): number {
  f32box[0] = x;
  return u32box[0]!;
}

export function formatElements(t: Tensor): string[] {
  const out: string[] = [];
  const d = t.data;
  for (let i = 0; i < d.length; i++) {
    switch (t.dtype) {
      case 'f32': {
        const x = (d as Float32Array)[i]!;
        out.push(shortestFloat(x, f32Bits, f32Bits(x)));
        break;
      }
      case 'f64':
        out.push(formatNumber((d as Float64Array)[i]!));
        break;
      case 'f16': {
        const h = (d as Uint16Array)[i]!;
        out.push(shortestFloat(f16ToF32(h), f32ToF16, h));
        break;
      }
      case 'bf16': {
        const h = (d as Uint16Array)[i]!;
        out.push(shortestFloat(bf16ToF32(h), f32ToBf16, h));
        break;
      }
      case 'bool':
        out.push((d as Uint8Array)[i] ? 'true' : 'false');
        break;
      case 'i64':
      case 'i32':
      case 'i8':
      case 'u8':
        out.push(String(d[i]));
        break;
      default: {
        const never: never = t.dtype;
        throw new Error(`unknown dtype ${String(never)}`);
      }
    }
  }
  return out;
}

export function sameBytes(a: Tensor, b: Tensor): boolean {
  const x = tensorBytes(a);
  const y = tensorBytes(b);
  return x.length === y.length && Buffer.compare(x, y) === 0;
}

export function shortHash(t: Tensor): string {
  return createHash('sha256').update(tensorBytes(t)).digest('hex').slice(0, 8);
}

export function hexOf(t: Tensor): string {
  const b = tensorBytes(t);
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

// Tensor from raw little-endian bytes (the machines Loom runs on are little-endian).
export function tensorFromHex(dtype: DType, shape: readonly number[], hex: string, where: string): Tensor {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) fail('MODEL_INVALID', `${where}: malformed hex data`);
  const bytes = Buffer.from(hex, 'hex');
  const n = shape.reduce((a, b) => a * b, 1);
  const arr = allocArray(dtype, n);
  if (bytes.length !== arr.byteLength) fail('MODEL_INVALID', `${where}: ${dtype}${`[${shape.join(',')}]`} needs ${arr.byteLength} bytes, got ${bytes.length}`);
  new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength).set(bytes);
  return makeTensor(dtype, shape, arr);
}

// Element tokens (as the scanner returns them) into a tensor, exactly: i64 via BigInt, floats through their encoder.
export function tensorFromElements(dtype: DType, shape: readonly number[], elems: readonly string[], where: string): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (elems.length !== n) fail('MODEL_INVALID', `${where}: ${dtype}[${shape.join(',')}] needs ${n} values, got ${elems.length}`);
  const arr = allocArray(dtype, n);
  for (let i = 0; i < n; i++) {
    const s = elems[i]!;
    if (dtype === 'bool') {
      if (s === 'true' || s === '1') (arr as Uint8Array)[i] = 1;
      else if (s === 'false' || s === '0') (arr as Uint8Array)[i] = 0;
      else fail('MODEL_INVALID', `${where}: '${s}' is not a bool`);
      continue;
    }
    if (dtype === 'i64' || dtype === 'i32' || dtype === 'i8' || dtype === 'u8') {
      if (!/^-?\d+$/.test(s)) fail('MODEL_INVALID', `${where}: '${s}' is not an integer`);
      if (dtype === 'i64') {
        const b = BigInt(s);
        if (BigInt.asIntN(64, b) !== b) fail('MODEL_INVALID', `${where}: ${s} does not fit i64`);
        (arr as BigInt64Array)[i] = b;
      } else {
        const v = Number(s);
        const [lo, hi] = dtype === 'i32' ? [-(2 ** 31), 2 ** 31 - 1] : dtype === 'i8' ? [-128, 127] : [0, 255];
        if (v < lo || v > hi) fail('MODEL_INVALID', `${where}: ${s} does not fit ${dtype}`);
        (arr as Int32Array)[i] = v;
      }
      continue;
    }
    const v = parseNumber(s, where);
    switch (dtype) {
      case 'f16':
        (arr as Uint16Array)[i] = f32ToF16(v);
        break;
      case 'bf16':
        (arr as Uint16Array)[i] = f32ToBf16(v);
        break;
      default:
        (arr as Float32Array)[i] = v;
    }
  }
  return makeTensor(dtype, shape, arr);
}

export function parseNumber(s: string, where: string): number {
  if (s === 'nan') return NaN;
  if (s === 'inf') return Infinity;
  if (s === '-inf') return -Infinity;
  if (!/^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) fail('MODEL_INVALID', `${where}: '${s}' is not a number`);
  return Number(s);
}

export function isDType(s: string): s is DType {
  return (DTYPES as readonly string[]).includes(s);
}

// Cursor over one line with positioned errors. Columns are 1-based.
export class Scanner {
  pos = 0;
  constructor(
    readonly text: string,
    readonly line: number,
  ) {}

  error(msg: string, at = this.pos): never {
    return fail('MODEL_INVALID', `line ${this.line}:${at + 1}: ${msg}`);
  }

  skipWs(): void {
    while (this.pos < this.text.length && (this.text[this.pos] === ' ' || this.text[this.pos] === '\t')) this.pos++;
  }

  atEnd(): boolean {
    this.skipWs();
    return this.pos >= this.text.length;
  }

  peek(): string {
    this.skipWs();
    return this.text[this.pos] ?? '';
  }

  startsWith(s: string): boolean {
    this.skipWs();
    return this.text.startsWith(s, this.pos);
  }

  accept(s: string): boolean {
    if (!this.startsWith(s)) return false;
    this.pos += s.length;
    return true;
  }

  expect(s: string, what = `'${s}'`): void {
    if (!this.accept(s)) this.error(`expected ${what}, found ${this.describeHere()}`);
  }

  describeHere(): string {
    this.skipWs();
    if (this.pos >= this.text.length) return 'end of line';
    return `'${this.text.slice(this.pos, this.pos + 12)}'`;
  }

  private match(re: RegExp): string | undefined {
    this.skipWs();
    re.lastIndex = this.pos;
    const m = re.exec(this.text);
    if (m === null || m.index !== this.pos) return undefined;
    this.pos += m[0].length;
    return m[0];
  }

  ident(what = 'an identifier'): string {
    return this.match(/[A-Za-z_][A-Za-z0-9_]*/y) ?? this.error(`expected ${what}, found ${this.describeHere()}`);
  }

  jsonString(): string {
    this.skipWs();
    const start = this.pos;
    const raw = this.match(/"(?:[^"\\]|\\.)*"/y) ?? this.error(`expected a string, found ${this.describeHere()}`);
    try {
      return JSON.parse(raw) as string;
    } catch {
      return this.error('malformed string', start);
    }
  }

  // hex"..." body; a plain scan because the data of a large constant can be many megabytes.
  hexString(): string {
    this.expect('hex"', 'hex"..."');
    const end = this.text.indexOf('"', this.pos);
    if (end < 0) this.error('unterminated hex data');
    const body = this.text.slice(this.pos, end);
    this.pos = end + 1;
    return body;
  }

  // A name as formatName writes it.
  name(what = 'a name'): string {
    if (this.peek() === '"') return this.jsonString();
    return this.match(/[A-Za-z0-9_.\-/]+(?::+[A-Za-z0-9_.\-/]+)*/y) ?? this.error(`expected ${what}, found ${this.describeHere()}`);
  }

  valueRef(): string {
    this.expect('%', 'a value (%name)');
    if (this.text[this.pos] === ' ') this.error('expected a name right after %');
    return this.name('a value name');
  }

  // A number token, kept as text so integer constants stay exact.
  numberToken(): string {
    return this.match(/-?(?:inf|nan|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)/y) ?? this.error(`expected a number, found ${this.describeHere()}`);
  }

  dim(): Dim {
    const c = this.peek();
    if (c === '"') return this.jsonString();
    if (/[0-9]/.test(c)) return Number(this.match(/\d+/y));
    return this.ident('a dimension');
  }

  type(): { dtype: DType; shape: Dim[] } {
    const at = this.pos;
    const dt = this.ident('a dtype');
    if (!isDType(dt)) this.error(`unknown dtype '${dt}' (known: ${DTYPES.join(', ')})`, at);
    this.expect('[');
    const shape: Dim[] = [];
    if (!this.accept(']')) {
      do shape.push(this.dim());
      while (this.accept(','));
      this.expect(']', "',' or ']'");
    }
    return { dtype: dt, shape };
  }

  attrValue(): unknown {
    const c = this.peek();
    if (c === '[') {
      this.pos++;
      const out: unknown[] = [];
      if (!this.accept(']')) {
        do out.push(this.attrValue());
        while (this.accept(','));
        this.expect(']', "',' or ']'");
      }
      return out;
    }
    if (c === '{') {
      this.pos++;
      return this.attrFields(':', '}');
    }
    if (c === '"') return this.jsonString();
    if (c === '-' || /[0-9.]/.test(c)) return parseNumber(this.numberToken(), `line ${this.line}`);
    const id = this.ident('an attribute value');
    switch (id) {
      case 'true':
        return true;
      case 'false':
        return false;
      case 'null':
        return null;
      case 'nan':
        return NaN;
      case 'inf':
        return Infinity;
      default:
        return id;
    }
  }

  // Fields up to and including `close`; the opening brace is already consumed.
  attrFields(sep: string, close: string): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    if (this.accept(close)) return out;
    do {
      const at = this.pos;
      const key = this.peek() === '"' ? this.jsonString() : this.ident('an attribute name');
      if (Object.hasOwn(out, key)) this.error(`attribute '${key}' given twice`, at);
      this.expect(sep);
      out[key] = this.attrValue();
    } while (this.accept(','));
    this.expect(close, `',' or '${close}'`);
    return out;
  }
}
