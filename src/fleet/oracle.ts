// onnxruntime-node as the demo's judge: runs a tenant's original ONNX on the same inputs. It is a
// devDependency, so it is loaded on demand and its absence is reported, never fatal.
import type * as Ort from 'onnxruntime-node';
import type { DType } from '../../ir/dtype.js';
import { type Tensor, makeTensor, toNumbers } from '../../ir/tensor.js';

type OrtModule = typeof Ort;

// IR dtype ⇄ onnxruntime tensor type (shared with the tests' onnxruntime helpers, test/support/ort.ts).
export const ORT_TYPES: Partial<Record<DType, Ort.Tensor.Type>> = {
  f32: 'float32',
  f64: 'float64',
  i64: 'int64',
  i32: 'int32',
  i8: 'int8',
  u8: 'uint8',
  bool: 'bool',
  f16: 'float16',
};
export const FROM_ORT: Readonly<Record<string, DType>> = {
  float32: 'f32',
  float64: 'f64',
  int64: 'i64',
  int32: 'i32',
  int8: 'i8',
  uint8: 'u8',
  bool: 'bool',
  float16: 'f16',
};

// The IR keeps f16 as raw bits in a Uint16Array. Where the runtime has Float16Array (Node 24), onnxruntime
// returns float16 outputs as Float16Array: the bits are taken back as a Uint16Array view of the same bytes.
// (onnxruntime-node 1.30's binding also reads a Float16Array *input* as empty, which is why the test runner
// starts its workers with --no-js-float16array on such runtimes: vitest.config.ts.)
export function fromOrtData(dtype: DType, dims: readonly number[], data: unknown): Tensor {
  if (dtype === 'bool') return makeTensor(dtype, dims, Uint8Array.from(data as Uint8Array));
  if (dtype === 'f16' && !(data instanceof Uint16Array)) {
    const view = data as ArrayBufferView & { length: number };
    return makeTensor(dtype, dims, new Uint16Array(view.buffer, view.byteOffset, view.length));
  }
  return makeTensor(dtype, dims, data as never);
}

export type Oracle =
  | { readonly ok: true; run(model: string, feeds: Readonly<Record<string, Tensor>>): Promise<Record<string, Tensor>> }
  | { readonly ok: false; readonly reason: string };

export async function loadOracle(): Promise<Oracle> {
  let ort: OrtModule;
  try {
    const name = 'onnxruntime-node'; // through a variable: a production install has no devDependencies
    const m = (await import(name)) as OrtModule & { default?: OrtModule };
    ort = m.InferenceSession ? m : m.default!;
  } catch (e) {
    return {
      ok: false,
      reason: `onnxruntime-node cannot be imported (${(e as Error).message.split('\n')[0]}); install the devDependencies (npm install) to enable the check`,
    };
  }
  return {
    ok: true,
    run: async (model, feeds) => {
      // no graph rewrites, one thread: onnxruntime computes exactly what the model says
      const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'disabled', intraOpNumThreads: 1 });
      try {
        const ortFeeds: Record<string, Ort.Tensor> = {};
        for (const [k, t] of Object.entries(feeds)) {
          const type = ORT_TYPES[t.dtype];
          if (!type) throw new Error(`onnxruntime has no type for ${t.dtype}`);
          ortFeeds[k] = new ort.Tensor(type, t.data as never, [...t.shape]);
        }
        const out = await session.run(ortFeeds);
        const res: Record<string, Tensor> = {};
        for (const n of session.outputNames) {
          const o = out[n]!;
          const dtype = FROM_ORT[o.type];
          if (!dtype) throw new Error(`unsupported onnxruntime output type ${o.type}`);
          res[n] = fromOrtData(dtype, o.dims as number[], o.data);
        }
        return res;
      } finally {
        await session.release();
      }
    },
  };
}

// Norm-wise relative error max|a-b| / max|b|; integer and bool outputs must match exactly (else Infinity).
export function relativeError(got: Tensor, want: Tensor): number {
  if (got.dtype !== want.dtype || got.shape.join(',') !== want.shape.join(',')) return Infinity;
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
  const float = want.dtype === 'f32' || want.dtype === 'f64' || want.dtype === 'f16' || want.dtype === 'bf16';
  if (!float) return diff === 0 ? 0 : Infinity;
  return mag === 0 ? diff : diff / mag;
}
