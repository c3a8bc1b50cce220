// The one check of a tenant's request tensors against its I/O table (TenantIO in plan.ts), used by
// `loom run` (src/fleet/inputs.ts), runTick (runtime/tick-io.ts), `loom serve` (runtime/serve/validate.ts)
// and the generated client, so the same mistake reads the same wherever it is made.
// The generated client embeds this file's text verbatim (codegen/client.ts) and must import nothing, so this
// file imports nothing either, uses only the ES2020 library (no Node types) and compiles under
// noUncheckedIndexedAccess; its types are structural, so TenantIO, PlannedTenant and ir/ Tensors fit them.

/** One input of a tenant as its plan lays it out (shape at maxBatch rows). */
export interface IOSpec {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly batchAxis: number | null;
}

export interface TenantIOSpec {
  readonly id: string;
  readonly inputs: readonly IOSpec[];
}

/** A request tensor as any caller holds it; `data` is unknown because callers from JavaScript may pass anything. */
export interface TensorValue {
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly data: unknown;
}

export type TenantIOErrorCode =
  | 'unknown-input' // a name the tenant does not have
  | 'duplicate-input' // a name given twice (requests that list their inputs)
  | 'missing-input'
  | 'dtype'
  | 'array-type' // the data's typed array does not hold the dtype (wrong element size or kind)
  | 'shape' // rank, a fixed dim, or rows outside 1..maxBatch on the batch axis
  | 'element-count' // data length differs from the shape's element count
  | 'rows-disagree' // two inputs carry different row counts
  | 'not-finite'; // NaN/Inf where the tenant refuses them

/** A request input that does not fit the tenant's I/O table; path names the field, e.g. inputs[0] ('x').shape. */
export class TenantIOError extends Error {
  override readonly name = 'TenantIOError';
  readonly code: TenantIOErrorCode;
  readonly path: string;
  readonly tenant: string;
  constructor(code: TenantIOErrorCode, path: string, tenant: string, message: string) {
    super(message);
    this.code = code;
    this.path = path;
    this.tenant = tenant;
  }
}

export interface TenantIOCheckOptions {
  /** How messages name the tenant: 'tenant' (default), or 'model' where the protocol calls tenants models (OIP). */
  readonly noun?: string;
  /** Refuse NaN and Inf in float inputs (`checkFinite` in the manifest, or `loom serve --check-finite`). */
  readonly checkFinite?: boolean;
  /** Where an input came from (e.g. its .npy file), said in messages about it. */
  readonly sourceOf?: (name: string) => string | undefined;
}

/** The typed array that holds each dtype (f16/bf16 as raw 16-bit patterns, bool as 0/1 bytes). */
export const TYPED_ARRAY_NAMES: Readonly<Record<string, string>> = {
  f32: 'Float32Array',
  f64: 'Float64Array',
  f16: 'Uint16Array',
  bf16: 'Uint16Array',
  i64: 'BigInt64Array',
  i32: 'Int32Array',
  i8: 'Int8Array',
  u8: 'Uint8Array',
  bool: 'Uint8Array',
};

/** "Float32Array" for a typed array (of any realm; a Node Buffer is a Uint8Array), else the JavaScript type. */
export function arrayKindOf(data: unknown): string {
  // a typed array's @@toStringTag getter returns its constructor's name without building a string (runTick
  // asks this for every input of every tick); a DataView has its own tag
  if (ArrayBuffer.isView(data)) return (data as unknown as Record<symbol, string | undefined>)[Symbol.toStringTag] ?? 'DataView';
  return data === null ? 'null' : Array.isArray(data) ? 'Array' : typeof data;
}

/** "f32[1..4,784]": the shapes an input accepts (rows along the batch axis). */
export function describeTenantIO(io: IOSpec): string {
  const dims = io.shape.map((d, i) => (i === io.batchAxis && d > 1 ? '1..' + d : String(d)));
  return io.dtype + '[' + dims.join(',') + ']';
}

/** Whether `shape` is one the input accepts: same rank, fixed dims equal, 1..maxBatch rows on the batch axis. */
export function shapeFits(io: IOSpec, shape: readonly number[]): boolean {
  if (shape.length !== io.shape.length) return false;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i]!;
    if (i === io.batchAxis ? !(Number.isInteger(d) && d >= 1 && d <= io.shape[i]!) : d !== io.shape[i]) return false;
  }
  return true;
}

/** Index of the first NaN/Inf element, or -1. f16/bf16 are raw bits: an all-ones exponent is non-finite. */
export function firstNonFinite(t: TensorValue): number {
  const d = t.data as ArrayLike<number>;
  switch (t.dtype) {
    case 'f32':
    case 'f64':
      for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i]!)) return i;
      return -1;
    case 'f16':
      for (let i = 0; i < d.length; i++) if ((d[i]! & 0x7c00) === 0x7c00) return i;
      return -1;
    case 'bf16':
      for (let i = 0; i < d.length; i++) if ((d[i]! & 0x7f80) === 0x7f80) return i;
      return -1;
    default:
      return -1;
  }
}

function describeNonFinite(t: TensorValue, i: number): string {
  const v = (t.data as ArrayLike<number>)[i]!;
  if (t.dtype === 'f32' || t.dtype === 'f64') return String(v);
  // f16 / bf16 bits with an all-ones exponent: a zero mantissa is an infinity
  if ((v & (t.dtype === 'f16' ? 0x03ff : 0x007f)) !== 0) return 'NaN';
  return v & 0x8000 ? '-Infinity' : 'Infinity';
}

