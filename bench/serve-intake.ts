// Benchmark (not a test): the tick thread's cost per request under worker intake (issue 12 item 4), and a
// worker's. With `--intake-threads N` the tick thread only unpacks the workers' messages, submits to the
// scheduler, batches ticks, splits and copies the outputs and posts the answers; how many requests a second it
// can absorb bounds what any number of workers can reach. Measured here without threads or sockets: an
// IntakePool is fed the messages a worker would send (IntakePool.attach, one pre-packed buffer per message)
// over a plan whose runner does no work (outputs are views of one shared result buffer, as a real tick's are),
// so every microsecond counted is the tick thread's own. The worker side: JSON or binary decode + validation +
// response encoding for one request, no HTTP (the HTTP floor of bench/serve-load.ts adds fastify's cost).
//   npx tsx bench/serve-intake.ts [--tenants 64] [--sizes 256,512,256,10] [--batch 1,16,64,256] [--window 1024] [--seconds 3]
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { Tensor } from '../ir/tensor.js';
import { viewArray } from '../ir/dtype.js';
import { readPlanDir } from '../codegen/read.js';
import type { TickInputs, TickOutputs } from '../runtime/tick-io.js';
import type { MainMessage, SubmitItem } from '../runtime/serve/intake/protocol.js';
import { compileFleet } from '../src/fleet/compile.js';
import { alignTable, resultFile, runHeader, runIfMain, writeMlpFleet } from './common.js';

const ROOT = path.resolve(import.meta.dirname, '..');

// CPU µs of this thread (Node >= 23.9), else of the process: on a shared machine the wall clock also counts
// other programs' time; the CPU time is what the tick thread spent.
const cpuUs = (): number => {
  const u = (process as { threadCpuUsage?: () => NodeJS.CpuUsage }).threadCpuUsage?.() ?? process.cpuUsage();
  return u.user + u.system;
};

