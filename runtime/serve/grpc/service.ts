// `loom serve --grpc-port`: the Open Inference Protocol v2 gRPC service (inference.GRPCInferenceService,
// inference.proto beside this file) on @grpc/grpc-js. Thin like the HTTP routes: a ModelInferRequest is
// turned into the object an HTTP JSON request parses to (raw_input_contents as the binary tensor extension's
// bytes) and decoded by oip.ts, so both protocols meet the same checks with the same messages, then it goes
// through the same auth, admission and scheduler; errors become gRPC status codes carrying the HTTP message.
import { existsSync } from 'node:fs';
import { type AddressInfo, type Server as NetServer, createServer as createNetServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { isLoomError } from '../../../ir/errors.js';
import type { PlannedTenant } from '../../../ir/contract/plan.js';
import type { DType } from '../../../ir/dtype.js';
import { type Tensor, tensorBytes } from '../../../ir/tensor.js';
import { type AuthConfig, authorize } from '../auth.js';
import { ServeError, isServeError } from '../errors.js';
import type { ServeMetrics } from '../metrics.js';
import { MODEL_VERSION, type RequestedOutput, decodeInferObject, modelMetadata, oipDatatype } from '../oip.js';
import type { ServeScheduler } from '../shards.js';

// The HTTP status each refusal has (ServeError and the HTTP layer's own) → its gRPC status code.
export const GRPC_STATUS: Readonly<Record<number, grpc.status>> = {
  400: grpc.status.INVALID_ARGUMENT,
  401: grpc.status.UNAUTHENTICATED,
  403: grpc.status.PERMISSION_DENIED,
  404: grpc.status.NOT_FOUND,
  408: grpc.status.DEADLINE_EXCEEDED,
  413: grpc.status.RESOURCE_EXHAUSTED,
  429: grpc.status.RESOURCE_EXHAUSTED,
  499: grpc.status.CANCELLED,
  500: grpc.status.INTERNAL,
  503: grpc.status.UNAVAILABLE,
};

// the .proto sits beside this file in the source tree; the compiled file (dist/runtime/serve/grpc/) finds it there
function protoPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, 'inference.proto'), path.resolve(here, '../../../../runtime/serve/grpc/inference.proto')];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`inference.proto not found (looked in ${candidates.join(', ')})`);
  return found;
}

export const PROTO_LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

// The service definition (also what a client needs: grpc.makeGenericClientConstructor or loadInferenceProto).
export function loadInferenceProto(): { service: grpc.ServiceDefinition; packageObject: grpc.GrpcObject; protoFile: string } {
  const protoFile = protoPath();
  const def = protoLoader.loadSync(protoFile, PROTO_LOADER_OPTIONS);
  const packageObject = grpc.loadPackageDefinition(def);
  const ctor = (packageObject.inference as grpc.GrpcObject).GRPCInferenceService as grpc.ServiceClientConstructor;
  return { service: ctor.service, packageObject, protoFile };
}

type Param = { bool_param?: boolean; int64_param?: string; string_param?: string; parameter_choice?: string };
interface Contents {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: string[];
  uint_contents?: number[];
  uint64_contents?: string[];
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Buffer[];
}
interface InferInput {
  name: string;
  datatype: string;
  shape: string[];
  parameters?: Record<string, Param>;
  contents?: Contents | null;
}
interface InferRequest {
  model_name: string;
  model_version: string;
  id: string;
  inputs: InferInput[];
  outputs: { name: string; parameters?: Record<string, Param> }[];
  raw_input_contents: Buffer[];
}

// Which InferTensorContents field carries each datatype's values (FP16 and BF16: none, raw only).
const CONTENTS_FIELD: Readonly<Record<DType, keyof Contents | null>> = {
  f32: 'fp32_contents',
  f64: 'fp64_contents',
  f16: null,
  bf16: null,
  i64: 'int64_contents',
  i32: 'int_contents',
  i8: 'int_contents',
  u8: 'uint_contents',
  bool: 'bool_contents',
};
const FIELDS: readonly (keyof Contents)[] = [
  'bool_contents',
  'int_contents',
  'int64_contents',
  'uint_contents',
  'uint64_contents',
  'fp32_contents',
  'fp64_contents',
  'bytes_contents',
];

// A typed input's values as the JSON `data` the HTTP decoder takes: 64-bit integers (strings here) as
// numbers, non-finite floats as "NaN"/"Infinity"/"-Infinity".
function jsonData(values: readonly unknown[]): unknown[] {
  return values.map((v) => {
    if (typeof v === 'string') return Number(v);
    if (typeof v === 'number' && !Number.isFinite(v)) return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
    return v;
  });
}