function shapeText(shape: unknown): string {
  return Array.isArray(shape) ? '[' + shape.join(',') + ']' : String(shape);
}

function subjectOf(tenant: TenantIOSpec, opts: TenantIOCheckOptions): string {
  return (opts.noun ?? 'tenant') + " '" + tenant.id + "'";
}

/** Unknown and repeated names, in the order given; used on a record's keys and on requests that list inputs. */
export function checkInputNames(tenant: TenantIOSpec, names: readonly string[], opts: TenantIOCheckOptions = {}): void {
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    let known = false;
    for (const io of tenant.inputs) if (io.name === name) known = true;
    if (!known) {
      const list = tenant.inputs.map((io) => io.name + ' ' + describeTenantIO(io)).join(', ');
      throw new TenantIOError(
        'unknown-input',
        "inputs ('" + name + "')",
        tenant.id,
        subjectOf(tenant, opts) + " has no input '" + name + "' (its inputs: " + list + ')',
      );
    }
    if (names.indexOf(name) !== i) {
      throw new TenantIOError('duplicate-input', "inputs ('" + name + "')", tenant.id, subjectOf(tenant, opts) + " input '" + name + "' is given twice");
    }
  }
}

// Throws the error for input k of the tenant's table; the path and message are built only here.
function refuseTenantInput(tenant: TenantIOSpec, k: number, opts: TenantIOCheckOptions, code: TenantIOErrorCode, field: string, problem: string): never {
  const io = tenant.inputs[k]!;
  const source = opts.sourceOf?.(io.name);
  const at = subjectOf(tenant, opts) + " input '" + io.name + "'" + (source !== undefined ? " (from '" + source + "')" : '');
  throw new TenantIOError(code, 'inputs[' + k + "] ('" + io.name + "')" + field, tenant.id, at + ': ' + problem);
}

/**
 * Checks a request's inputs against the tenant's table: names, dtypes, typed arrays, shapes, element counts,
 * one row count across inputs, and (when asked) finite values. Returns the row count, or null when no input
 * has a batch axis. Throws TenantIOError. Builds no strings and no closures unless it fails: runTick calls
 * it for every tenant of every tick.
 */
export function validateTenantInputs(
  tenant: TenantIOSpec,
  inputs: Readonly<Record<string, TensorValue | undefined>>,
  opts: TenantIOCheckOptions = {},
): number | null {
  // names: a record cannot repeat a key, so when no more keys than table inputs are given and each table
  // input is found below, every key is known; only a mismatch builds the key list to name the stranger
  let given = 0;
  for (const key in inputs) if (Object.hasOwn(inputs, key)) given++;
  if (given > tenant.inputs.length) checkInputNames(tenant, Object.keys(inputs), opts);
  let rows: number | null = null;
  let rowsFrom = '';
  for (let k = 0; k < tenant.inputs.length; k++) {
    const io = tenant.inputs[k]!;
    const t = inputs[io.name];
    if (t === undefined) {
      checkInputNames(tenant, Object.keys(inputs), opts); // a stranger in its place is named first
      throw new TenantIOError(
        'missing-input',
        'inputs[' + k + "] ('" + io.name + "')",
        tenant.id,
        subjectOf(tenant, opts) + " is missing input '" + io.name + "' (" + describeTenantIO(io) + ')',
      );
    }
    if (t.dtype !== io.dtype) refuseTenantInput(tenant, k, opts, 'dtype', '.dtype', 'dtype ' + t.dtype + ', expected ' + describeTenantIO(io));
    const arrayName = TYPED_ARRAY_NAMES[io.dtype];
    if (arrayName !== undefined && arrayKindOf(t.data) !== arrayName) {
      refuseTenantInput(tenant, k, opts, 'array-type', '.data', arrayKindOf(t.data) + ', expected ' + arrayName + ' (' + io.dtype + ')');
    }
    if (!Array.isArray(t.shape) || !shapeFits(io, t.shape))
      refuseTenantInput(tenant, k, opts, 'shape', '.shape', 'shape ' + shapeText(t.shape) + ', expected ' + describeTenantIO(io));
    let n = 1;
    for (let i = 0; i < t.shape.length; i++) n *= t.shape[i]!;
    const length = (t.data as ArrayLike<unknown>).length;
    if (length !== n)
      refuseTenantInput(tenant, k, opts, 'element-count', '.data', length + ' elements for shape ' + shapeText(t.shape) + ' (' + n + ' expected)');
    if (opts.checkFinite) {
      const bad = firstNonFinite(t);
      if (bad >= 0) {
        const problem =
          'element ' + bad + ' is not finite (' + describeNonFinite(t, bad) + ', row-major index); this ' + (opts.noun ?? 'tenant') + ' refuses NaN and Inf';
        refuseTenantInput(tenant, k, opts, 'not-finite', '.data[' + bad + ']', problem);
      }
    }
    if (io.batchAxis === null) continue;
    const r = t.shape[io.batchAxis]!;
    if (rows === null) {
      rows = r;
      rowsFrom = io.name;
    } else if (r !== rows) {
      const problem =
        r +
        ' row' +
        (r === 1 ? '' : 's') +
        ' on axis ' +
        io.batchAxis +
        ", but input '" +
        rowsFrom +
        "' has " +
        rows +
        "; a request's inputs must carry the same rows";
      refuseTenantInput(tenant, k, opts, 'rows-disagree', '.shape', problem);
    }
  }
  return rows;
}
