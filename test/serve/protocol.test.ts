// OIP v2 conformance of `loom serve`'s HTTP layer on a real server (loopback, ephemeral port, Node fetch):
// every endpoint, the error cases, the binary tensor extension, metrics; and the mixed fleet's answers
// through HTTP equal a direct runTick of the same inputs, bit for bit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LaunchPlan } from '../../codegen/index.js';
import { type Tensor, fromNumbers } from '../../ir/tensor.js';
import { type LoadedPlan, loadPlan } from '../../runtime/index.js';
import { type LoomServer, createServer } from '../../runtime/serve/index.js';
import { FLEET, type OipOutput, compileTestFleet, expectedOutputs, oipBody, requestInputs, sameValues } from './fleet.js';

let planDir: string;
let reference: LoadedPlan; // a second copy of the plan: the direct-runTick oracle
let server: LoomServer;
let url: string;
let plan: LaunchPlan;

beforeAll(async () => {
  planDir = await compileTestFleet({ 'mlp-a': 5000 });
  reference = await loadPlan(planDir, { backend: 'cpu' });
  plan = reference.plan;
  server = createServer({ runner: await loadPlan(planDir, { backend: 'cpu' }), bodyLimit: 64 * 1024, logger: false, metrics: { perTenant: true } });
  url = await server.listen(0, '127.0.0.1');
});

afterAll(async () => {
  await server?.shutdown();
  reference?.close();
});

async function get(p: string) {
  const r = await fetch(url + p);
  return { status: r.status, body: (await r.json()) as Record<string, unknown>, headers: r.headers };
}

