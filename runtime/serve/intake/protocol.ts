// The messages between the tick thread and its intake workers (worker_threads), and how tensors cross: the
// tensors of one batch of messages are copied into one ArrayBuffer that is transferred, not cloned, and read
// back as views (no second copy). Offsets are 8-byte aligned so every dtype's view is legal.
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { MetricsOptions } from '../metrics.js';
import type { LaunchPlan } from '../../../codegen/index.js';
import { type DType, byteSize, viewArray } from '../../../ir/dtype.js';
import { type Tensor, tensorBytes } from '../../../ir/tensor.js';
import type { AuthConfig } from '../auth.js';
import type { RemovedModel, ServeStatus } from '../errors.js';
import type { HttpAppOptions } from '../http-app.js';

export interface TensorMeta {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly offset: number; // bytes into the message's buffer
}

// One request handed to the tick thread: decoded and validated by the worker.
export interface SubmitItem {
  readonly rid: number; // the worker's request number (unique per worker)
  readonly tenant: string;
  readonly arrivedAt: number; // epoch ms (performance.timeOrigin + now): thread clocks have different origins
  readonly inputs: readonly TensorMeta[];
}

export type AnswerItem =
  | { readonly rid: number; readonly ok: true; readonly outputs: readonly TensorMeta[] }
  | { readonly rid: number; readonly ok: false; readonly status: ServeStatus; readonly message: string; readonly retryAfterS: number | null };

export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

// worker → tick thread
export type WorkerMessage =
  | { readonly type: 'listening'; readonly url: string }
  | { readonly type: 'submit'; readonly buffer: ArrayBuffer; readonly items: readonly SubmitItem[] }
  | { readonly type: 'cancel'; readonly rid: number } // the client went away
  | { readonly type: 'ask'; readonly ask: number; readonly what: AskWhat }
  | { readonly type: 'plan-applied'; readonly seq: number } // its tables now hold the plan of 'plan' message `seq`
  | { readonly type: 'metrics-json'; readonly collect: number; readonly metrics: MetricsJson }
  | { readonly type: 'log'; readonly line: string }
  | { readonly type: 'grpc-listening'; readonly where: string }
  | { readonly type: 'grpc-failed'; readonly message: string }
  | { readonly type: 'closed' };

// tick thread → worker
export type MainMessage =
  | { readonly type: 'answers'; readonly buffer: ArrayBuffer; readonly items: readonly AnswerItem[] }
  // error: the ask failed (value undefined)
  | { readonly type: 'reply'; readonly ask: number; readonly value: unknown; readonly error?: string }
  | { readonly type: 'collect-metrics'; readonly collect: number }
  | { readonly type: 'grpc-listen'; readonly port: number; readonly host: string } // serve gRPC on this shared port
  // a plan reload switched plans (swap.ts): serve the new plan's tenants from now on, then say 'plan-applied'
  | { readonly type: 'plan'; readonly seq: number; readonly plan: IntakePlan }
  | { readonly type: 'drain' } // shutdown began: refuse new infer requests (503), responses close their connection
  | { readonly type: 'close' }; // every accepted request was answered: close the listener and exit

// What a worker asks the tick thread: readiness, the metrics' parts, and the repository routes (repository.ts):
// the index (readyOnly: {"ready": true}) and a plan reload, whose report is the answer.
export type AskWhat = 'ready' | 'metrics' | { readonly index: { readonly readyOnly: boolean } } | 'reload';

// The plan a worker serves after a reload: its tenants (and the plan for its metrics' labels), their SLOs, the
// finite check, the auth config now (re-read by the reload, or the same) and the models reloads removed (404s).
export interface IntakePlan {
  readonly plan: LaunchPlan;
  readonly backend: string;
  readonly checkFinite: boolean;
  readonly sloMs: Readonly<Record<string, number | null>>;
  readonly auth: AuthConfig | null;
  readonly removed: ReadonlyArray<readonly [string, RemovedModel]>;
}

