// The tick thread's side of worker intake (`loom serve --intake-threads N`): starts N intake workers
// (worker.ts) on one port, hands their requests to the scheduler and posts the answers back, one message per
// worker per event-loop turn. Admission (429 with Retry-After, 503 when closing) is decided here, by the
// scheduler's submit. /metrics from any worker is this thread's registry plus every worker's request metrics,
// summed (prom-client's AggregatorRegistry, as for the cluster module). A plan reload (swap.ts) reaches the
// workers as a 'plan' message (setPlan); their repository routes (index, reload) are answered here.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Tensor } from '../../../ir/tensor.js';
import { isServeError } from '../errors.js';
import type { ServeMetrics } from '../metrics.js';
import type { CancelSignal } from '../scheduler.js';
import type { RepositoryBackend } from '../repository.js';
import type { ServeScheduler } from '../shards.js';
import {
  type AnswerItem,
  type IntakePlan,
  type IntakeWorkerData,
  type MainMessage,
  type MetricsJson,
  TensorArena,
  renderMetrics,
  type WorkerMessage,
  unpackTensors,
} from './protocol.js';

// What `--intake-threads` defaults to: every core but the tick thread's, at most 16 (the tick thread absorbs
// the requests of about that many; see BENCHMARKS.md), 0 (no workers) on a single core.
export function defaultIntakeThreads(cores = availableParallelism()): number {
  return Math.max(0, Math.min(16, cores - 1));
}

// null when this Node and OS can share a port between threads (listen's reusePort: Node >= 22.12 / 23.1, and
// an OS with SO_REUSEPORT load balancing); otherwise why not.
export function reusePortUnsupported(version = process.versions.node, platform: string = process.platform): string | null {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  if (!(major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12)))
    return `Node ${version} has no reusePort for listen (needs 22.12+ or 23.1+)`;
  if (!['linux', 'freebsd', 'dragonfly', 'sunos', 'aix'].includes(platform))
    return `${platform} does not spread one port's connections over several listeners (SO_REUSEPORT)`;
  return null;
}

export interface IntakePoolOptions {
  readonly threads: number;
  readonly scheduler: Pick<ServeScheduler, 'submit'>;
  readonly metrics: ServeMetrics; // this thread's registry: ticks, queues, gRPC, process
  readonly isReady: () => boolean;
  // what answers the workers' POST /v2/repository/index and /reload (absent: they answer 500 saying so)
  readonly repository?: RepositoryBackend;
  readonly worker: Omit<IntakeWorkerData, 'index' | 'port' | 'host'>;
  readonly writeLog: (line: string) => void;
  readonly logError: (o: object, msg: string) => void;
  readonly closeTimeoutMs: number; // a worker that has not closed by then is terminated
}

// Where a worker's answers go: a Worker, or (benchmarks) anything with its postMessage and terminate.
export interface WorkerPort {
  postMessage(m: MainMessage, transfer?: readonly ArrayBuffer[]): void;
  terminate(): Promise<unknown>;
}

// A request's cancellation as the scheduler reads it: one listener, no EventTarget (an AbortController per
// request was a measurable share of this thread's time, bench/serve-intake.ts).
class Cancel implements CancelSignal {
  aborted = false;
  private listener: (() => void) | null = null;
  addEventListener(_type: 'abort', listener: () => void): void {
    this.listener = listener;
  }
  removeEventListener(_type: 'abort', listener: () => void): void {
    if (this.listener === listener) this.listener = null;
  }
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const l = this.listener;
    this.listener = null;
    l?.();
  }
}

interface Slot {
  readonly index: number;
  readonly worker: WorkerPort;
  readonly inFlight: Map<number, Cancel>; // rid → its cancellation, until answered
  outbox: AnswerItem[]; // this turn's answers; their outputs are in `arena`
  readonly arena: TensorArena;
  flushing: boolean;
  closed: boolean; // it said it closed its listener, answered every request and is about to exit
  readonly done: Promise<void>; // closed, or exited
  readonly markDone: () => void;
  readonly planWaits: Map<number, () => void>; // 'plan' messages not yet applied (setPlan)
}

