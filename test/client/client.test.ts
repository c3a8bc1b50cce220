// The generated typed client (codegen/client.ts): compile a mixed fleet, type-check its client.ts with tsc
// (right calls compile, wrong element types / names / shapes do not), and call every tenant through it,
// in process and over HTTP against `loom serve`'s server, getting what runTick and `loom run` give.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientSupportText, renderClient, renderClientInWorker, tenantNames } from '../../codegen/client.js';
import type { Tensor } from '../../ir/tensor.js';
import { fromNumbers, makeTensor } from '../../ir/tensor.js';
import { generateModel } from '../../models/index.js';
import { type LoadedPlan, loadPlan } from '../../runtime/index.js';
import { readNpy, writeNpy } from '../../runtime/npy.js';
import { runCli } from '../../src/cli/main.js';
import { compileFleet } from '../../src/fleet/compile.js';
import { type LoomServer, createServer, parseAuthConfig } from '../../runtime/serve/index.js';
import { relativeError, rng } from '../support/tensors.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const tmp = path.join(ROOT, 'test/.tmp/client'); // inside the repo: the client is imported as a module
const planDir = path.join(tmp, 'plan');
const extraClient = path.join(tmp, 'my-client.ts');

// Two same-shape MLPs (strided), one other MLP (grouped), an LSTM (rows on axis 1), an encoder (i64 inputs).
const FLEET = [
  { id: 'mlp-a', kind: 'mlp', opts: { seed: 21, sizes: [32, 24, 5] } },
  { id: 'mlp-b', kind: 'mlp', opts: { seed: 22, sizes: [32, 24, 5] } },
  { id: 'mlp-wide', kind: 'mlp', opts: { seed: 23, sizes: [16, 40, 3], linear: 'matmul' } },
  { id: 'lstm-a', kind: 'lstm', opts: { seed: 24, hidden: 8, inputSize: 6, seqLen: 3, classes: 4 } },
  { id: 'enc-a', kind: 'encoder', opts: { seed: 25, layers: 1, hidden: 16, heads: 2, ffn: 32, seq: 4, vocabSize: 50, maxPositions: 8 } },
] as const;

// What the generated module exports, as this test uses it (it is imported at run time).
interface ClientModule {
  createClient(t: unknown): Record<string, (inputs: Record<string, unknown>) => Promise<Record<string, Tensor>>>;
  inProcessTransport(plan: unknown): { infer(tenant: string, inputs: Record<string, Tensor>): Promise<Record<string, Tensor>> };
  httpTransport(url: string, opts?: { binary?: boolean }): { infer(tenant: string, inputs: Record<string, Tensor>): Promise<Record<string, Tensor>> };
  TENANTS: Record<string, { inputs: { name: string }[] }>;
}

let loaded: LoadedPlan;
let mod: ClientModule;
let server: LoomServer | null = null;
let inputs: Record<string, Record<string, Tensor>>;
let expected: Record<string, Record<string, Tensor>>;

function tickInputs(): Record<string, Record<string, Tensor>> {
  const rand = rng(99);
  const f32 = (shape: number[]) =>
    fromNumbers(
      'f32',
      shape,
      Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rand() * 2 - 1),
    );
  const ids = new BigInt64Array(2 * 4).map(() => BigInt(Math.floor(rand() * 50)));
  const mask = new BigInt64Array(2 * 4).fill(1n);
  mask[7] = 0n;
  return {
    'mlp-a': { input: f32([2, 32]) },
    'mlp-b': { input: f32([1, 32]) },
    'mlp-wide': { input: f32([3, 16]) },
    'lstm-a': { input: f32([3, 2, 6]) },
    'enc-a': { input_ids: makeTensor('i64', [2, 4], ids), attention_mask: makeTensor('i64', [2, 4], mask) },
  };
}

const camel: Record<string, string> = { 'mlp-a': 'mlpA', 'mlp-b': 'mlpB', 'mlp-wide': 'mlpWide', 'lstm-a': 'lstmA', 'enc-a': 'encA' };