// ModelInferRequest → the HTTP request object (+ binary bytes), with gRPC's own checks (which contents field,
// raw entries per input) where HTTP has no counterpart.
export function grpcToOip(tenant: PlannedTenant, req: InferRequest): { object: Record<string, unknown>; binary: Uint8Array | null } {
  const raw = req.raw_input_contents ?? [];
  const inputs = req.inputs ?? [];
  const useRaw = raw.length > 0;
  if (useRaw && raw.length !== inputs.length)
    throw new ServeError(
      400,
      `raw_input_contents has ${raw.length} entries but the request has ${inputs.length} inputs; give one per input, in order, or none`,
    );
  const byName = new Map(tenant.inputs.map((io) => [io.name, io]));
  const objInputs = inputs.map((inp, i) => {
    const at = `inputs[${i}] ('${inp.name}')`;
    const shape = (inp.shape ?? []).map(Number);
    const head = { name: inp.name, datatype: inp.datatype, shape };
    const given = FIELDS.filter((f) => (inp.contents?.[f]?.length ?? 0) > 0);
    if (useRaw) {
      if (given.length > 0)
        throw new ServeError(400, `${at}: the request has raw_input_contents, so its inputs carry no typed contents (got ${given.join(', ')})`);
      return { ...head, parameters: { binary_data_size: raw[i]!.length } };
    }
    // the typed field must be the datatype's, when the input is one the model has with that datatype
    // (other mismatches are the shared decoder's to report, in HTTP's words)
    const io = byName.get(inp.name);
    let field: keyof Contents | undefined = given[0];
    if (io !== undefined && oipDatatype(io.dtype) === inp.datatype) {
      const want = CONTENTS_FIELD[io.dtype];
      if (want === null) throw new ServeError(400, `${at}: ${inp.datatype} has no typed contents field; send its values in raw_input_contents`);
      const wrong = given.filter((f) => f !== want);
      if (wrong.length > 0) throw new ServeError(400, `${at}.contents: ${inp.datatype} values go in ${want}, got ${wrong.join(', ')}`);
      field = want;
    }
    return { ...head, data: field ? jsonData(inp.contents?.[field] ?? []) : [] };
  });
  const object: Record<string, unknown> = { inputs: objInputs };
  if (req.id) object.id = req.id;
  if ((req.outputs ?? []).length > 0) object.outputs = req.outputs.map((o) => ({ name: o.name }));
  return { object, binary: useRaw ? Buffer.concat(raw) : null };
}

function typedContents(t: Tensor): Contents {
  const d = t.data;
  switch (t.dtype) {
    case 'f32':
      return { fp32_contents: Array.from(d as Float32Array) };
    case 'f64':
      return { fp64_contents: Array.from(d as Float64Array) };
    case 'i64':
      return { int64_contents: Array.from(d as BigInt64Array, (x) => x.toString()) };
    case 'i32':
    case 'i8':
      return { int_contents: Array.from(d as Int32Array) };
    case 'u8':
      return { uint_contents: Array.from(d as Uint8Array) };
    case 'bool':
      return { bool_contents: Array.from(d as Uint8Array, (x) => x !== 0) };
    default:
      throw new Error(`no typed contents for ${t.dtype}`);
  }
}

// Raw contents when the request sent raw inputs, or when an asked-for output is FP16/BF16 (no typed field);
// typed contents otherwise. One response is all raw or all typed (raw_output_contents[i] is outputs[i]).
export function encodeGrpcResponse(model: string, id: string, outs: Readonly<Record<string, Tensor>>, wanted: readonly RequestedOutput[], rawInputs: boolean) {
  const raw = rawInputs || wanted.some(({ io }) => CONTENTS_FIELD[io.dtype] === null);
  const outputs = wanted.map(({ io }) => {
    const t = outs[io.name]!;
    return { name: io.name, datatype: oipDatatype(t.dtype), shape: [...t.shape], ...(raw ? {} : { contents: typedContents(t) }) };
  });
  const raw_output_contents = raw ? wanted.map(({ io }) => Buffer.from(tensorBytes(outs[io.name]!))) : [];
  return { model_name: model, model_version: MODEL_VERSION, id, outputs, raw_output_contents };
}

export interface GrpcServiceOptions {
  // the tick scheduler (or shard router), or (an intake worker) the tick thread seen from there
  readonly scheduler: Pick<ServeScheduler, 'tenant' | 'sloMs' | 'precheck' | 'submit'>;
  readonly metrics: ServeMetrics;
  readonly unknownModel: (name: string) => string; // the 404's message (names some of the models served now)
  readonly auth: () => AuthConfig | null; // read per call: a plan reload may re-read the auth file
  readonly version: string;
  readonly isReady: () => boolean | Promise<boolean>;
  // One model's readiness (its shard's health); absent: the server's.
  readonly isModelReady?: (tenant: string) => boolean | Promise<boolean>;
  readonly maxMessageBytes: number; // the HTTP body limit
  readonly tls: { readonly cert: string | Buffer; readonly key: string | Buffer } | null;
  readonly log: { info(o: object, msg: string): void; error(o: object, msg: string): void };
  readonly idPrefix?: string; // generated response ids are `${idPrefix}g<n>` (an intake worker's differ from the others')
}