async function infer(model: string, body: string | Uint8Array, headers: Record<string, string> = {}) {
  const r = await fetch(`${url}/v2/models/${model}/infer`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  return { status: r.status, body: (await r.json()) as { error?: string; id?: string; model_name?: string; outputs?: OipOutput[] }, headers: r.headers };
}

async function expectError(p: Promise<{ status: number; body: { error?: string } }>, status: number, ...mentions: string[]) {
  const r = await p;
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  expect(typeof r.body.error).toBe('string');
  for (const m of mentions) expect(r.body.error).toContain(m);
}

describe('OIP v2 endpoints', () => {
  it('health, server metadata, model metadata and readiness', async () => {
    expect(await get('/v2/health/live')).toMatchObject({ status: 200, body: { live: true } });
    expect(await get('/v2/health/ready')).toMatchObject({ status: 200, body: { ready: true } });
    const meta = await get('/v2');
    expect(meta.status).toBe(200);
    expect(meta.body).toMatchObject({ name: 'loom', extensions: ['binary_tensor_data'] });
    expect(typeof meta.body.version).toBe('string');

    const mlp = await get('/v2/models/mlp-a');
    expect(mlp.body).toMatchObject({
      name: 'mlp-a',
      versions: ['1'],
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 32] }],
      outputs: [{ name: 'output', datatype: 'FP32', shape: [-1, 5] }],
      parameters: { max_batch_size: 4, slo_ms: 5000 },
    });
    // the LSTM's batch axis is 1 ([seq, batch, features]); the encoder takes INT64 ids
    expect((await get('/v2/models/lstm-a')).body.inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: [3, -1, 6] }]);
    const enc = await get('/v2/models/enc-a/versions/1');
    expect(enc.body.inputs).toEqual([
      { name: 'input_ids', datatype: 'INT64', shape: [-1, 8] },
      { name: 'attention_mask', datatype: 'INT64', shape: [-1, 8] },
    ]);
    expect(enc.body.outputs).toEqual([
      { name: 'last_hidden_state', datatype: 'FP32', shape: [-1, 8, 32] },
      { name: 'pooler_output', datatype: 'FP32', shape: [-1, 32] },
    ]);
    for (const t of FLEET) expect(await get(`/v2/models/${t.id}/ready`)).toMatchObject({ status: 200, body: { name: t.id, ready: true } });
    expect((await get('/v2/models/mlp-b/versions/1/ready')).status).toBe(200);
  });

  it('unknown models, versions and routes are 404 with {"error"}', async () => {
    await expectError(get('/v2/models/nobody'), 404, "'nobody'", 'mlp-a');
    await expectError(get('/v2/models/nobody/ready'), 404, "'nobody'");
    await expectError(get('/v2/models/mlp-a/versions/7'), 404, "version '7'");
    await expectError(infer('nobody', oipBody(requestInputs(plan, 'mlp-a', 1, 1))), 404, "unknown model 'nobody'");
    await expectError(get('/v3/whatever'), 404, '/v3/whatever');
  });

  it('infer answers with the model name, the request id, and only the asked outputs', async () => {
    const x = requestInputs(plan, 'enc-a', 2, 5);
    const r = await infer('enc-a', oipBody(x, { id: 'req-42', outputs: [{ name: 'pooler_output' }] }), { 'x-request-id': 'trace-1' });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-request-id')).toBe('trace-1');
    expect(r.body.model_name).toBe('enc-a');
    expect(r.body.id).toBe('req-42');
    expect(r.body.outputs!.map((o) => o.name)).toEqual(['pooler_output']);
    const want = await expectedOutputs(reference, 'enc-a', x);
    expect(r.body.outputs![0]!.datatype).toBe('FP32');
    expect(sameValues(r.body.outputs![0]!, want.pooler_output!)).toBe(true);
    // without an id the server's request id is echoed; nested data is accepted as row-major
    const m = requestInputs(plan, 'mlp-c', 2, 6);
    const flat = Array.from(m.input!.data as Float32Array);
    const nested = [flat.slice(0, 16), flat.slice(16)];
    const r2 = await infer('mlp-c', JSON.stringify({ inputs: [{ name: 'input', shape: [2, 16], datatype: 'FP32', data: nested }] }));
    expect(r2.status).toBe(200);
    expect(r2.body.id).toBe(r2.headers.get('x-request-id'));
    expect(sameValues(r2.body.outputs![0]!, (await expectedOutputs(reference, 'mlp-c', m)).output!)).toBe(true);
  });

  it('bad requests are 400 naming the field; a body over the limit is 413', async () => {
    const good = requestInputs(plan, 'mlp-a', 1, 2);
    const input = (over: Record<string, unknown>) =>
      JSON.stringify({ inputs: [{ name: 'input', shape: [1, 32], datatype: 'FP32', data: Array.from(good.input!.data as Float32Array), ...over }] });
    await expectError(infer('mlp-a', '{"inputs": [ {"name": '), 400, 'malformed JSON');
    await expectError(infer('mlp-a', '[1,2]'), 400, 'JSON object');
    await expectError(infer('mlp-a', '{}'), 400, "'inputs'");
    await expectError(infer('mlp-a', ''), 400, 'no body');
    await expectError(infer('mlp-a', input({ datatype: 'FP64' })), 400, "inputs[0] ('input').datatype", 'FP64', 'FP32[-1,32]');
    await expectError(infer('mlp-a', input({ datatype: 'FLOAT' })), 400, 'inputs[0]', "'FLOAT'".replace(/'/g, '"'), 'not an OIP datatype');
    await expectError(infer('mlp-a', input({ shape: [1, 31] })), 400, "inputs[0] ('input').shape", '[1,31]', '1..4 rows');
    await expectError(infer('mlp-a', input({ shape: [5, 32] })), 400, '[5,32]', '1..4 rows');
    await expectError(infer('mlp-a', input({ shape: [2, 32] })), 400, "inputs[0] ('input').data", '32 values', '64');
    await expectError(infer('mlp-a', input({ data: [...new Array(31).fill(0), 'x'] })), 400, "inputs[0] ('input').data[31]", '"x"', 'number');
    await expectError(infer('mlp-a', input({ name: 'inptu' })), 400, "no input 'inptu'", 'input FP32[-1,32]');
    await expectError(
      infer('mlp-a', JSON.stringify({ inputs: [JSON.parse(input({}).slice(11, -2))], outputs: [{ name: 'nope' }] })),
      400,
      'outputs[0].name',
      "'nope'",
    );
    const ids = requestInputs(plan, 'enc-a', 1, 3);
    const encBody = JSON.parse(oipBody(ids)) as { inputs: Array<{ data: number[] }> };
    encBody.inputs[0]!.data[3] = 1.5;
    await expectError(infer('enc-a', JSON.stringify(encBody)), 400, "inputs[0] ('input_ids').data[3]", 'integer', 'INT64');
    await expectError(infer('enc-a', JSON.stringify({ inputs: [JSON.parse(oipBody(ids)).inputs[0]] })), 400, "model 'enc-a' is missing input 'attention_mask'");
    await expectError(infer('mlp-a', 'x'.repeat(100 * 1024)), 413, 'limit');
    // the server still answers afterwards
    expect((await infer('mlp-a', oipBody(good))).status).toBe(200);
  });

  it('binary tensor extension: binary inputs in, binary outputs out', async () => {
    const x = requestInputs(plan, 'mlp-b', 3, 9);
    const bytes = new Uint8Array((x.input!.data as Float32Array).buffer.slice(0));
    const head = Buffer.from(
      JSON.stringify({
        inputs: [{ name: 'input', shape: [3, 32], datatype: 'FP32', parameters: { binary_data_size: bytes.length } }],
        outputs: [{ name: 'output', parameters: { binary_data: true } }],
      }),
    );
    const r = await fetch(`${url}/v2/models/mlp-b/infer`, {
      method: 'POST',
      body: Buffer.concat([head, bytes]),
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.length) },
    });
    expect(r.status).toBe(200);
    const n = Number(r.headers.get('inference-header-content-length'));
    const body = new Uint8Array(await r.arrayBuffer());
    const json = JSON.parse(Buffer.from(body.subarray(0, n)).toString()) as {
      outputs: Array<{ name: string; shape: number[]; parameters: { binary_data_size: number } }>;
    };
    expect(json.outputs[0]).toMatchObject({ name: 'output', shape: [3, 5], parameters: { binary_data_size: 60 } });
    const got = new Float32Array(body.slice(n).buffer);
    const want = (await expectedOutputs(reference, 'mlp-b', x)).output!;
    expect(Array.from(got)).toEqual(Array.from(want.data as Float32Array));
    // a size that does not match the shape names the field
    const bad = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [3, 32], datatype: 'FP32', parameters: { binary_data_size: 10 } }] }));
    await expectError(
      infer('mlp-b', Buffer.concat([bad, bytes.subarray(0, 10)]), { 'inference-header-content-length': String(bad.length) }),
      400,
      'binary_data_size',
      '384',
    );
  });

  it('results through HTTP equal a direct runTick for every tenant of the mixed fleet', async () => {
    const cases = FLEET.flatMap((t, i) => [1, t.maxBatch].map((rows) => ({ id: t.id, inputs: requestInputs(plan, t.id, rows, 100 + i * 10 + rows) })));
    const answers = await Promise.all(cases.map((c) => infer(c.id, oipBody(c.inputs)))); // concurrently: shared ticks
    for (const [k, c] of cases.entries()) {
      const r = answers[k]!;
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const want = await expectedOutputs(reference, c.id, c.inputs);
      expect(r.body.outputs!.map((o) => o.name)).toEqual(Object.keys(want));
      for (const o of r.body.outputs!) expect(sameValues(o, want[o.name] as Tensor), `${c.id}/${o.name}`).toBe(true);
    }
    // and the answers differ between tenants of one shape: a tenant mix-up would show
    const x = requestInputs(plan, 'mlp-a', 1, 77);
    const [a, b] = await Promise.all([infer('mlp-a', oipBody(x)), infer('mlp-b', oipBody(x))]);
    expect(a.body.outputs![0]!.data).not.toEqual(b.body.outputs![0]!.data);
  });

  it('/metrics is Prometheus text with the per-tenant and per-tick series', async () => {
    const r = await fetch(`${url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('text/plain');
    const text = await r.text();
    for (const s of [
      'loom_requests_total{tenant="mlp-a",code="200"}',
      'loom_requests_total{tenant="mlp-a",code="400"}',
      'loom_requests_total{tenant="_unknown",code="404"}',
      'loom_request_duration_seconds_bucket{le="0.1",tenant="enc-a"}',
      'loom_queue_depth{tenant="lstm-a"} 0',
      'loom_tick_duration_seconds_count',
      'loom_tick_occupancy_ratio_bucket',
      'loom_tick_launches_total',
      'loom_tick_max_tenant_rows_bucket{le="1"}',
      `loom_plan_arena_bytes{backend="cpu",arena="weights"} ${plan.arenas.weights}`,
      'process_resident_memory_bytes',
    ])
      expect(text).toContain(s);
    const ticks = Number(/loom_ticks_total\{result="ok"\} (\d+)/.exec(text)?.[1]);
    const launches = Number(/loom_tick_launches_total (\d+)/.exec(text)?.[1]);
    expect(ticks).toBeGreaterThan(0);
    expect(launches).toBe(ticks * plan.launches.length);
  });

  it('a bad float is refused when the server checks finiteness', async () => {
    const strict = createServer({ runner: await loadPlan(planDir, { backend: 'cpu' }), scheduler: { checkFinite: true }, logger: false });
    const u = await strict.listen(0, '127.0.0.1');
    try {
      const data = Array.from({ length: 32 }, (_, i) => (i === 7 ? '"Infinity"' : '0.5')).join(','); // JSON's spelling of +Inf
      const r = await fetch(`${u}/v2/models/mlp-a/infer`, {
        method: 'POST',
        body: `{"inputs":[{"name":"input","shape":[1,32],"datatype":"FP32","data":[${data}]}]}`,
      });
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: string }).error).toMatch(/input 'input'.*element 7 is not finite/);
      // and as binary data
      const nan = fromNumbers(
        'f32',
        [1, 32],
        Array.from({ length: 32 }, (_, i) => (i === 3 ? Number.NaN : 0.5)),
      );
      const head = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 32], datatype: 'FP32', parameters: { binary_data_size: 128 } }] }));
      const r2 = await fetch(`${u}/v2/models/mlp-a/infer`, {
        method: 'POST',
        body: Buffer.concat([head, Buffer.from((nan.data as Float32Array).buffer)]),
        headers: { 'inference-header-content-length': String(head.length) },
      });
      expect(r2.status).toBe(400);
      expect(((await r2.json()) as { error: string }).error).toContain('element 3 is not finite');
      expect((await fetch(`${u}/v2/models/mlp-a/infer`, { method: 'POST', body: oipBody(requestInputs(plan, 'mlp-a', 1, 1)) })).status).toBe(200);
    } finally {
      await strict.shutdown();
    }
  });
});
