// Oracle harness: onnxruntime-node runs the original ONNX model; Loom imports, canonicalizes and runs its
// reference executor on the same inputs; outputs must agree. Used by every oracle test.
import type { Graph } from '../../ir/graph.js';
import { interpret } from '../../ir/interpret.js';
import { verifyGraph } from '../../ir/verify.js';
import { type Tensor, fromNumbers } from '../../ir/tensor.js';
import { canonicalize } from '../../ir/passes/index.js';
import { runOrt } from '../support/ort.js';
import { relativeError, rng } from '../support/tensors.js';

// Oracle tests (and pass tests) import these from here.
export { fromOrt, runOrt, toOrt } from '../support/ort.js';
export { relativeError } from '../support/tensors.js';

// Deterministic inputs for every graph input. Integer inputs get values in [0, intRange) (ids) or a
// 0/1 attention-style mask when their name says mask (ones first, then padding zeros on later rows).
export function makeFeeds(g: Graph, opts: { batch: number; seed: number; intRange?: number; scale?: number }): Record<string, Tensor> {
  const rand = rng(opts.seed >>> 0 || 1);
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
