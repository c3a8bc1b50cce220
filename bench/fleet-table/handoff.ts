// The hand-off to the Python peer (bench/peers/fleet_torch.py), written into <fleet dir>/peer/:
//   fleet.json              format 'loom-peer-fleet' v1: tenants with kind, zoo options, batch, weights, I/O
//   weights/<id>.bin        the ONNX initializers as the file holds them, raw little-endian, concatenated
//   io/<id>.in<k>.bin       the tick's inputs; io/<id>.out<k>.bin Loom's outputs for exactly those inputs
// Each tensor entry of `weights.tensors` also carries its dtype ('float32', or 'int64' for the encoder's folded
// position/token-type id buffers, which are initializers too).
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { DType } from '../../ir/dtype.js';
import { fail } from '../../ir/errors.js';
import { type Tensor, tensorBytes } from '../../ir/tensor.js';
import type { TickInputs, TickOutputs } from '../../runtime/index.js';
import { decodeModel } from '../../src/onnx/decode.js';
import { tensorFromProto } from '../../src/onnx/tensor.js';
import type { PlannedTenant } from '../../ir/contract/plan.js';
import { PEER_KINDS, type PeerKind, type TenantPlanEntry } from './specs.js';

export const PEER_FLEET_FORMAT = 'loom-peer-fleet';
export const PEER_FLEET_FILE = 'fleet.json';

export type PeerDType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

export interface PeerWeightTensor {
  readonly name: string;
  readonly dtype: PeerDType;
  readonly shape: readonly number[];
  readonly offset: number;
  readonly bytes: number;
}

export interface PeerIO {
  readonly name: string;
  readonly dtype: PeerDType;
  readonly shape: readonly number[];
  readonly file: string;
}

export interface PeerTenant {
  readonly id: string;
  readonly kind: PeerKind;
  readonly options: Readonly<Record<string, unknown>>;
  readonly batch: number;
  readonly weights: { readonly file: string; readonly tensors: readonly PeerWeightTensor[] };
  readonly inputs: readonly PeerIO[];
  readonly outputs: readonly PeerIO[];
}

export interface PeerFleet {
  readonly format: typeof PEER_FLEET_FORMAT;
  readonly version: 1;
  readonly fleet: string;
  readonly precision: string;
  readonly tenants: readonly PeerTenant[];
}

export function peerDType(d: DType): PeerDType {
  switch (d) {
    case 'f32':
      return 'float32';
    case 'f64':
      return 'float64';
    case 'f16':
      return 'float16';
    case 'bf16':
      return 'bfloat16';
    case 'i64':
      return 'int64';
    case 'i32':
      return 'int32';
    case 'i8':
      return 'int8';
    case 'u8':
      return 'uint8';
    case 'bool':
      return 'bool';
    default: {
      const never: never = d;
      throw new Error(`unknown dtype ${String(never)}`);
    }
  }
}

const PEER_BYTES: Readonly<Record<PeerDType, number>> = { float32: 4, float64: 8, float16: 2, bfloat16: 2, int64: 8, int32: 4, int8: 1, uint8: 1, bool: 1 };

// Streams a model's initializers into `file` one at a time (a ResNet-18 holds 45 MB of them), in the order
// the ONNX file lists them; returns the table fleet.json records.
export function writeInitializers(modelBytes: Uint8Array, file: string): PeerWeightTensor[] {
  const graph = decodeModel(modelBytes).graph!;
  const tensors: PeerWeightTensor[] = [];
  mkdirSync(path.dirname(file), { recursive: true });
  const fd = openSync(file, 'w');
  try {
    let offset = 0;
    for (const init of graph.initializer ?? []) {
      const name = init.name ?? '';
      const t = tensorFromProto(init, { what: `initializer '${name}'` });
      const bytes = tensorBytes(t);
      for (let done = 0; done < bytes.byteLength; ) done += writeSync(fd, bytes, done, bytes.byteLength - done);
      tensors.push({ name, dtype: peerDType(t.dtype), shape: [...t.shape], offset, bytes: bytes.byteLength });
      offset += bytes.byteLength;
    }
  } finally {
    closeSync(fd);
  }
  return tensors;
}

// The tick's tensors for one tenant, in its plan I/O order: io/<id>.<in|out><k>.bin.
function writeTensors(peerDir: string, tenant: PlannedTenant, which: 'in' | 'out', tensors: Readonly<Record<string, Tensor>> | undefined): PeerIO[] {
  const ios = which === 'in' ? tenant.inputs : tenant.outputs;
  return ios.map((io, k) => {
    const t = tensors?.[io.name];
    if (!t) fail('EVAL', `fleet table: tenant '${tenant.id}' has no ${which === 'in' ? 'input' : 'output'} '${io.name}' this tick`);
    const file = `io/${tenant.id}.${which}${k}.bin`;
    writeFileSync(path.join(peerDir, file), tensorBytes(t));
    return { name: io.name, dtype: peerDType(t.dtype), shape: [...t.shape], file };
  });
}