export interface GrpcService {
  listen(port: number, host: string): Promise<string>; // resolves with host:port
  // As listen, on a port other listeners of this process share (SO_REUSEPORT: the intake workers, each with its
  // own gRPC server; the kernel spreads the connections): port 0 picks a free one for the first.
  listenShared(port: number, host: string): Promise<string>;
  // stop accepting calls and resolve once every accepted one was answered (forced after forceAfterMs)
  shutdown(forceAfterMs: number): Promise<void>;
}

// After the last accepted call's answer, how long shutdown waits for its frames to be written.
const ANSWER_FLUSH_MS = 50;

// The HTTP status of an error, as server.ts's error handler decides it.
function statusOf(err: unknown): number {
  if (isServeError(err)) return err.status;
  if (isLoomError(err)) return err.code === 'EVAL' || err.code === 'USAGE' ? 400 : 500;
  return 500;
}

export function createGrpcService(o: GrpcServiceOptions): GrpcService {
  const { scheduler, metrics: m } = o;
  const server = new grpc.Server({ 'grpc.max_receive_message_length': o.maxMessageBytes });
  let nextId = 0;
  // ModelInfer calls not yet answered, and who waits for them to reach zero (shutdown): grpc-js's tryShutdown
  // does not always wait for the streams of connections handed over by listenShared
  let inFlight = 0;
  let whenIdle: (() => void) | null = null;
  const settled = () => {
    if (--inFlight === 0 && whenIdle) whenIdle();
  };

  const fail = (cb: grpc.sendUnaryData<unknown>, status: number, message: string, retryAfterS: number | null = null): void => {
    const md = new grpc.Metadata();
    if (retryAfterS !== null) md.set('retry-after', String(retryAfterS));
    cb({ code: GRPC_STATUS[status] ?? grpc.status.INTERNAL, details: message, metadata: md });
  };
  const unknownModel = o.unknownModel;
  const lookup = (name: string, version: string): { tenant: PlannedTenant } | { error: string } => {
    if (version !== '' && version !== MODEL_VERSION) return { error: `model '${name}' has no version '${version}' (it has: ${MODEL_VERSION})` };
    const t = scheduler.tenant(name);
    return t ? { tenant: t } : { error: unknownModel(name) };
  };
  // the same check as HTTP's onRequest hook: a token allowed this model (none configured: open)
  const allowed = (call: grpc.ServerUnaryCall<unknown, unknown>, model: string): { status: 401 | 403; message: string } | null => {
    const auth = o.auth();
    if (!auth) return null;
    const header = call.metadata.get('authorization')[0];
    const d = authorize(auth, typeof header === 'string' ? header : undefined, { kind: 'tenant', tenant: model });
    if (d.ok) return null;
    m.onAuthFailure(d.status);
    o.log.info({ status: d.status, msg: d.message, protocol: 'grpc' }, 'request not authorized');
    return d;
  };

  type Call<Req> = grpc.ServerUnaryCall<Req, unknown>;
  const handlers: grpc.UntypedServiceImplementation = {
    ServerLive: (_call: Call<object>, cb: grpc.sendUnaryData<unknown>) => cb(null, { live: true }),
    ServerReady: (_call: Call<object>, cb: grpc.sendUnaryData<unknown>) => void Promise.resolve(o.isReady()).then((ready) => cb(null, { ready })),
    ServerMetadata: (_call: Call<object>, cb: grpc.sendUnaryData<unknown>) =>
      cb(null, { name: 'loom', version: o.version, extensions: ['binary_tensor_data'] }),
    ModelReady: (call: Call<{ name: string; version: string }>, cb: grpc.sendUnaryData<unknown>) => {
      const denied = allowed(call, call.request.name);
      if (denied) return fail(cb, denied.status, denied.message);
      const r = lookup(call.request.name, call.request.version);
      if ('error' in r) return fail(cb, 404, r.error);
      void Promise.resolve(o.isModelReady ? o.isModelReady(r.tenant.id) : o.isReady()).then((ready) => cb(null, { ready }));
    },
    ModelMetadata: (call: Call<{ name: string; version: string }>, cb: grpc.sendUnaryData<unknown>) => {
      const denied = allowed(call, call.request.name);
      if (denied) return fail(cb, denied.status, denied.message);
      const r = lookup(call.request.name, call.request.version);
      if ('error' in r) return fail(cb, 404, r.error);
      const meta = modelMetadata(r.tenant, scheduler.sloMs(r.tenant.id));
      const parameters: Record<string, Param> = { max_batch_size: { int64_param: String(meta.parameters.max_batch_size) } };
      const slo = meta.parameters.slo_ms;
      if (slo !== null) parameters.slo_ms = Number.isInteger(slo) ? { int64_param: String(slo) } : { string_param: String(slo) };
      cb(null, { ...meta, versions: [...meta.versions], parameters });
    },
    ModelInfer: (call: Call<InferRequest>, cb: grpc.sendUnaryData<unknown>) => {
      const started = performance.now();
      const req = call.request;
      const model = req.model_name;
      const gone = new AbortController();
      call.once('cancelled', () => gone.abort());
      const deadline = call.getDeadline();
      const deadlinePassed = () => (deadline instanceof Date ? deadline.getTime() <= Date.now() : Number.isFinite(deadline) && deadline <= Date.now());
      inFlight++;
      const answer = (status: number, message: string | null, body?: unknown, retryAfterS: number | null = null) => {
        settled();
        m.observeRequest(model, status, (performance.now() - started) / 1000);
        m.onGrpcRequest('ModelInfer', status);
        if (status === 200) cb(null, body);
        else if (!gone.signal.aborted) fail(cb, status, message!, retryAfterS);
      };
      const denied = allowed(call, model);
      if (denied) return answer(denied.status, denied.message);
      void (async () => {
        try {
          scheduler.precheck(model); // admission before decoding, as HTTP does before reading the body
          const r = lookup(model, req.model_version);
          if ('error' in r) throw new ServeError(404, r.error);
          const { object, binary } = grpcToOip(r.tenant, req);
          const decoded = decodeInferObject(r.tenant, object, binary);
          const outs = await scheduler.submit(r.tenant.id, decoded.inputs, { arrivedAt: started, signal: gone.signal });
          if (gone.signal.aborted)
            throw new ServeError(499, `the client of this request to model '${r.tenant.id}' went away while its tick ran; the answer was discarded`);
          answer(
            200,
            null,
            encodeGrpcResponse(r.tenant.id, decoded.id ?? `${o.idPrefix ?? ''}g${(++nextId).toString(36)}`, outs, decoded.outputs, binary !== null),
          );
        } catch (err) {
          let status = statusOf(err);
          if (status === 499 && deadlinePassed()) status = 408; // the deadline passed: gRPC has cancelled the call
          const message = err instanceof Error ? err.message : String(err);
          if (status === 500) o.log.error({ err, model, protocol: 'grpc' }, 'internal error');
          answer(status, message, undefined, isServeError(err) ? err.retryAfterS : null);
        }
      })();
    },
  };
  server.addService(loadInferenceProto().service, handlers);

  let closing: Promise<void> | null = null;
  let shared: NetServer | null = null; // listenShared's listener (grpc-js itself cannot share a port)
  const creds = () =>
    o.tls
      ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(o.tls.cert), private_key: Buffer.from(o.tls.key) }], false)
      : grpc.ServerCredentials.createInsecure();
  const bracket = (host: string) => (host.includes(':') && !host.startsWith('[') ? `[${host}]` : host);
  return {
    listen(port, host) {
      const h = bracket(host);
      return new Promise((resolve, reject) => {
        server.bindAsync(`${h}:${port}`, creds(), (err, bound) => (err ? reject(err) : resolve(`${h}:${bound}`)));
      });
    },
    listenShared(port, host) {
      // a plain TCP listener with SO_REUSEPORT hands each connection to this server (grpc-js's connection
      // injector: the same HTTP/2 and TLS handling as a bound port; shutdown also counts the calls in flight,
      // since tryShutdown alone did not wait for these connections' streams)
      const injector = server.createConnectionInjector(creds());
      const net = createNetServer((sock) => injector.injectConnection(sock));
      shared = net;
      return new Promise((resolve, reject) => {
        net.once('error', reject);
        net.listen({ port, host, reusePort: true }, () => {
          net.off('error', reject);
          resolve(`${bracket(host)}:${(net.address() as AddressInfo).port}`);
        });
      });
    },
    shutdown(forceAfterMs) {
      closing ??= new Promise<void>((resolve) => {
        shared?.close(); // no new connections; the open ones drain
        // both: grpc-js's tryShutdown, and every accepted call answered plus a moment for its response frames
        let waiting = 2;
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, forceAfterMs);
        force.unref();
        const done = () => {
          if (--waiting > 0) return;
          clearTimeout(force);
          resolve();
        };
        server.tryShutdown(() => done());
        whenIdle = () => {
          whenIdle = null;
          setTimeout(done, ANSWER_FLUSH_MS);
        };
        if (inFlight === 0) whenIdle();
      });
      return closing;
    },
  };
}
