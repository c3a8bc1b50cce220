// Work for clients that went away: over real loopback sockets that close before their answer, a request
// still queued is dropped uncomputed, one already in a tick has its answer discarded; both are counted in
// /metrics, and the server keeps serving.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LaunchPlan } from '../../codegen/index.js';
import { type LoadedPlan, type TickInputs, loadPlan } from '../../runtime/index.js';
import { type LoomServer, createServer } from '../../runtime/serve/index.js';
import { compileTestFleet, oipBody, requestInputs } from './fleet.js';

let loaded: LoadedPlan;
let plan: LaunchPlan;

beforeAll(async () => {
  loaded = await loadPlan(await compileTestFleet(), { backend: 'cpu' });
  plan = loaded.plan;
});
afterAll(() => loaded?.close());

// Polls until `cond` holds; fails the test (with `what`) after `ms` instead of hanging.
async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// An infer request written by hand on a raw socket, so the test decides when the client goes away.
function rawInfer(url: string, model: string, body: string): net.Socket {
  const { hostname, port } = new URL(url);
  const sock = net.connect(Number(port), hostname);
  sock.on('error', () => {});
  sock.write(
    `POST /v2/models/${model}/infer HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  return sock;
}

describe('clients that go away', () => {
  let server: LoomServer;
  let url = '';
  let open: () => void = () => {};
  let gate: Promise<void> = Promise.resolve();
  const ticks: TickInputs[] = [];

  beforeAll(async () => {
    gate = new Promise((r) => (open = r));
    let queue: Promise<unknown> = Promise.resolve();
    // the real plan behind a gate: ticks wait until the test opens it, one at a time in call order
    const runner = {
      plan,
      backend: 'cpu',
      runTick(inputs: TickInputs) {
        ticks.push(inputs);
        const run = () => gate.then(() => loaded.runTick(inputs));
        const tick = queue.then(run, run);
        queue = tick.catch(() => undefined);
        return tick;
      },
    };
    server = createServer({ runner, scheduler: { pipeline: true }, logger: false, metrics: { perTenant: true } });
    url = await server.listen(0, '127.0.0.1');
  });
  afterAll(async () => {
    open();
    await server?.shutdown();
  });

  it('a queued request is dropped uncomputed, an in-tick one answered into the void; counted; the server carries on', async () => {
    const s = server.scheduler;
    const a = fetch(`${url}/v2/models/mlp-a/infer`, { method: 'POST', body: oipBody(requestInputs(plan, 'mlp-a', 1, 1)) });
    await until(() => ticks.length === 1, 'the first tick');
    // with pipelining, the second tick (batched while the first waits at the gate) takes B; C then waits in the queue
    const b = rawInfer(url, 'mlp-a', oipBody(requestInputs(plan, 'mlp-a', 2, 2)));
    await until(() => ticks.length === 2, 'the second tick');
    expect(ticks[1]!['mlp-a']!.input!.shape).toEqual([2, 32]);
    const c = rawInfer(url, 'mlp-a', oipBody(requestInputs(plan, 'mlp-a', 3, 3)));
    await until(() => s.queueDepth('mlp-a').requests === 1, 'C in the queue');
    expect(s.queueDepth('mlp-a')).toEqual({ requests: 1, rows: 3 });

    c.destroy();
    await until(() => s.stats.cancelled === 1, 'C dropped');
    expect(s.queueDepth('mlp-a')).toEqual({ requests: 0, rows: 0 });
    b.destroy();
    let conns = -1;
    await until(() => {
      server.app.server.getConnections((_e, n) => (conns = n));
      return conns === 1; // A's
    }, "the server to see B's socket close");
    open();
    expect((await a).status).toBe(200);
    await until(() => s.stats.answered === 2, 'A and B computed');
    expect(ticks).toHaveLength(2); // C never reached a tick
    expect(s.stats).toEqual({ accepted: 3, answered: 2, failed: 0, cancelled: 1 });

    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).toMatch(/^loom_requests_cancelled_total\{tenant="mlp-a",stage="queued"\} 1$/m);
    expect(text).toMatch(/^loom_requests_cancelled_total\{tenant="mlp-a",stage="in_tick"\} 1$/m);

    const again = await fetch(`${url}/v2/models/mlp-a/infer`, { method: 'POST', body: oipBody(requestInputs(plan, 'mlp-a', 1, 4)) });
    expect(again.status).toBe(200);
    expect(ticks).toHaveLength(3);
  });
});
