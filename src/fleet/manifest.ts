// The tenant manifest: which models a fleet serves, under which ids, with how many rows per tick.
// Parsing checks everything a deploy-time compile would otherwise trip over later (ids, paths, precision),
// and every message names the tenant and the field.
import { existsSync, realpathSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, relative, resolve, sep } from 'node:path';
import { fail } from '../../ir/errors.js';
import { MiB, openRegularFile, parseJsonText, readTextFile } from '../../ir/files.js';
import { MAX_MODEL_FILE_BYTES } from '../onnx/import.js';

// fp32: true fp32. tf32: fp32 plan, GEMMs on TF32 tensor cores (CUDA). bf16/fp16: GEMM weights converted at
// compile time and GEMM inputs cast, fp32 accumulation; everything else fp32 (codegen/FORMAT.md "Precision").
export const SUPPORTED_PRECISIONS = ['fp32', 'tf32', 'bf16', 'fp16'] as const;
export type FleetPrecision = (typeof SUPPORTED_PRECISIONS)[number];

export const MAX_BATCH_LIMIT = 4096;
export const MAX_MANIFEST_BYTES = 16 * MiB; // a manifest of 100k tenants is ~10 MB
export const MAX_DIM_SIZE = 2 ** 31 - 1; // a symbolic dim bound in `dims`
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const TENANT_KEYS = ['id', 'model', 'maxBatch', 'sloMs', 'checkFinite', 'dims'] as const;
const MANIFEST_KEYS = ['tenants', 'precision'] as const;

export interface TenantSpec {
  readonly id: string;
  readonly model: string; // as the manifest wrote it (recorded in the plan)
  readonly modelPath: string; // resolved against the manifest's folder, symlinks resolved (the file that is read)
  readonly maxBatch: number;
  readonly sloMs: number | null;
  readonly checkFinite: boolean; // `loom serve` refuses requests whose float inputs hold NaN or Inf
  readonly dims: Readonly<Record<string, number>>; // symbolic ONNX dims bound to sizes (not the batch dim)
}

export interface Manifest {
  readonly source: string; // the manifest file, or a description of where the tenants came from
  readonly precision: FleetPrecision;
  readonly tenants: readonly TenantSpec[];
}

export interface ManifestPathOptions {
  // Relative model paths may lead out of the manifest's folder (`..`, or a symlink whose target lies outside).
  readonly allowOutsidePaths?: boolean;
}

export function readManifest(path: string, opts: ManifestPathOptions = {}): Manifest {
  const text = readTextFile(path, { what: 'manifest', maxBytes: MAX_MANIFEST_BYTES });
  const json = parseJsonText(text, { what: `manifest '${path}'`, code: 'MANIFEST' });
  return parseManifest(json, { source: path, baseDir: dirname(path), ...opts });
}

// Validates a parsed manifest object. Model paths: a relative one resolves against baseDir and, once symlinks
// are resolved, must lie inside it (unless allowOutsidePaths); an absolute one is the operator's own choice.
// Either way the model must be a regular file, and modelPath is its real path.
export function parseManifest(json: unknown, opts: { source: string; baseDir: string } & ManifestPathOptions): Manifest {
  const where = `manifest '${opts.source}'`;
  if (!isObject(json)) fail('MANIFEST', `${where}: expected a JSON object {"tenants": [...], "precision": "fp32"}, got ${describe(json)}`);
  rejectUnknownKeys(json, MANIFEST_KEYS, where);
  const precision = parsePrecision(json.precision, where);
  const list = json.tenants;
  if (!Array.isArray(list)) fail('MANIFEST', `${where}: field 'tenants' must be an array of tenants, got ${describe(list)}`);
  if (list.length === 0) fail('MANIFEST', `${where}: field 'tenants' is empty; a fleet needs at least one tenant`);
  const seen = new Map<string, number>();
  const tenants = list.map((t, i) => {
    const spec = parseTenant(t, i, opts, where);
    const first = seen.get(spec.id);
    if (first !== undefined) fail('MANIFEST', `${where}: tenant id '${spec.id}' is used twice (tenants[${first}] and tenants[${i}]); ids must be unique`);
    seen.set(spec.id, i);
    return spec;
  });
  return { source: opts.source, precision, tenants };
}

// `loom compile a.onnx b.onnx`: one tenant per file, ids from the file names (a-2, a-3 when they repeat).
export function manifestFromFiles(files: readonly string[], opts: { maxBatch?: number; precision?: string } = {}): Manifest {
  if (files.length === 0) fail('USAGE', 'no model files given');
  const maxBatch = opts.maxBatch ?? 1;
  checkMaxBatch(maxBatch, '--max-batch');
  const precision = parsePrecision(opts.precision, '--precision');
  const used = new Set<string>();
  const tenants = files.map((file): TenantSpec => {
    const base = safeId(basename(file, extname(file)));
    let id = base;
    for (let k = 2; used.has(id); k++) id = `${base}-${k}`;
    used.add(id);
    const modelPath = realModelFile(resolve(file), `tenant '${id}': model '${file}'`);
    return { id, model: file, modelPath, maxBatch, sloMs: null, checkFinite: false, dims: {} };
  });
  return { source: files.length === 1 ? files[0]! : `${files.length} model files`, precision, tenants };
}

