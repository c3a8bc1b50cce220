// onnxruntime-node, the oracle of op semantics: IR Tensor <-> ort.Tensor and running a model on IR tensors.
import { createRequire } from 'node:module';
import type * as ort from 'onnxruntime-node';
import type { Tensor } from '../../ir/tensor.js';
import { FROM_ORT, ORT_TYPES, fromOrtData } from '../../src/fleet/oracle.js';

// Oracle runs of whole models: no graph rewrites and one thread, so onnxruntime computes what the model says.
export const UNOPTIMIZED: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'disabled', intraOpNumThreads: 1 };
// onnxruntime's own defaults, which the op and importer tests were tuned with.
export const ORT_DEFAULTS: ort.InferenceSession.SessionOptions = {};

// Loaded on first use, so test files that only share this folder's helpers (makeFeeds, ...) run where
// onnxruntime-node is not installed (the lent GPU machine's kit leaves it out unless WITH_ORT=1).
let loaded: typeof ort | null = null;
function ortModule(): typeof ort {
  loaded ??= createRequire(import.meta.url)('onnxruntime-node') as typeof ort;
  return loaded;
}

// Why onnxruntime-node cannot be used here (the lent GPU machine's kit leaves it out unless WITH_ORT=1), or
// null when it can. GPU tests compare the CUDA backend with the CPU backend always, and with onnxruntime where
// it loads (CI checks the CPU backend against onnxruntime), printing this reason otherwise.
export function ortUnavailable(): string | null {
  try {
    ortModule();
    return null;
  } catch (e) {
    return `onnxruntime-node cannot be loaded here (${(e as Error).message.split('\n')[0]}): the check against onnxruntime is skipped; the CPU backend's is in CI`;
  }
}

export function toOrt(t: Tensor): ort.Tensor {
  const type = ORT_TYPES[t.dtype];
  if (!type) throw new Error(`no onnxruntime type for ${t.dtype}`);
  return new (ortModule().Tensor)(type, t.data as never, [...t.shape]);
}

export function fromOrt(t: ort.Tensor): Tensor {
  const dtype = FROM_ORT[t.type];
  if (!dtype) throw new Error(`unsupported onnxruntime output type ${t.type}`);
  return fromOrtData(dtype, t.dims as number[], t.data);
}

async function runNamed(
  model: Uint8Array | string,
  feeds: Readonly<Record<string, Tensor>>,
  options: ort.InferenceSession.SessionOptions,
): Promise<Array<[string, Tensor]>> {
  const session = await ortModule().InferenceSession.create(model as never, options);
  try {
    const out = await session.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, toOrt(v)])));
    return session.outputNames.map((n) => [n, fromOrt(out[n]!)]);
  } finally {
    await session.release();
  }
}

// The model's outputs by name.
export async function runOrt(
  model: Uint8Array | string,
  feeds: Readonly<Record<string, Tensor>>,
  options: ort.InferenceSession.SessionOptions = UNOPTIMIZED,
): Promise<Record<string, Tensor>> {
  return Object.fromEntries(await runNamed(model, feeds, options));
}

// The model's outputs in the order the model lists them (output names may look like array indices).
export async function runOrtOutputs(
  model: Uint8Array | string,
  feeds: Readonly<Record<string, Tensor>>,
  options: ort.InferenceSession.SessionOptions = UNOPTIMIZED,
): Promise<Tensor[]> {
  return (await runNamed(model, feeds, options)).map(([, t]) => t);
}
