// bench/serve-load.ts's gRPC load client (issue 12 item 7): ModelInfer calls over @grpc/grpc-js with
// raw_input_contents (the gRPC form of the binary tensor extension; outputs come back raw), 1-row requests round
// robin over the tenants, each with a unique id that the answer must carry. Closed loop: `concurrency` calls in
// flight, each sending its next when answered, spread over `channels` HTTP/2 connections. Open loop: call i is
// due at start + i / rate whatever happened to the others, latency from its due time. The same ledger as HTTP:
// OK is 2xx, RESOURCE_EXHAUSTED (loom's 429) is refused, UNAVAILABLE and DEADLINE_EXCEEDED are transport
// errors (no answer), any other code is `other`.
import * as grpc from '@grpc/grpc-js';
import { loadInferenceProto } from '../runtime/serve/grpc/service.js';
import { type ClientPhase, Ledger, type TenantShape, summarize } from './serve-load-ledger.js';

interface InferReply {
  id: string;
}
type Unary = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: InferReply) => void) => void;
type InferClient = grpc.Client & { ModelInfer: Unary };

export interface GrpcRequest {
  readonly model_name: string;
  readonly id: string;
  readonly inputs: ReadonlyArray<{ name: string; datatype: string; shape: number[] }>;
  readonly raw_input_contents: Buffer[];
}

// ModelInfer requests for 1-row inputs, round robin over `tenants` (the same values as the HTTP bodies).
export function grpcRequestMaker(tenants: readonly TenantShape[]): (id: string, seq: number) => GrpcRequest {
  const per = tenants.map((t, ti) => {
    const values = Array.from({ length: t.width }, (_, i) => Math.round(Math.sin(ti * 31 + i) * 1000) / 1000);
    const raw = Buffer.from(new Float32Array(values).buffer);
    const inputs = [{ name: t.input, datatype: 'FP32', shape: [1, t.width] }];
    return (id: string): GrpcRequest => ({ model_name: t.id, id, inputs, raw_input_contents: [raw] });
  });
  return (id, seq) => per[seq % per.length]!(id);
}

// host:port → `channels` clients, each on its own connection (no shared subchannel pool).
function connect(where: string, channels: number): InferClient[] {
  const Ctor = (loadInferenceProto().packageObject.inference as grpc.GrpcObject).GRPCInferenceService as grpc.ServiceClientConstructor;
  return Array.from(
    { length: channels },
    () =>
      new Ctor(where, grpc.credentials.createInsecure(), {
        'grpc.use_local_subchannel_pool': 1,
        'grpc.max_receive_message_length': 64 * 1024 * 1024,
      }) as unknown as InferClient,
  );
}

// One call, recorded in the ledger on its answer; resolves when recorded.
function callOnce(client: InferClient, ledger: Ledger, req: GrpcRequest, since: number, timeoutS: number): Promise<void> {
  ledger.send(req.id);
  return new Promise((resolve) => {
    client.ModelInfer(req, new grpc.Metadata(), { deadline: Date.now() + timeoutS * 1000 }, (e, r) => {
      const ms = performance.now() - since;
      if (!e) ledger.answer(req.id, 200, `{"id":"${r.id}"}`, ms);
      else if (e.code === grpc.status.RESOURCE_EXHAUSTED) ledger.answer(req.id, 429, '', ms);
      else if (e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED)
        ledger.answer(req.id, 0, '', ms, grpc.status[e.code] ?? String(e.code));
      else ledger.answer(req.id, 500, '', ms);
      resolve();
    });
  });
}

export interface GrpcLoopOptions {
  readonly seconds: number;
  readonly target: string;
  readonly idPrefix: string;
  readonly channels: number;
  readonly timeoutS?: number; // per call deadline (default 10)
}

// Closed loop: `concurrency` calls in flight until `seconds` pass; every call sent is awaited (lost is exact).
export async function grpcClosedLoop(
  where: string,
  make: (id: string, seq: number) => GrpcRequest,
  opts: GrpcLoopOptions & { readonly concurrency: number },
  sink?: { latenciesMs: number[] },
): Promise<ClientPhase> {
  const clients = connect(where, opts.channels);
  const ledger = new Ledger();
  let seq = 0;
  const start = performance.now();
  const end = start + opts.seconds * 1000;
  const lane = async (k: number) => {
    const c = clients[k % clients.length]!;
    while (performance.now() < end) {
      const n = seq++;
      const t0 = performance.now();
      await callOnce(c, ledger, make(`${opts.idPrefix}${n}`, n), t0, opts.timeoutS ?? 10);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, (_, k) => lane(k)));
  const seconds = (performance.now() - start) / 1000;
  for (const c of clients) c.close();
  if (sink) sink.latenciesMs = ledger.latenciesMs;
  return summarize({ target: opts.target, body: 'grpc', mode: 'closed', connections: opts.concurrency, rate: null }, ledger, seconds, 0, 0);
}

// Open loop: a fixed arrival rate; every call sent is awaited for at most drainS after the last is due.
export async function grpcOpenLoop(
  where: string,
  make: (id: string, seq: number) => GrpcRequest,
  opts: GrpcLoopOptions & { readonly rate: number; readonly drainS: number },
  sink?: { latenciesMs: number[] },
): Promise<ClientPhase> {
  const clients = connect(where, opts.channels);
  const ledger = new Ledger();
  const total = Math.max(1, Math.floor(opts.rate * opts.seconds));
  const inflight = new Set<Promise<void>>();
  const start = performance.now();
  const deadline = start + opts.seconds * 1000 + 1000;
  let i = 0;
  while (i < total && performance.now() < deadline) {
    const now = performance.now();
    while (i < total && start + (i * 1000) / opts.rate <= now) {
      const due = start + (i * 1000) / opts.rate;
      const p = callOnce(clients[i % clients.length]!, ledger, make(`${opts.idPrefix}${i}`, i), due, opts.timeoutS ?? 10);
      inflight.add(p);
      void p.then(() => inflight.delete(p));
      i++;
    }
    const next = start + (i * 1000) / opts.rate - performance.now();
    await new Promise((r) => setTimeout(r, Math.max(0, Math.min(next, 5))));
  }
  const sentFor = (performance.now() - start) / 1000;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all([...inflight]), new Promise((r) => (timer = setTimeout(r, opts.drainS * 1000)))]);
  clearTimeout(timer);
  for (const c of clients) c.close();
  if (sink) sink.latenciesMs = ledger.latenciesMs;
  return summarize(
    { target: opts.target, body: 'grpc', mode: 'open', connections: opts.channels, rate: opts.rate },
    ledger,
    Math.max(sentFor, opts.seconds),
    0,
    0,
  );
}
