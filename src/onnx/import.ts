import { basename, dirname, extname } from 'node:path';
import { GraphBuilder } from '../../ir/builder.js';
import { dtypeToOnnx } from '../../ir/dtype.js';
import { LoomError, fail, isLoomError } from '../../ir/errors.js';
import { GiB, readRegularFile } from '../../ir/files.js';
import type { Graph, ValueId } from '../../ir/graph.js';
import { AttrReader, type RawAttr } from '../../ir/op.js';
import { type OpName, isOpName, opDef } from '../../ir/ops/index.js';
import { shapeToString } from '../../ir/shape.js';
import { type Tensor, fromNumbers } from '../../ir/tensor.js';
import { decodeAttributes } from './attrs.js';
import { decodeModel, int64 } from './decode.js';
import { type DeclaredType, bindInputs, declaredType } from './inputs.js';
import { modernOpName, normalizeLegacy } from './legacy.js';
import type { GraphProto, ModelProto, NodeProto } from './proto.js';
import { type TensorContext, i64Tensor, tensorFromProto } from './tensor.js';
import { type SortNode, topoSort } from './toposort.js';

// ONNX ModelProto → IR Graph: constants from initializers and Constant nodes, runtime inputs with bound
// dims, then every node (legacy forms normalized) through GraphBuilder, which runs each op's shape rule.

export interface ImportOptions {
  readonly dims?: Readonly<Record<string, number>>; // sizes for symbolic input dims, by dim_param name
  readonly baseDir?: string; // for external data; default: the model file's folder
  readonly name?: string; // graph name; default: the model file's base name, else the ONNX graph's name
  readonly onExternalFile?: (file: string) => void; // each external data file read (real path): the tenant cache keys on them
  readonly onModelBytes?: (bytes: Uint8Array) => void; // importModelFile: the file's bytes as read, before decoding (hashed by the tenant cache)
}

export const OPSET_MIN = 9;
export const OPSET_MAX = 21;

// ONNX models are protobuf messages, which cannot exceed 2 GiB (larger weights go to external data).
export const MAX_MODEL_FILE_BYTES = 2 * GiB;

export function importModelFile(path: string, opts: ImportOptions = {}): Graph {
  const bytes = readRegularFile(path, { what: 'model file', maxBytes: MAX_MODEL_FILE_BYTES });
  opts.onModelBytes?.(bytes);
  try {
    // the bytes are this call's own: initializers become views of them instead of copies
    return importDecoded(decodeModel(bytes), { ...opts, baseDir: opts.baseDir ?? dirname(path), name: opts.name ?? basename(path, extname(path)) }, true);
  } catch (e) {
    // name the file: a fleet imports many models, and the message must say which one is bad
    if (isLoomError(e)) throw new LoomError(e.code, `${path}: ${e.message}`);
    throw e;
  }
}

export function importModelBytes(bytes: Uint8Array, opts: ImportOptions = {}): Graph {
  return importDecoded(decodeModel(bytes), opts, false);
}

