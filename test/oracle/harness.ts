// Oracle harness: onnxruntime-node runs the original ONNX model; Loom imports, canonicalizes and runs its
// reference executor on the same inputs; outputs must agree. Used by every oracle test.
import * as ort from 'onnxruntime-node';
import type { DType } from '../../ir/dtype.js';
import type { Graph } from '../../ir/graph.js';
import { interpret } from '../../ir/interpret.js';
import { verifyGraph } from '../../ir/verify.js';
import { type Tensor, fromNumbers, makeTensor, toNumbers } from '../../ir/tensor.js';
import { canonicalize } from '../../src/pipeline.js';

const ORT_TYPES: Partial<Record<DType, ort.Tensor.Type>> = {
  f32: 'float32', f64: 'float64', i64: 'int64', i32: 'int32', i8: 'int8', u8: 'uint8', bool: 'bool', f16: 'float16',
};
const FROM_ORT: Record<string, DType> = {
  float32: 'f32', float64: 'f64', int64: 'i64', int32: 'i32', int8: 'i8', uint8: 'u8', bool: 'bool', float16: 'f16',
};

export function toOrt(t: Tensor): ort.Tensor {
  const type = ORT_TYPES[t.dtype];
  if (!type) throw new Error(`no onnxruntime type for ${t.dtype}`);
  return new ort.Tensor(type, t.data as never, [...t.shape]);
}

export function fromOrt(t: ort.Tensor): Tensor {
  const dtype = FROM_ORT[t.type];
  if (!dtype) throw new Error(`unsupported onnxruntime output type ${t.type}`);
  const data = dtype === 'bool' ? Uint8Array.from(t.data as Uint8Array) : (t.data as never);
  return makeTensor(dtype, t.dims as number[], data);
}

export async function runOrt(model: Uint8Array | string, feeds: Readonly<Record<string, Tensor>>): Promise<Record<string, Tensor>> {
  const session = await ort.InferenceSession.create(model as never, { graphOptimizationLevel: 'disabled', intraOpNumThreads: 1 });
  try {
    const out = await session.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, toOrt(v)])));
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, fromOrt(v)]));
  } finally {
    await session.release();
  }
}

// Deterministic inputs for every graph input. Integer inputs get values in [0, intRange) (ids) or a
// 0/1 attention-style mask when their name says mask (ones first, then padding zeros on later rows).
export function makeFeeds(g: Graph, opts: { batch: number; seed: number; intRange?: number; scale?: number }): Record<string, Tensor> {
  let s = opts.seed >>> 0 || 1;
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const feeds: Record<string, Tensor> = {};
  for (const id of g.inputs) {
    const v = g.values.get(id)!;
    const shape = v.type.shape.map((d) => (typeof d === 'number' ? d : opts.batch));
    const n = shape.reduce((a, b) => a * b, 1);
    const vals = new Float64Array(n);
    if (v.type.dtype === 'f32' || v.type.dtype === 'f64' || v.type.dtype === 'f16') {
      for (let i = 0; i < n; i++) vals[i] = (rand() * 2 - 1) * (opts.scale ?? 1);
    } else if (/mask/i.test(v.name)) {
      const row = shape[shape.length - 1] ?? 1;
      for (let i = 0; i < n; i++) {
        const r = Math.floor(i / row);
        vals[i] = i % row < row - ((r * 3) % Math.max(1, Math.floor(row / 2))) ? 1 : 0;
      }
    } else {
      for (let i = 0; i < n; i++) vals[i] = Math.floor(rand() * (opts.intRange ?? 10));
    }
    feeds[v.name] = fromNumbers(v.type.dtype, shape, vals);
  }
  return feeds;
}

// Norm-wise relative error max|a-b| / max|b| (integers and bools must match exactly).
export function relativeError(got: Tensor, want: Tensor): number {
  if (got.dtype !== want.dtype) throw new Error(`dtype ${got.dtype} vs ${want.dtype}`);
  if (got.shape.join(',') !== want.shape.join(',')) throw new Error(`shape [${got.shape}] vs [${want.shape}]`);
  const a = toNumbers(got);
  const b = toNumbers(want);
  let diff = 0;
  let mag = 0;
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(a[i]!) !== Number.isNaN(b[i]!)) return Infinity;
    if (Number.isNaN(b[i]!)) continue;
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    mag = Math.max(mag, Math.abs(b[i]!));
  }
  if (want.dtype !== 'f32' && want.dtype !== 'f64' && want.dtype !== 'f16' && want.dtype !== 'bf16') return diff === 0 ? 0 : Infinity;
  return mag === 0 ? diff : diff / mag;
}

export interface OracleReport {
  readonly stage: string; // 'imported' or the pass name after which it was checked
  readonly errors: Record<string, number>;
}

// Runs Loom at every pipeline stage (as imported, then after each pass, verifying the IR each time)
// and compares every output against onnxruntime. Returns one report per stage.
export async function checkAgainstOrt(
  model: Uint8Array | string,
  imported: Graph,
  feeds: Readonly<Record<string, Tensor>>,
  opts: { everyPass?: boolean } = {},
): Promise<OracleReport[]> {
  const want = await runOrt(model, feeds);
  const reports: OracleReport[] = [];
  const check = (stage: string, g: Graph) => {
    verifyGraph(g);
    const got = interpret(g, feeds);
    const errors: Record<string, number> = {};
    for (const [name, w] of Object.entries(want)) {
      const gt = got[name];
      if (!gt) throw new Error(`${stage}: Loom produced no output '${name}' (has ${Object.keys(got).join(', ')})`);
      errors[name] = relativeError(gt, w);
    }
    reports.push({ stage, errors });
  };
  if (opts.everyPass) check('imported', imported);
  const final = canonicalize(imported, { verify: true, ...(opts.everyPass ? { onPass: (name: string, g: Graph) => check(name, g) } : {}) });
  if (!opts.everyPass) check('canonical', final);
  return reports;
}

export function worstError(reports: readonly OracleReport[]): { stage: string; output: string; error: number } {
  let worst = { stage: '', output: '', error: -1 };
  for (const r of reports) for (const [o, e] of Object.entries(r.errors)) if (e > worst.error) worst = { stage: r.stage, output: o, error: e };
  return worst;
}