// fleet.json plus the tick's input and output files; the weights files are already there (writeInitializers).
export function writePeerFleet(
  peerDir: string,
  fleet: string,
  precision: string,
  entries: readonly TenantPlanEntry[],
  weights: Readonly<Record<string, readonly PeerWeightTensor[]>>,
  planned: readonly PlannedTenant[],
  inputs: TickInputs,
  outputs: TickOutputs,
): PeerFleet {
  mkdirSync(path.join(peerDir, 'io'), { recursive: true });
  const byId = new Map(planned.map((t) => [t.id, t]));
  const tenants = entries.map((e): PeerTenant => {
    const p = byId.get(e.id);
    if (!p) fail('EVAL', `fleet table: tenant '${e.id}' is not in the plan`);
    const tensors = weights[e.id];
    if (!tensors) fail('EVAL', `fleet table: no weights were written for tenant '${e.id}'`);
    return {
      id: e.id,
      kind: e.group.kind,
      options: { ...e.group.options, seed: e.seed },
      batch: e.group.batch,
      weights: { file: weightsFile(e.id), tensors },
      inputs: writeTensors(peerDir, p, 'in', inputs[e.id]),
      outputs: writeTensors(peerDir, p, 'out', outputs[e.id]),
    };
  });
  const doc: PeerFleet = { format: PEER_FLEET_FORMAT, version: 1, fleet, precision, tenants };
  writeFileSync(path.join(peerDir, PEER_FLEET_FILE), `${JSON.stringify(doc, null, 1)}\n`);
  return doc;
}

export function weightsFile(id: string): string {
  return `weights/${id}.bin`;
}

// What is wrong with a hand-off directory, one line each (empty: it follows the format): the fields, the
// weights tables (contiguous from 0, bytes = elements × dtype size, file size = their sum) and the I/O files.
export function checkPeerFleet(peerDir: string): string[] {
  const problems: string[] = [];
  const file = path.join(peerDir, PEER_FLEET_FILE);
  if (!existsSync(file)) return [`${file} does not exist`];
  const doc = JSON.parse(readFileSync(file, 'utf8')) as PeerFleet;
  if (doc.format !== PEER_FLEET_FORMAT) problems.push(`format is ${JSON.stringify(doc.format)}, expected '${PEER_FLEET_FORMAT}'`);
  if (doc.version !== 1) problems.push(`version is ${JSON.stringify(doc.version)}, expected 1`);
  if (typeof doc.fleet !== 'string' || typeof doc.precision !== 'string') problems.push('fleet and precision must be strings');
  const tenants: readonly PeerTenant[] = doc.tenants;
  if (!Array.isArray(tenants as unknown) || tenants.length === 0) return [...problems, 'tenants must be a non-empty array'];
  const size = (rel: string): number | null => {
    const f = path.join(peerDir, rel);
    return existsSync(f) ? statSync(f).size : null;
  };
  const ids = new Set<string>();
  for (const t of tenants) {
    const at = `tenant '${t.id}'`;
    if (ids.has(t.id)) problems.push(`${at} appears twice`);
    ids.add(t.id);
    if (!(PEER_KINDS as readonly string[]).includes(t.kind)) problems.push(`${at}: kind ${JSON.stringify(t.kind)} is not one of ${PEER_KINDS.join(', ')}`);
    if (!Number.isInteger(t.batch) || t.batch < 1) problems.push(`${at}: batch must be a positive integer`);
    if (typeof t.options !== 'object' || t.options === null) problems.push(`${at}: options must be an object`);
    let offset = 0;
    for (const w of t.weights.tensors) {
      const want = elements(w.shape) * (PEER_BYTES[w.dtype] ?? NaN);
      if (w.offset !== offset) problems.push(`${at}: weight '${w.name}' at offset ${w.offset}, expected ${offset} (contiguous)`);
      if (w.bytes !== want) problems.push(`${at}: weight '${w.name}' has ${w.bytes} bytes, its shape [${w.shape.join(',')}] of ${w.dtype} needs ${want}`);
      offset += w.bytes;
    }
    const wsize = size(t.weights.file);
    if (wsize !== offset) problems.push(`${at}: ${t.weights.file} has ${wsize ?? 'no'} bytes, the tensors need ${offset}`);
    for (const io of [...t.inputs, ...t.outputs]) {
      const want = elements(io.shape) * (PEER_BYTES[io.dtype] ?? NaN);
      const got = size(io.file);
      if (got !== want) problems.push(`${at}: ${io.file} ('${io.name}') has ${got ?? 'no'} bytes, [${io.shape.join(',')}] of ${io.dtype} needs ${want}`);
    }
    if (t.outputs.some((o) => o.dtype !== 'float32')) problems.push(`${at}: outputs must be float32`);
  }
  return problems;
}

function elements(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

// Host↔device bytes of a full tick: every tenant's input and output slots at maxBatch.
export function ioBytes(planned: readonly PlannedTenant[]): number {
  let n = 0;
  for (const t of planned) for (const io of [...t.inputs, ...t.outputs]) n += io.bytes;
  return n;
}