// ownsBytes: the model's bytes belong to this import alone (see ownedView in tensor.ts).
function importDecoded(model: ModelProto, opts: ImportOptions, ownsBytes: boolean): Graph {
  try {
    return importModel(model, opts, ownsBytes);
  } catch (e) {
    if (isLoomError(e)) throw e;
    fail('MODEL_INVALID', `unexpected error while importing the model: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function defaultOpset(model: ModelProto): number {
  let opset: number | undefined;
  for (const o of model.opsetImport ?? []) {
    if (o.domain === '' || o.domain === 'ai.onnx' || o.domain === null || o.domain === undefined) opset = int64(o.version);
  }
  if (opset === undefined) fail('MODEL_INVALID', 'the model imports no default-domain (ai.onnx) opset');
  if (opset < OPSET_MIN || opset > OPSET_MAX) {
    fail('UNSUPPORTED_FEATURE', `the model uses ONNX opset ${opset}; Loom reads opsets ${OPSET_MIN}..${OPSET_MAX}`);
  }
  return opset;
}

function nodeLabel(n: NodeProto, i: number): string {
  return `node '${n.name || `${n.opType || '?'}_${i}`}' (${n.opType || '?'})`;
}

function isDefaultDomain(d: string | null | undefined): boolean {
  return !d || d === 'ai.onnx';
}

// All unsupported ops at once, so a user sees the whole list rather than one per attempt.
function checkOpsSupported(nodes: readonly NodeProto[], opset: number, model: ModelProto): void {
  const bad: string[] = [];
  nodes.forEach((n, i) => {
    const op = n.opType ?? '';
    const name = n.name || `${op}_${i}`;
    if (op === '') fail('MODEL_INVALID', `${nodeLabel(n, i)} has no op_type`);
    if (!isDefaultDomain(n.domain)) {
      const ver = (model.opsetImport ?? []).find((o) => o.domain === n.domain);
      bad.push(
        `node '${name}' uses op '${op}' of domain '${n.domain}'${ver ? ` (opset ${int64(ver.version)})` : ''}, which Loom does not support (only the default ai.onnx domain)`,
      );
    } else if (op !== 'Constant' && !isOpName(modernOpName(op))) {
      bad.push(`node '${name}' uses op '${op}' (opset ${opset}), which Loom does not support`);
    }
  });
  if (bad.length === 1) fail('UNSUPPORTED_OP', bad[0]!);
  if (bad.length > 1) fail('UNSUPPORTED_OP', `${bad[0]} (and ${bad.length - 1} more: ${bad.slice(1, 20).join('; ')}${bad.length > 21 ? '; ...' : ''})`);
}

function importModel(model: ModelProto, opts: ImportOptions, ownsBytes: boolean): Graph {
  const opset = defaultOpset(model);
  const graph = model.graph as GraphProto;
  const nodes = graph.node ?? [];
  const ext = opts.onExternalFile !== undefined ? { onExternalFile: opts.onExternalFile } : {};
  const tctx = { ...(opts.baseDir !== undefined ? { baseDir: opts.baseDir } : {}), ...ext };
  if ((graph.sparseInitializer ?? []).length > 0) {
    fail('UNSUPPORTED_FEATURE', `the graph has sparse initializers ('${graph.sparseInitializer![0]!.values?.name ?? ''}'); Loom reads dense ones only`);
  }
  checkOpsSupported(nodes, opset, model);

  const b = new GraphBuilder(opts.name ?? (graph.name || 'model'));
  const ids = new Map<string, ValueId>(); // ONNX value name → IR value

  for (const init of graph.initializer ?? []) {
    const name = init.name ?? '';
    if (name === '') fail('MODEL_INVALID', 'an initializer has no name');
    if (ids.has(name)) fail('MODEL_INVALID', `initializer '${name}' is defined twice`);
    ids.set(name, b.addConstant(name, tensorFromProto(init, { ...tctx, what: `initializer '${name}'`, ownsRaw: ownsBytes })));
  }

  // IR version 3 requires every initializer to be listed among the inputs: those stay constants. From IR
  // version 4 on, an initializer that shares an input's name is that input's default, which a caller may
  // override; Loom has no optional inputs, and freezing the default would silently ignore what callers send.
  const runtime: { name: string; declared: DeclaredType }[] = [];
  const seenInputs = new Set<string>();
  const defaulted: string[] = [];
  for (const vi of graph.input ?? []) {
    const name = vi.name ?? '';
    if (name === '') fail('MODEL_INVALID', 'a graph input has no name');
    if (seenInputs.has(name)) fail('MODEL_INVALID', `graph input '${name}' is listed twice`);
    seenInputs.add(name);
    if (ids.has(name)) {
      defaulted.push(name);
      continue;
    }
    runtime.push({ name, declared: declaredType(vi, `graph input '${name}'`) });
  }
  const irVersion = model.irVersion === null || model.irVersion === undefined ? 0 : int64(model.irVersion);
  if (defaulted.length > 0 && irVersion >= 4) refuseInputDefaults(defaulted, irVersion);
  const bound = bindInputs(runtime, opts.dims);
  runtime.forEach((r, i) => ids.set(r.name, b.addInput(r.name, bound.types[i]!)));

  const sortNodes: SortNode[] = nodes.map((n, i) => ({ label: nodeLabel(n, i), inputs: n.input ?? [], outputs: n.output ?? [] }));
  const order = topoSort(sortNodes, new Set(ids.keys()));
  const onnxNames = new Set<string>(ids.keys());
  for (const n of nodes) for (const o of n.output ?? []) onnxNames.add(o);
  // Names the importer invents must not take an ONNX value's name (builder would rename the ONNX one).
  const fresh = (base: string): string => {
    let s = base;
    for (let k = 1; onnxNames.has(s); k++) s = `${base}_${k}`;
    onnxNames.add(s);
    return s;
  };
  for (const i of order) importNode(nodes[i]!, i, opset, b, ids, tctx, fresh);

  const outs = (graph.output ?? []).map((vi) => {
    const name = vi.name ?? '';
    const id = ids.get(name);
    if (id === undefined) fail('MODEL_INVALID', `graph output '${name}' is not produced by any node, input or initializer`);
    checkDeclaredOutput(vi, name, b, id);
    return id;
  });
  if (outs.length === 0) fail('MODEL_INVALID', 'the graph has no outputs');
  b.setOutputs(outs);
  return b.build(bound.symbols);
}

function refuseInputDefaults(names: readonly string[], irVersion: number): never {
  const shown = names.slice(0, 5).map((n) => `'${n}'`);
  const list = names.length === 1 ? `graph input ${shown[0]}` : `graph inputs ${shown.join(', ')}${names.length > 5 ? ` (and ${names.length - 5} more)` : ''}`;
  fail(
    'UNSUPPORTED_FEATURE',
    `${list} ${names.length === 1 ? 'has an initializer' : 'have initializers'} of the same name: in ONNX IR version ${irVersion} that makes the initializer ` +
      'a default a caller may override, and Loom has no optional inputs. If it is a weight, remove it from graph.input (PyTorch: export with ' +
      'keep_initializers_as_inputs=False); if callers must supply it, remove the initializer',
  );
}

function importNode(
  n: NodeProto,
  index: number,
  opset: number,
  b: GraphBuilder,
  ids: Map<string, ValueId>,
  files: Pick<TensorContext, 'baseDir' | 'onExternalFile'>,
  fresh: (base: string) => string,
): void {
  const op = n.opType ?? '';
  const name = n.name || `${op}_${index}`;
  const where = `node '${name}' (${op})`;
  try {
    const outputs = n.output ?? [];
    const attrs = decodeAttributes(n.attribute ?? [], where, files);
    if (op === 'Constant') {
      if (outputs.length !== 1 || outputs[0] === '') fail('MODEL_INVALID', `${where}: must have exactly one output, has ${outputs.length}`);
      ids.set(outputs[0]!, b.addConstant(outputs[0]!, constantValue(attrs, where)));
      return;
    }
    const inputs = (n.input ?? []).map((v) => (v === '' ? null : ids.get(v)!));
    // Trailing unused outputs are dropped; an unused one in the middle still needs a name.
    let nOut = outputs.length;
    while (nOut > 0 && outputs[nOut - 1] === '') nOut--;
    const norm = normalizeLegacy(
      { op, inputs, attrs, opset, outputs: nOut },
      {
        where,
        name,
        typeOf: (id) => b.value(id).type,
        constantOf: (id) => b.constantOf(id),
        addConstant: (cname, t) => b.addConstant(fresh(cname), t),
      },
    );
    if (!isOpName(norm.op)) fail('UNSUPPORTED_OP', `node '${name}' uses op '${op}' (opset ${opset}), which Loom does not support`);
    const irOp: OpName = norm.op;
    const typed = opDef(irOp).attrs(new AttrReader(norm.attrs, { opset: norm.opset, where }));
    const outNames = outputs.slice(0, nOut).map((o, i) => o || fresh(`${name}_unused${i}`));
    const outIds = b.addNode(irOp, name, norm.inputs, typed as never, outNames);
    outNames.forEach((o, i) => {
      if (outputs[i] !== '') ids.set(o, outIds[i]!);
    });
  } catch (e) {
    if (isLoomError(e)) throw e;
    fail('MODEL_INVALID', `${where}: unexpected error while importing: ${e instanceof Error ? e.message : String(e)}`);
  }
}

// Paddle2ONNX writes weights as hundreds of Constant nodes; they become graph constants like initializers.
function constantValue(attrs: ReadonlyMap<string, RawAttr>, where: string): Tensor {
  if (attrs.size !== 1) {
    fail('MODEL_INVALID', `${where}: needs exactly one value attribute, has ${attrs.size === 0 ? 'none' : [...attrs.keys()].join(', ')}`);
  }
  const [key, a] = [...attrs][0]!;
  switch (key) {
    case 'value':
      if (a.kind === 'tensor') return a.value;
      break;
    case 'value_float':
      if (a.kind === 'float' || a.kind === 'int') return fromNumbers('f32', [], [a.value]);
      break;
    case 'value_floats':
      if (a.kind === 'floats' || a.kind === 'ints') return fromNumbers('f32', [a.value.length], a.value);
      break;
    case 'value_int':
      if (a.kind === 'int') return i64Tensor([a.value], []);
      break;
    case 'value_ints':
      if (a.kind === 'ints') return i64Tensor(a.value);
      break;
    case 'sparse_value':
    case 'value_string':
    case 'value_strings':
      fail('UNSUPPORTED_FEATURE', `${where}: attribute ${key} is not supported (Loom has no sparse or string tensors)`);
    default:
      fail('MODEL_INVALID', `${where}: unknown attribute '${key}'`);
  }
  fail('MODEL_INVALID', `${where}: attribute '${key}' has the wrong kind (${a.kind})`);
}

// Where the model declares an output's dtype or a concrete dim, the inferred type must agree.
function checkDeclaredOutput(vi: NonNullable<GraphProto['output']>[number], name: string, b: GraphBuilder, id: ValueId): void {
  const tt = vi.type?.tensorType;
  if (!tt) return;
  const actual = b.value(id).type;
  const elem = int64(tt.elemType);
  if (elem !== 0 && elem !== dtypeToOnnx(actual.dtype)) {
    const declared = declaredType(vi, `graph output '${name}'`).dtype;
    fail('SHAPE', `graph output '${name}' is declared ${declared}, but the graph computes ${actual.dtype}`);
  }
  const dims = tt.shape?.dim;
  if (!tt.shape || !dims) return;
  const mismatch = (): never =>
    fail('SHAPE', `graph output '${name}' is declared with shape ${declaredString(dims)}, but the graph computes ${shapeToString(actual.shape)}`);
  if (dims.length !== actual.shape.length) mismatch();
  dims.forEach((d, i) => {
    if (d.dimParam || d.dimValue === null || d.dimValue === undefined) return;
    const v = int64(d.dimValue);
    const a = actual.shape[i];
    if (v >= 0 && typeof a === 'number' && a !== v) mismatch();
  });
}

function declaredString(dims: ReadonlyArray<{ dimParam?: string | null; dimValue?: unknown }>): string {
  return `[${dims.map((d) => d.dimParam || (d.dimValue === null || d.dimValue === undefined ? '?' : int64(d.dimValue))).join(',')}]`;
}