// The worker's entry: the compiled .js beside this file (with this process's Node flags, as workers get by
// default), or (tests and tsx, running the .ts sources) worker.ts through tsx's loader.
function workerEntry(): { url: URL; execArgv?: string[] } {
  if (import.meta.url.endsWith('.ts')) return { url: new URL('./worker.ts', import.meta.url), execArgv: ['--import', import.meta.resolve('tsx')] };
  return { url: new URL('./worker.js', import.meta.url) };
}

export class IntakePool {
  private readonly slots: Slot[] = [];
  private readonly collects = new Map<number, { want: number; got: MetricsJson[]; done: (parts: MetricsJson[]) => void }>();
  private nextCollect = 0;
  private closing: Promise<void> | null = null;
  private readonly grpcListens = new Map<Slot, (m: Extract<WorkerMessage, { type: 'grpc-listening' | 'grpc-failed' }>) => void>();
  private serving: IntakePlan | null = null; // the last setPlan's (a worker started after it serves that plan)
  private planSeq = 0;

  constructor(private readonly o: IntakePoolOptions) {
    if (!Number.isInteger(o.threads) || o.threads < 1) throw new RangeError(`intake threads must be a positive integer, got ${o.threads}`);
  }

  get threads(): number {
    return this.slots.length;
  }

  // Starts the workers; the first binds the port (0: any free one), the others share the one it got.
  async listen(port: number, host: string): Promise<string> {
    const url = await this.start(0, port, host);
    const bound = Number(new URL(url).port);
    await Promise.all(Array.from({ length: this.o.threads - 1 }, (_, i) => this.start(i + 1, bound, host)));
    return url;
  }