// The serving code as `loom serve` runs it: the compiled dist/ (tsx's transform of the sources wraps every
// closure in a naming helper, which adds a fifth to the tick thread's time here). Types from the sources.
async function compiled() {
  const at = path.join(ROOT, 'dist/runtime/serve');
  if (!existsSync(path.join(at, 'intake/pool.js'))) throw new Error('dist/ has no runtime/serve/intake: run `npm run build` first');
  const serve = (await import(pathToFileURL(path.join(at, 'index.js')).href)) as typeof import('../runtime/serve/index.js');
  const protocol = (await import(pathToFileURL(path.join(at, 'intake/protocol.js')).href)) as typeof import('../runtime/serve/intake/protocol.js');
  return { ...serve, packTensors: protocol.packTensors };
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      tenants: { type: 'string', default: '64' },
      sizes: { type: 'string', default: '256,512,256,10' },
      'max-batch': { type: 'string', default: '8' },
      batch: { type: 'string', default: '1,16,64,256' }, // requests per worker message
      window: { type: 'string', default: '1024' }, // requests in flight at once (over all tenants)
      seconds: { type: 'string', default: '3' },
      parts: { type: 'string', default: 'tick,worker' }, // tick: the tick thread's absorb rate; worker: a worker's cost
      out: { type: 'string', default: path.join(ROOT, 'bench/results') },
    },
  });
  const nTenants = Number(args.tenants);
  const sizes = args.sizes!.split(',').map(Number);
  const maxBatch = Number(args['max-batch']);
  const seconds = Number(args.seconds);
  const window = Number(args.window);
  const { IntakePool, ServeMetrics, TickScheduler, decodeInferRequest, encodeInferResponse, validateRequest, packTensors } = await compiled();
  const work = mkdtempSync(path.join(os.tmpdir(), 'loom-serve-intake-'));
  try {
    const manifest = writeMlpFleet(work, sizes, nTenants);
    const m = JSON.parse(readFileSync(manifest, 'utf8')) as { tenants: Array<Record<string, unknown>> };
    for (const t of m.tenants) Object.assign(t, { maxBatch });
    writeFileSync(manifest, JSON.stringify(m));
    process.stderr.write(`compiling ${nTenants} x MLP ${sizes.join('-')} (maxBatch ${maxBatch})...\n`);
    await compileFleet(manifest, path.join(work, 'plan'), { nvcc: 'off' });
    const plan = readPlanDir(path.join(work, 'plan')); // the plan only: its runner below does no work
    const tenants = plan.tenants;

    // the runner that does nothing: each tenant's outputs are views of one result buffer
    const outBytes = tenants.reduce((a, t) => a + t.outputs.reduce((b, io) => b + io.shape.reduce((x, y) => x * y, 1) * 4, 0), 0);
    const result = new ArrayBuffer(outBytes);
    let ticks = 0;
    const runner = {
      plan,
      backend: 'none',
      runTick: async (inputs: TickInputs): Promise<TickOutputs> => {
        ticks++;
        const out: TickOutputs = {};
        let at = 0;
        for (const t of tenants) {
          const rowsIn = inputs[t.id];
          for (const io of t.outputs) {
            const n = io.shape.reduce((x, y) => x * y, 1);
            if (rowsIn) {
              const rows = Object.values(rowsIn)[0]!.shape[0]!;
              const shape = io.shape.map((d, i) => (i === io.batchAxis ? rows : d));
              out[t.id] ??= {};
              out[t.id]![io.name] = {
                dtype: io.dtype,
                shape,
                data: viewArray(
                  io.dtype,
                  result,
                  at,
                  shape.reduce((x, y) => x * y, 1),
                ),
              };
            }
            at += n * 4;
          }
        }
        return out;
      },
    };

    // one request's inputs per tenant (1 row)
    const one: Record<string, Tensor>[] = tenants.map((t, ti) => {
      const io = t.inputs[0]!;
      const shape = io.shape.map((d, i) => (i === io.batchAxis ? 1 : d));
      const data = new Float32Array(shape.reduce((x, y) => x * y, 1)).map((_, i) => Math.sin(ti + i));
      return { [io.name]: { dtype: io.dtype, shape, data } };
    });

    const rows: string[][] = [];
    const absorb: Array<Record<string, number>> = [];
    const parts = args.parts!.split(',');
    for (const batch of parts.includes('tick') ? args.batch!.split(',').map(Number) : []) {
      const scheduler = new TickScheduler(runner, { queueTicks: 4 });
      const metrics = new ServeMetrics({ plan, backend: 'none', queueDepth: (t) => scheduler.queueDepth(t) });
      const pool = new IntakePool({
        threads: 1,
        scheduler,
        metrics,
        isReady: () => true,
        worker: { plan, backend: 'none', checkFinite: false, metrics: {}, sloMs: {}, http: {} as never },
        writeLog: () => {},
        logError: () => {},
        closeTimeoutMs: 1000,
      });
      // pre-packed messages: `batch` requests round robin over the tenants, starting at each tenant in turn
      const packed = tenants.map((_, start) => {
        const groups = Array.from({ length: batch }, (_, i) => (start + i) % tenants.length);
        const { buffer, metas } = packTensors(groups.map((g) => one[g]!));
        return { buffer, groups, metas };
      });
      let rid = 0;
      let answered = 0;
      let failed = 0;
      let outstanding = 0;
      let next = 0;
      let stopAt = 0;
      let done: () => void = () => {};
      const finished = new Promise<void>((r) => (done = r));
      const refill = (): void => {
        while (outstanding + batch <= window && performance.now() < stopAt) {
          const p = packed[next++ % packed.length]!;
          const items: SubmitItem[] = p.groups.map((g, i) => ({
            rid: ++rid,
            tenant: tenants[g]!.id,
            arrivedAt: performance.timeOrigin + performance.now(),
            inputs: p.metas[i]!,
          }));
          outstanding += batch;
          receive({ type: 'submit', buffer: p.buffer, items });
        }
        if (outstanding === 0) done();
      };
      const receive = pool.attach({
        postMessage: (msg: MainMessage) => {
          if (msg.type !== 'answers') return;
          for (const a of msg.items) a.ok ? answered++ : failed++, outstanding--;
          queueMicrotask(refill);
        },
        terminate: async () => 0,
      });
      ticks = 0;
      const c0 = cpuUs();
      const t0 = performance.now();
      stopAt = t0 + seconds * 1000;
      refill();
      await finished;
      const wall = (performance.now() - t0) / 1000;
      const cpu = (cpuUs() - c0) / 1e6;
      await scheduler.close();
      if (failed > 0) throw new Error(`${failed} requests failed (batch ${batch}): the harness is wrong`);
      // absorbed: requests per second of this thread's CPU time (the rate it sustains with a core to itself)
      const absorbed = answered / cpu;
      absorb.push({
        batch,
        answered,
        wallReqPerS: Math.round(answered / wall),
        cpuUsPerReq: Number(((cpu * 1e6) / answered).toFixed(2)),
        absorbedReqPerS: Math.round(absorbed),
        requestsPerTick: Number((answered / ticks).toFixed(1)),
      });
      rows.push([
        String(batch),
        String(Math.round(answered / wall)),
        ((cpu * 1e6) / answered).toFixed(2),
        String(Math.round(absorbed)),
        (answered / ticks).toFixed(1),
      ]);
    }

    // the worker's own cost per request (no HTTP): decode + validate + encode
    const workerSide: Record<string, number> = {};
    for (const kind of parts.includes('worker') ? (['json', 'binary'] as const) : []) {
      const t = tenants[0]!;
      const x = one[0]!;
      const io = t.inputs[0]!;
      const data = x[io.name]!.data as Float32Array;
      let body: Buffer;
      let headerLength: string | undefined;
      if (kind === 'json')
        body = Buffer.from(JSON.stringify({ id: 'a1', inputs: [{ name: io.name, shape: [1, data.length], datatype: 'FP32', data: Array.from(data) }] }));
      else {
        const head = Buffer.from(
          JSON.stringify({
            id: 'a1',
            inputs: [{ name: io.name, shape: [1, data.length], datatype: 'FP32', parameters: { binary_data_size: data.byteLength } }],
            parameters: { binary_data_output: true },
          }),
        );
        headerLength = String(head.length);
        body = Buffer.concat([head, Buffer.from(data.buffer)]);
      }
      const outs = (await runner.runTick({ [t.id]: x }))[t.id]!;
      let n = 0;
      const c0 = cpuUs();
      const t0 = performance.now();
      while (performance.now() - t0 < seconds * 1000) {
        for (let i = 0; i < 200; i++) {
          const d = decodeInferRequest(t, body, headerLength);
          validateRequest(t, d.inputs);
          const enc = encodeInferResponse(t.id, 'a1', outs, d.outputs);
          if (enc.binary.length === 0) JSON.stringify(enc.json);
          else Buffer.concat([Buffer.from(JSON.stringify(enc.json)), ...enc.binary]);
        }
        n += 200;
      }
      workerSide[kind] = Number(((cpuUs() - c0) / n).toFixed(2));
    }

    const device = os.cpus()[0]?.model ?? 'cpu';
    process.stdout.write(
      `\ntick thread under worker intake, no-op runner: ${nTenants} x MLP ${sizes.join('-')}, maxBatch ${maxBatch}, window ${window}, ${seconds} s, ${device}, Node ${process.version}\n`,
    );
    process.stdout.write(
      `${alignTable(['requests per message', 'req/s (wall)', 'CPU µs per request', 'req/s per CPU second', 'requests per tick'], rows, 1).join('\n')}\n`,
    );
    if (parts.includes('worker'))
      process.stdout.write(
        `worker side, CPU per request without HTTP (decode + validate + encode): JSON ${workerSide.json} µs, binary ${workerSide.binary} µs\n`,
      );
    const json = {
      ...runHeader('serve-intake', device),
      fleet: { tenants: nTenants, sizes, maxBatch },
      window,
      seconds,
      absorb,
      workerSideUs: workerSide,
    };
    mkdirSync(args.out!, { recursive: true });
    const file = resultFile(args.out!, device, 'serve-intake', 'json');
    writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
    process.stdout.write(`wrote ${path.relative(ROOT, file)}\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, main);