function expectSame(got: Record<string, Tensor>, want: Record<string, Tensor>, where: string): void {
  expect(Object.keys(got).sort(), where).toEqual(Object.keys(want).sort());
  for (const [name, w] of Object.entries(want)) {
    const g = got[name]!;
    expect(g.dtype, `${where} ${name}`).toBe(w.dtype);
    expect([...g.shape], `${where} ${name}`).toEqual([...w.shape]);
    expect(g.data.constructor).toBe(w.data.constructor);
    expect(relativeError(g, w), `${where} ${name}`).toBeLessThanOrEqual(1e-6);
  }
}

beforeAll(async () => {
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(path.join(tmp, 'models'), { recursive: true });
  for (const t of FLEET) writeFileSync(path.join(tmp, 'models', `${t.id}.onnx`), generateModel(t.kind, t.opts as never).bytes);
  const manifest = path.join(tmp, 'fleet.json');
  writeFileSync(manifest, JSON.stringify({ tenants: FLEET.map((t) => ({ id: t.id, model: `models/${t.id}.onnx`, maxBatch: 3 })), precision: 'fp32' }));
  const r = await compileFleet(manifest, planDir, { nvcc: 'off', client: extraClient });
  expect(r.files).toContain('client.ts');
  loaded = await loadPlan(planDir, { backend: 'cpu' });
  mod = (await import(pathToFileURL(path.join(planDir, 'client.ts')).href)) as ClientModule;
  inputs = tickInputs();
  expected = await loaded.runTick(inputs);
});

afterAll(async () => {
  await server?.shutdown();
  loaded?.close();
});