// What a worker needs to serve: the plan's tenants (and the plan for its metrics' labels), the HTTP options.
export interface IntakeWorkerData {
  readonly index: number;
  readonly plan: LaunchPlan;
  readonly backend: string;
  readonly checkFinite: boolean; // --check-finite (tenants' own checkFinite adds to it)
  readonly metrics: MetricsOptions; // the tick thread's (per-tenant labels or not): the series must match to add up
  readonly sloMs: Readonly<Record<string, number | null>>;
  readonly removed?: ReadonlyArray<readonly [string, RemovedModel]>; // models earlier reloads removed (404s say so)
  readonly http: Omit<HttpAppOptions, 'logger'> & { readonly logLevel: string | null }; // null: no logs
  readonly port: number;
  readonly host: string;
}

// The metrics a worker's HTTP layer records (http-app.ts's RequestMetrics); the tick thread adds them to its own
// registry's at every scrape. Everything else (ticks, queues, process) is the tick thread's alone.
export const INTAKE_METRICS: ReadonlySet<string> = new Set([
  'loom_requests_total',
  'loom_request_duration_seconds',
  'loom_auth_failures_total',
  'loom_client_errors_total',
  'loom_connections_refused_total',
  'loom_grpc_requests_total',
]);

// The registries' metrics summed series by series (prom-client's cluster aggregation), as Prometheus text.
export async function renderMetrics(parts: readonly MetricsJson[]): Promise<{ contentType: string; text: string }> {
  const reg = AggregatorRegistry.aggregate(parts as Parameters<typeof AggregatorRegistry.aggregate>[0]);
  return { contentType: reg.contentType, text: await reg.metrics() };
}

const align8 = (n: number) => (n + 7) & ~7;

// Copies every group's tensors into one buffer; metas[i] describes group i.
export function packTensors(groups: ReadonlyArray<Readonly<Record<string, Tensor>>>): { buffer: ArrayBuffer; metas: TensorMeta[][] } {
  let size = 0;
  for (const g of groups) for (const k in g) size = align8(size + g[k]!.data.byteLength);
  const buffer = new ArrayBuffer(size);
  const bytes = new Uint8Array(buffer);
  let at = 0;
  const metas = groups.map((g) => {
    const out: TensorMeta[] = [];
    for (const name in g) {
      const t = g[name]!;
      bytes.set(tensorBytes(t), at);
      out.push({ name, dtype: t.dtype, shape: t.shape, offset: at });
      at = align8(at + t.data.byteLength);
    }
    return out;
  });
  return { buffer, metas };
}

// Views into `buffer` (no copy); the buffer stays alive as long as any view does.
export function unpackTensors(buffer: ArrayBuffer, metas: readonly TensorMeta[]): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const m of metas) {
    let n = 1;
    for (const d of m.shape) n *= d;
    if (m.offset + n * byteSize(m.dtype) > buffer.byteLength) throw new RangeError(`tensor '${m.name}' runs past its message's buffer`);
    out[m.name] = { dtype: m.dtype, shape: m.shape, data: viewArray(m.dtype, buffer, m.offset, n) };
  }
  return out;
}

// Tensors copied in as they come and sent as one buffer: a tick's outputs share its result buffer, so they are
// copied out while the answer is being made, not later when the message goes.
export class TensorArena {
  private bytes: Uint8Array;
  private used = 0;

  constructor(private readonly initialBytes = 64 * 1024) {
    this.bytes = new Uint8Array(initialBytes);
  }

  add(group: Readonly<Record<string, Tensor>>): TensorMeta[] {
    const out: TensorMeta[] = [];
    for (const name in group) {
      const t = group[name]!;
      const n = t.data.byteLength;
      if (this.used + n > this.bytes.length) {
        const grown = new Uint8Array(Math.max(2 * this.bytes.length, align8(this.used + n)));
        grown.set(this.bytes.subarray(0, this.used));
        this.bytes = grown;
      }
      this.bytes.set(tensorBytes(t), this.used);
      out.push({ name, dtype: t.dtype, shape: t.shape, offset: this.used });
      this.used = align8(this.used + n);
    }
    return out;
  }

  // Everything added since the last take (to be transferred); the arena starts afresh, sized for as much again.
  take(): ArrayBuffer {
    if (this.used === 0) return new ArrayBuffer(0);
    const b = this.bytes.buffer as ArrayBuffer;
    this.bytes = new Uint8Array(Math.max(this.initialBytes, align8(this.used + (this.used >> 1))));
    this.used = 0;
    return b;
  }
}