function parseTenant(t: unknown, i: number, opts: { baseDir: string } & ManifestPathOptions, where: string): TenantSpec {
  if (!isObject(t)) fail('MANIFEST', `${where}: tenants[${i}] must be an object {"id", "model", "maxBatch"}, got ${describe(t)}`);
  const rawId = t.id;
  if (typeof rawId !== 'string' || rawId === '') fail('MANIFEST', `${where}: tenants[${i}]: field 'id' must be a non-empty string, got ${describe(rawId)}`);
  if (!ID_RE.test(rawId)) {
    fail(
      'MANIFEST',
      `${where}: tenant '${rawId}' (tenants[${i}]): field 'id' may contain only letters, digits, '.', '_' and '-', and must start with a letter or digit`,
    );
  }
  const id = rawId;
  const at = `${where}: tenant '${id}'`;
  rejectUnknownKeys(t, TENANT_KEYS, at);
  const model = t.model;
  if (typeof model !== 'string' || model === '') fail('MANIFEST', `${at}: field 'model' must be a path to an .onnx file, got ${describe(model)}`);
  const modelPath = modelPathOf(model, opts, `${at}: field 'model'`);
  if (t.maxBatch === undefined) fail('MANIFEST', `${at}: field 'maxBatch' is missing (the most rows one tick carries for this tenant, 1..${MAX_BATCH_LIMIT})`);
  checkMaxBatch(t.maxBatch, `${at}: field 'maxBatch'`);
  let sloMs: number | null = null;
  if (t.sloMs !== undefined && t.sloMs !== null) {
    if (typeof t.sloMs !== 'number' || !Number.isFinite(t.sloMs) || t.sloMs <= 0) {
      fail('MANIFEST', `${at}: field 'sloMs' must be a positive number of milliseconds, got ${describe(t.sloMs)}`);
    }
    sloMs = t.sloMs;
  }
  if (t.checkFinite !== undefined && typeof t.checkFinite !== 'boolean') {
    fail('MANIFEST', `${at}: field 'checkFinite' must be true or false (refuse requests whose float inputs hold NaN or Inf), got ${describe(t.checkFinite)}`);
  }
  return { id, model, modelPath, maxBatch: t.maxBatch as number, sloMs, checkFinite: t.checkFinite === true, dims: parseDims(t.dims, at) };
}

function parseDims(d: unknown, at: string): Record<string, number> {
  if (d === undefined || d === null) return {};
  if (!isObject(d)) fail('MANIFEST', `${at}: field 'dims' must be an object mapping symbolic dim names to sizes, e.g. {"seq": 64}, got ${describe(d)}`);
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(d)) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_DIM_SIZE) {
      fail('MANIFEST', `${at}: field 'dims.${k}' must be a positive integer up to ${MAX_DIM_SIZE}, got ${describe(v)}`);
    }
    out[k] = v;
  }
  return out;
}

function parsePrecision(p: unknown, where: string): FleetPrecision {
  if (p === undefined) return 'fp32';
  if (typeof p === 'string' && (SUPPORTED_PRECISIONS as readonly string[]).includes(p)) return p as FleetPrecision;
  const field = where.startsWith('--') ? where : `${where}: field 'precision'`;
  fail('MANIFEST', `${field}: precision ${describe(p)} is not supported; supported: ${SUPPORTED_PRECISIONS.join(', ')}`);
}

function checkMaxBatch(v: unknown, field: string): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_BATCH_LIMIT) {
    fail('MANIFEST', `${field} must be an integer in 1..${MAX_BATCH_LIMIT}, got ${describe(v)}`);
  }
}

function modelPathOf(model: string, opts: { baseDir: string } & ManifestPathOptions, field: string): string {
  if (isAbsolute(model)) return realModelFile(model, field);
  const real = realModelFile(resolve(opts.baseDir, model), field);
  if (opts.allowOutsidePaths) return real;
  let base: string;
  try {
    base = realpathSync(resolve(opts.baseDir));
  } catch (e) {
    fail('IO', `${field}: cannot resolve the manifest's folder '${opts.baseDir}': ${(e as Error).message}`);
  }
  const rel = relative(base, real);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    fail(
      'MANIFEST',
      `${field}: '${model}' resolves to '${real}', outside the manifest's folder '${base}'; relative model paths must stay inside it (write an absolute path, or pass --allow-outside-paths)`,
    );
  }
  return real;
}

// The model file's real path, after checking that it is a regular file (a FIFO or a device is refused here,
// before any import could block on it).
function realModelFile(path: string, field: string): string {
  if (!existsSync(path)) fail('MANIFEST', `${field}: model file '${path}' does not exist`);
  let real: string;
  try {
    real = realpathSync(path);
  } catch (e) {
    fail('MANIFEST', `${field}: cannot resolve model file '${path}': ${(e as Error).message}`);
  }
  openRegularFile(real, { what: `${field}: model file`, maxBytes: MAX_MODEL_FILE_BYTES, code: 'MANIFEST' }).close();
  return real;
}

function rejectUnknownKeys(o: Record<string, unknown>, known: readonly string[], at: string): void {
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) fail('MANIFEST', `${at}: unknown field '${k}' (known: ${known.join(', ')})`);
  }
}

// A file name made into a valid tenant id: runs of other characters become '_'.
function safeId(name: string): string {
  const s = name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._-]+/, '');
  return s === '' ? 'model' : s;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