describe('generated client', () => {
  it('is written into the plan dir and where --client says, the same text', () => {
    const text = readFileSync(path.join(planDir, 'client.ts'), 'utf8');
    expect(readFileSync(extraClient, 'utf8')).toBe(text);
    // one typed function per tenant, with element types and shapes in its types and docs
    for (const fn of Object.values(camel)) expect(text).toContain(`export function ${fn}(transport: Transport, inputs: `);
    expect(text).toContain('readonly input: Input<Float32Array, readonly [rows: number, d1: 32]>;');
    expect(text).toContain('readonly input: Input<Float32Array, readonly [d0: 3, rows: number, d2: 6]>;');
    expect(text).toContain('readonly input_ids: Input<BigInt64Array, readonly [rows: number, d1: 4]>;');
    expect(text).toContain("readonly output: Tensor<'f32', Float32Array, readonly [rows: number, d1: 5]>;");
    expect(text).toContain('- `input_ids`: BigInt64Array, i64 [rows, 4] — rows 1..3 on axis 0');
    expect(text).not.toMatch(/^import /m); // self-contained
  });

  it('compiles with tsc --noEmit; wrong types, names and shapes are compile errors', () => {
    const runtimeTypes = path.relative(planDir, path.join(ROOT, 'runtime/index.js')).split(path.sep).join('/');
    writeFileSync(
      path.join(planDir, 'use.ts'),
      `
import type { LoadedPlan } from '${runtimeTypes}';
import { createClient, httpTransport, inProcessTransport, mlpA, type MlpAOutputs, type EncAOutputs } from './client.js';
declare const plan: LoadedPlan;
const client = createClient(inProcessTransport(plan)); // Loom's LoadedPlan fits the in-process transport
export async function use(): Promise<number> {
  const a: MlpAOutputs = await client.mlpA({ input: new Float32Array(32) });
  const rows: number = a.output.shape[0];
  const five: 5 = a.output.shape[1];
  const data: Float32Array = a.output.data;
  await mlpA(httpTransport('http://localhost:8080'), { input: { data: new Float32Array(64), shape: [2, 32] } });
  const e: EncAOutputs = await client.encA({ input_ids: new BigInt64Array(4), attention_mask: new BigInt64Array(4) });
  await client.lstmA({ input: { data: new Float32Array(36), shape: [3, 2, 6] } });
  // @ts-expect-error an f32 input takes a Float32Array
  await client.mlpA({ input: new Int32Array(32) });
  // @ts-expect-error i64 inputs are BigInt64Array
  await client.encA({ input_ids: new Float32Array(4), attention_mask: new BigInt64Array(4) });
  // @ts-expect-error the input is named 'input'
  await client.mlpA({ x: new Float32Array(32) });
  // @ts-expect-error the encoder needs both inputs
  await client.encA({ input_ids: new BigInt64Array(4) });
  // @ts-expect-error fixed dims are literal types: 32, not 31
  await client.mlpA({ input: { data: new Float32Array(62), shape: [2, 31] } });
  // @ts-expect-error the output is f32
  const wrong: BigInt64Array = a.output.data;
  // @ts-expect-error no such tenant
  client.mlpZ;
  return rows + five + data.length + e.pooler_output.data.length + wrong.length;
}
`,
    );
    writeFileSync(
      path.join(planDir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          lib: ['ES2022'],
          types: ['node'],
          typeRoots: [path.join(ROOT, 'node_modules/@types')],
          strict: true,
          noEmit: true,
          noUncheckedIndexedAccess: true,
          exactOptionalPropertyTypes: true,
          skipLibCheck: true,
        },
        files: ['client.ts', 'use.ts'],
      }),
    );
    // and alone, with nothing but the ES library: no DOM, no @types/node
    writeFileSync(
      path.join(planDir, 'tsconfig.bare.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2020',
          module: 'ESNext',
          moduleResolution: 'Bundler',
          lib: ['ES2020'],
          types: [],
          strict: true,
          noEmit: true,
          noUncheckedIndexedAccess: true,
          exactOptionalPropertyTypes: true,
        },
        files: [path.join(planDir, 'client.ts')],
      }),
    );
    const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
    for (const cfg of ['tsconfig.json', 'tsconfig.bare.json']) {
      const r = spawnSync(process.execPath, [tsc, '-p', path.join(planDir, cfg)], { cwd: planDir, encoding: 'utf8', timeout: 60_000 });
      expect(`${r.stdout}${r.stderr}`, cfg).toBe('');
      expect(r.status, cfg).toBe(0);
    }
  });

  it('in process: every tenant returns what runTick returns; calls made together share one tick', async () => {
    const ticks: string[][] = [];
    const counting = { runTick: (i: Record<string, Record<string, Tensor>>) => (ticks.push(Object.keys(i)), loaded.runTick(i)) };
    const client = mod.createClient(mod.inProcessTransport(counting));
    const ids = Object.keys(inputs);
    const got = await Promise.all(ids.map((id) => client[camel[id]!]!(inputs[id]!)));
    ids.forEach((id, i) => expectSame(got[i]!, expected[id]!, `in-process ${id}`));
    expect(ticks).toEqual([ids]);
    // flat typed arrays: the rows follow from the length (the LSTM's rows are on axis 1)
    const flat = await client.lstmA!({ input: inputs['lstm-a']!.input!.data });
    expectSame(flat, expected['lstm-a']!, 'flat lstm-a');
    // two calls of one tenant cannot share a tick
    ticks.length = 0;
    await Promise.all([client.mlpA!(inputs['mlp-a']!), client.mlpA!(inputs['mlp-a']!), client.mlpB!(inputs['mlp-b']!)]);
    expect(ticks).toEqual([['mlp-a', 'mlp-b'], ['mlp-a']]);
  });

  it('in process: matches `loom run` for the same inputs', async () => {
    const x = path.join(tmp, 'x.npy');
    writeNpy(x, inputs['mlp-wide']!.input!);
    const out = path.join(tmp, 'run-out');
    expect(await runCli(['node', 'loom', 'run', planDir, '--tenant', 'mlp-wide', '--input', `input=${x}`, '--out', out, '--backend', 'cpu'])).toBe(0);
    const client = mod.createClient(mod.inProcessTransport(loaded));
    const got = await client.mlpWide!({ input: inputs['mlp-wide']!.input });
    expectSame(got, { output: readNpy(path.join(out, 'output.npy')) }, 'loom run mlp-wide');
  });

  it('checks inputs before calling: element type, length, names', async () => {
    const client = mod.createClient(mod.inProcessTransport(loaded));
    await expect(client.mlpA!({ input: new Int32Array(32) })).rejects.toThrow(/tenant 'mlp-a' input 'input': Int32Array, expected Float32Array/);
    await expect(client.mlpA!({ input: new Float32Array(33) })).rejects.toThrow(
      /tenant 'mlp-a' input 'input': 33 values, not whole rows of 32 \(f32\[1\.\.3,32\]\)/,
    );
    await expect(client.mlpA!({ input: new Float32Array(32 * 4) })).rejects.toThrow(/tenant 'mlp-a' input 'input': shape \[4,32\], expected f32\[1\.\.3,32\]/);
    await expect(client.mlpA!({ x: new Float32Array(32) })).rejects.toThrow(/has no input 'x'/);
    await expect(client.encA!({ input_ids: new BigInt64Array(4) })).rejects.toThrow(/missing input 'attention_mask'/);
    await expect(client.encA!({ input_ids: new BigInt64Array(8), attention_mask: new BigInt64Array(4) })).rejects.toThrow(
      /tenant 'enc-a' input 'attention_mask': 1 row on axis 0, but input 'input_ids' has 2/,
    );
    // the validator runTick and loom serve use, with its field path
    await expect(client.mlpA!({ input: { data: new Float32Array(62), shape: [2, 31] } })).rejects.toMatchObject({
      name: 'LoomClientError',
      status: null,
      path: "inputs[0] ('input').shape",
    });
  });

  it('over HTTP against loom serve (OIP v2), JSON and binary tensors: the same results', async () => {
    server = createServer({ runner: { plan: loaded.plan, backend: loaded.backend, runTick: (i) => loaded.runTick(i) } });
    const url = await server.listen(0, '127.0.0.1');
    for (const binary of [false, true]) {
      const client = mod.createClient(mod.httpTransport(url, { binary }));
      const ids = Object.keys(inputs);
      const got = await Promise.all(ids.map((id) => client[camel[id]!]!(inputs[id]!)));
      ids.forEach((id, i) => expectSame(got[i]!, expected[id]!, `http${binary ? ' binary' : ''} ${id}`));
    }
    // the server's refusals become LoomClientErrors with the HTTP status
    const raw = mod.httpTransport(`${url}/`);
    const err404 = await raw.infer('nope', { input: inputs['mlp-a']!.input! }).catch((e: unknown) => e);
    expect(err404).toMatchObject({ name: 'LoomClientError', status: 404 });
    expect(String(err404)).toContain("unknown model 'nope'");
    const bad = makeTensor('f32', [2, 31]);
    const err400 = await raw.infer('mlp-a', { input: bad }).catch((e: unknown) => e);
    expect(err400).toMatchObject({ name: 'LoomClientError', status: 400 });
    expect(String(err400)).toContain('shape');
  });
});