  private start(index: number, port: number, host: string): Promise<string> {
    const { url, execArgv } = workerEntry();
    const p = this.serving;
    const data: IntakeWorkerData = {
      ...this.o.worker,
      ...(p
        ? { plan: p.plan, backend: p.backend, checkFinite: p.checkFinite, sloMs: p.sloMs, removed: p.removed, http: { ...this.o.worker.http, auth: p.auth } }
        : {}),
      index,
      port,
      host,
    };
    const worker = new Worker(url, { workerData: data, ...(execArgv ? { execArgv } : {}), name: `loom-intake-${index}` });
    const slot = this.addSlot(index, worker);
    return new Promise<string>((resolve, reject) => {
      let listening = false;
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'listening') {
          listening = true;
          resolve(m.url);
        } else this.onMessage(slot, m);
      });
      worker.on('error', (e) => {
        if (!listening) reject(e);
        else this.o.logError({ worker: index, err: e }, 'intake worker failed; its connections are gone');
      });
      worker.on('exit', (code) => {
        slot.markDone();
        for (const ac of slot.inFlight.values()) ac.abort(); // nobody is left to answer: drop them from the queues
        slot.inFlight.clear();
        if (!listening) reject(new Error(`intake worker ${index} exited (code ${code}) before it listened`));
        else if (!slot.closed) this.o.logError({ worker: index, code }, 'intake worker exited unexpectedly; its connections are gone');
      });
    });
  }

  private addSlot(index: number, worker: WorkerPort): Slot {
    let markDone = (): void => {};
    const done = new Promise<void>((r) => (markDone = r));
    const planWaits = new Map<number, () => void>();
    const slot: Slot = {
      index,
      worker,
      inFlight: new Map(),
      outbox: [],
      arena: new TensorArena(),
      flushing: false,
      closed: false,
      done,
      markDone: () => {
        markDone();
        for (const w of planWaits.values()) w(); // nobody is left to apply it
        planWaits.clear();
      },
      planWaits,
    };
    this.slots.push(slot);
    return slot;
  }

  // A worker's messages, from a port that is not a Worker this pool started (bench/serve-intake.ts measures
  // this thread's cost per request so, without threads or sockets).
  attach(port: WorkerPort): (m: WorkerMessage) => void {
    const slot = this.addSlot(this.slots.length, port);
    return (m) => this.onMessage(slot, m);
  }

  private onMessage(slot: Slot, m: WorkerMessage): void {
    switch (m.type) {
      case 'submit': {
        const origin = performance.timeOrigin;
        for (const it of m.items) {
          const ac = new Cancel();
          slot.inFlight.set(it.rid, ac);
          let inputs: Record<string, Tensor>;
          try {
            inputs = unpackTensors(m.buffer, it.inputs);
          } catch (e) {
            this.answer(slot, it.rid, null, e);
            continue;
          }
          this.o.scheduler.submit(it.tenant, inputs, { arrivedAt: it.arrivedAt - origin, signal: ac }).then(
            (outs) => this.answer(slot, it.rid, outs, null),
            (e: unknown) => this.answer(slot, it.rid, null, e),
          );
        }
        return;
      }
      case 'cancel':
        slot.inFlight.get(m.rid)?.abort();
        return;
      case 'ask': {
        const what = m.what;
        if (what === 'ready') return this.post(slot, { type: 'reply', ask: m.ask, value: this.o.isReady() });
        // the asking worker adds them up and renders the text: that work stays off this thread
        if (what === 'metrics')
          return void this.metricsParts().then(
            (value) => this.post(slot, { type: 'reply', ask: m.ask, value }),
            (e: unknown) => this.post(slot, { type: 'reply', ask: m.ask, value: String(e) }),
          );
        const repo = this.o.repository;
        const failed = (e: unknown) => this.post(slot, { type: 'reply', ask: m.ask, value: undefined, error: e instanceof Error ? e.message : String(e) });
        if (!repo) return failed('this server has no plan repository (the intake pool was started without one)');
        // a reload's report comes after its drain; the 'plan' messages of its switch were posted before it
        Promise.resolve()
          .then((): unknown => (what === 'reload' ? repo.reload() : repo.index(what.index.readyOnly)))
          .then((value) => this.post(slot, { type: 'reply', ask: m.ask, value }), failed);
        return;
      }
      case 'plan-applied': {
        const w = slot.planWaits.get(m.seq);
        slot.planWaits.delete(m.seq);
        w?.();
        return;
      }
      case 'metrics-json': {
        const c = this.collects.get(m.collect);
        if (!c) return;
        c.got.push(m.metrics);
        if (c.got.length === c.want) c.done(c.got);
        return;
      }
      case 'log':
        this.o.writeLog(m.line);
        return;
      case 'closed':
        slot.closed = true;
        slot.markDone();
        return;
      case 'grpc-listening':
      case 'grpc-failed':
        this.grpcListens.get(slot)?.(m);
        return;
      case 'listening':
        return;
      default: {
        const never: never = m;
        throw new Error(`intake pool: unknown message ${JSON.stringify(never)}`);
      }
    }
  }

  private post(slot: Slot, m: MainMessage, transfer?: ArrayBuffer[]): void {
    if (!slot.closed) slot.worker.postMessage(m, transfer);
  }

  private answer(slot: Slot, rid: number, outs: Record<string, Tensor> | null, e: unknown): void {
    if (!slot.inFlight.delete(rid)) return; // its worker is gone
    if (outs !== null) slot.outbox.push({ rid, ok: true, outputs: slot.arena.add(outs) });
    else if (isServeError(e)) slot.outbox.push({ rid, ok: false, status: e.status, message: e.message, retryAfterS: e.retryAfterS });
    else slot.outbox.push({ rid, ok: false, status: 500, message: e instanceof Error ? e.message : String(e), retryAfterS: null });
    if (!slot.flushing) {
      slot.flushing = true;
      setImmediate(() => this.flush(slot));
    }
  }

  // The answers of this turn (one tick's, usually), one message.
  private flush(slot: Slot): void {
    slot.flushing = false;
    if (slot.outbox.length === 0) return;
    const items = slot.outbox;
    slot.outbox = [];
    const buffer = slot.arena.take();
    this.post(slot, { type: 'answers', buffer, items }, [buffer]);
  }

  // This thread's metrics and every worker's request metrics (a worker that does not answer within 2 s is left out).
  async metricsParts(): Promise<MetricsJson[]> {
    const own = await this.o.metrics.registry.getMetricsAsJSON();
    const live = this.slots.filter((s) => !s.closed);
    const n = ++this.nextCollect;
    const parts = await new Promise<MetricsJson[]>((resolve) => {
      if (live.length === 0) return resolve([]);
      const c = { want: live.length, got: [] as MetricsJson[], done: resolve };
      this.collects.set(n, c);
      for (const s of live) this.post(s, { type: 'collect-metrics', collect: n });
      setTimeout(() => resolve(c.got), 2000).unref();
    });
    this.collects.delete(n);
    return [own, ...parts];
  }

  // The whole server's metrics as Prometheus text.
  async metricsText(): Promise<{ contentType: string; text: string }> {
    return renderMetrics(await this.metricsParts());
  }

  // The gRPC service on every worker, sharing one port as the HTTP routes do (each worker's own gRPC server
  // takes the connections the kernel gives it): the first binds (port 0: any free one), the others join it.
  // Resolves with host:port.
  async listenGrpc(port: number, host: string): Promise<string> {
    const live = this.slots.filter((s) => !s.closed);
    if (live.length === 0) throw new Error('intake pool: no worker to serve gRPC (listen first)');
    const where = await this.grpcOn(live[0]!, port, host);
    const bound = Number(where.slice(where.lastIndexOf(':') + 1));
    await Promise.all(live.slice(1).map((s) => this.grpcOn(s, bound, host)));
    return where;
  }

  private grpcOn(slot: Slot, port: number, host: string): Promise<string> {
    return new Promise((resolve, reject) => {
      this.grpcListens.set(slot, (m) => {
        this.grpcListens.delete(slot);
        if (m.type === 'grpc-listening') resolve(m.where);
        else reject(new Error(m.message));
      });
      this.post(slot, { type: 'grpc-listen', port, host });
    });
  }

  // A plan reload switched plans: every worker serves the new plan's tenants (added ones answer, removed ones
  // 404), SLOs and auth. Resolves once every live worker applied it (at most timeoutMs).
  setPlan(p: IntakePlan, timeoutMs = 5000): Promise<void> {
    this.serving = p;
    const seq = ++this.planSeq;
    const applied = this.slots
      .filter((s) => !s.closed)
      .map((s) =>
        Promise.race([
          new Promise<void>((resolve) => {
            s.planWaits.set(seq, resolve);
            this.post(s, { type: 'plan', seq, plan: p });
          }),
          s.done, // a worker that exited (or closed) has nothing left to apply
        ]),
      );
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      t.unref();
      void Promise.all(applied).then(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  // Shutdown began: workers refuse new infer requests (503) and close connections after their answers.
  drain(): void {
    for (const s of this.slots) this.post(s, { type: 'drain' });
  }

  // After the scheduler has drained: the answers still waiting are sent, then each worker closes its listener
  // (idle keep-alive grace, in-flight requests answered) and exits.
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const s of this.slots) {
        this.flush(s);
        this.post(s, { type: 'close' });
      }
      await Promise.all(
        this.slots.map(async (s) => {
          const force = setTimeout(() => void s.worker.terminate(), this.o.closeTimeoutMs);
          force.unref();
          // a worker's pending requests may still be submitted while it closes: this thread keeps answering
          await s.done;
          clearTimeout(force);
          this.flush(s);
          await s.worker.terminate();
        }),
      );
    })();
    return this.closing;
  }
}