describe('generated client over HTTP: non-finite values', () => {
  it('reads "NaN", "Infinity", "-Infinity" back as numbers and sends non-finite inputs the same way (JSON)', async () => {
    const seen: Record<string, Record<string, Tensor>>[] = [];
    const s = createServer({
      runner: {
        plan: loaded.plan,
        backend: loaded.backend,
        async runTick(i) {
          seen.push(i as Record<string, Record<string, Tensor>>);
          const out = await loaded.runTick(i);
          for (const t of Object.values(out['mlp-a'] ?? {})) (t.data as Float32Array).set([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
          return out;
        },
      },
    });
    try {
      const url = await s.listen(0, '127.0.0.1');
      const client = mod.createClient(mod.httpTransport(url));
      const x = new Float32Array(inputs['mlp-a']!.input!.data as Float32Array);
      x.set([Number.NaN, Number.NEGATIVE_INFINITY], 5);
      const out = await client.mlpA!({ input: x });
      const y = out.output!.data as Float32Array;
      expect([...y.subarray(0, 3)]).toEqual([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
      expect(y.subarray(5).every(Number.isFinite)).toBe(true); // row 1 (row 0's NaN input made its row NaN)
      const sent = seen.flatMap((t) => (t['mlp-a'] ? [t['mlp-a'].input!.data as Float32Array] : []))[0]!;
      expect([...sent.subarray(5, 7)]).toEqual([Number.NaN, Number.NEGATIVE_INFINITY]);
    } finally {
      await s.shutdown();
    }
  });

  it('a null or an unknown string in an answer is an error naming tenant, output and element', async () => {
    const answer = (data: unknown[]) => {
      const text = JSON.stringify({ outputs: [{ name: 'output', datatype: 'FP32', shape: [1, 5], data }] });
      return async () => ({
        ok: true,
        status: 200,
        headers: { get: () => null },
        arrayBuffer: async () => new TextEncoder().encode(text).buffer as ArrayBuffer,
      });
    };
    const t = mod.httpTransport('http://127.0.0.1:1', { fetch: answer([1, null, 2, 3, 4]) } as never);
    const e1 = await t.infer('mlp-a', { input: inputs['mlp-a']!.input! }).catch((e: unknown) => e);
    expect(String(e1)).toMatch(/tenant 'mlp-a' output 'output'\[1\]: null/);
    const t2 = mod.httpTransport('http://127.0.0.1:1', { fetch: answer([1, 'inf', 2, 3, 4]) } as never);
    const e2 = await t2.infer('mlp-a', { input: inputs['mlp-a']!.input! }).catch((e: unknown) => e);
    expect(String(e2)).toMatch(/tenant 'mlp-a' output 'output'\[1\]: "inf"/);
  });
});

describe('generated client over HTTP: bearer token', () => {
  it('sends { token } as Authorization: Bearer; without it the 401 is a LoomClientError', async () => {
    const token = 'client-test-token-5be1';
    const auth = parseAuthConfig(
      JSON.stringify({ tokens: [{ name: 'app', sha256: createHash('sha256').update(token).digest('hex'), tenants: ['mlp-a'] }] }),
      'auth.json',
      FLEET.map((t) => t.id),
    );
    const s = createServer({ runner: { plan: loaded.plan, backend: loaded.backend, runTick: (i) => loaded.runTick(i) }, auth });
    try {
      const url = await s.listen(0, '127.0.0.1');
      for (const binary of [false, true]) {
        const client = mod.createClient(mod.httpTransport(url, { token, binary } as never));
        expectSame(await client.mlpA!(inputs['mlp-a']!), expected['mlp-a']!, 'http with token');
        const denied = await client.mlpB!(inputs['mlp-b']!).catch((e: unknown) => e);
        expect(denied).toMatchObject({ name: 'LoomClientError', status: 403 });
      }
      const err = await mod.createClient(mod.httpTransport(url)).mlpA!(inputs['mlp-a']!).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'LoomClientError', status: 401 });
      expect(String(err)).toContain('bearer token');
    } finally {
      await s.shutdown();
    }
  });
});

describe('client names and text', () => {
  it('turns tenant ids into unique identifiers', () => {
    expect(tenantNames(['mlp-a', 'mlp_a', '3d-net', 'delete', 'createClient', 'fraud.v2-b', '---'])).toEqual([
      { fn: 'mlpA', type: 'MlpA' },
      { fn: 'mlpA2', type: 'MlpA2' },
      { fn: 'tenant3dNet', type: 'Tenant3dNet' },
      { fn: 'deleteTenant', type: 'DeleteTenant' },
      { fn: 'createClientTenant', type: 'CreateClientTenant' },
      { fn: 'fraudV2B', type: 'FraudV2B' },
      { fn: 'tenant', type: 'Tenant' },
    ]);
  });

  it('embeds the validator source runTick and loom serve use, and the support source, without imports', () => {
    const text = clientSupportText();
    const validator = readFileSync(path.join(ROOT, 'ir/contract/tenant-io.ts'), 'utf8');
    const body = validator.slice(validator.indexOf('/** One input of a tenant'));
    expect(text).toContain(body.trim());
    expect(text).toContain('function toTensors(');
    expect(text).not.toMatch(/^import /m);
    // a tenant cannot take a name the embedded code declares
    expect(tenantNames(['validate-tenant-inputs', 'TenantIOError'])).toEqual([
      { fn: 'validateTenantInputsTenant', type: 'ValidateTenantInputsTenant' },
      { fn: 'tenantIOErrorTenant', type: 'TenantIOErrorTenant' },
    ]);
  });

  it('is deterministic and quotes input names that are not identifiers', async () => {
    const t = { ...loaded.plan.tenants[0]!, id: 'x.1', inputs: [{ ...loaded.plan.tenants[0]!.inputs[0]!, name: 'input:0' }] };
    const a = await renderClient([t]);
    expect(a).toBe(await renderClient([t]));
    expect(a).toContain('readonly "input:0": Input<Float32Array');
    expect(a).toContain('export function x1(');
  });

  it('renders the same text on a worker thread (loom compile renders it there, beside the weights write)', async () => {
    const tenants = loaded.plan.tenants;
    expect(await renderClientInWorker(tenants)).toBe(await renderClient(tenants));
    await expect(renderClientInWorker([])).rejects.toMatchObject({ code: 'USAGE' });
  });
});
