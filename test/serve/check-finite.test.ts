// The finite-value check as a manifest field: `"checkFinite": true` on a tenant is validated, carried into
// plan.json (only where set, so older plans load as "off"), and makes `loom serve` refuse NaN/Inf for that
// tenant alone; the server's --check-finite forces it on for every tenant.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPlanDir } from '../../codegen/index.js';
import type { LaunchPlan } from '../../codegen/index.js';
import { fromNumbers } from '../../ir/tensor.js';
import { type LoadedPlan, loadPlan } from '../../runtime/index.js';
import { TickScheduler } from '../../runtime/serve/index.js';
import { parseManifest } from '../../src/fleet/manifest.js';
import { type LoomServer, createServer } from '../../runtime/serve/index.js';
import { expectLoomError } from '../support/errors.js';
import { compileTestFleet, oipBody, requestInputs } from './fleet.js';

let planDir = '';
let plan: LaunchPlan;
let loaded: LoadedPlan;

beforeAll(async () => {
  planDir = await compileTestFleet({}, ['mlp-a']);
  plan = readPlanDir(planDir);
  loaded = await loadPlan(planDir, { backend: 'cpu' });
});
afterAll(() => loaded?.close());

// mlp-a's and mlp-b's input is f32[1..4,32]; element `at` is `bad`
function withBad(bad: number, at: number) {
  return {
    input: fromNumbers(
      'f32',
      [2, 32],
      Array.from({ length: 64 }, (_, i) => (i === at ? bad : 0.25)),
    ),
  };
}

describe('manifest field checkFinite', () => {
  const model = path.join(import.meta.dirname, '..', '..', 'package.json'); // any existing file: parsing checks only that it exists
  const parse = (extra: Record<string, unknown>) =>
    parseManifest({ tenants: [{ id: 'fraud-a', model, maxBatch: 2, ...extra }] }, { source: 'fleet.json', baseDir: '/' });

  it('is optional (false), takes true or false, and names tenant and field when it is anything else', () => {
    expect(parse({}).tenants[0]!.checkFinite).toBe(false);
    expect(parse({ checkFinite: true }).tenants[0]!.checkFinite).toBe(true);
    expect(parse({ checkFinite: false }).tenants[0]!.checkFinite).toBe(false);
    expectLoomError(() => parse({ checkFinite: 'yes' }), 'MANIFEST', "tenant 'fraud-a'", "field 'checkFinite'", 'true or false', '"yes"');
    expectLoomError(() => parse({ checkFinite: 1 }), 'MANIFEST', "field 'checkFinite'");
  });

  it('is written into plan.json only for the tenant that asked; a plan without it loads with the check off', async () => {
    const json = JSON.parse(readFileSync(path.join(planDir, 'plan.json'), 'utf8')) as { tenants: Array<Record<string, unknown>> };
    expect(json.tenants.map((t) => [t.id, t.checkFinite])).toEqual([
      ['mlp-a', true],
      ['mlp-b', undefined],
      ['mlp-c', undefined],
      ['lstm-a', undefined],
      ['enc-a', undefined],
    ]);
    // the compiled manifest copy keeps it, so `loom bench` re-plans the same fleet
    const copy = JSON.parse(readFileSync(path.join(planDir, 'manifest.json'), 'utf8')) as { tenants: Array<Record<string, unknown>> };
    expect(copy.tenants.find((t) => t.id === 'mlp-a')!.checkFinite).toBe(true);
    // an older plan: the field absent everywhere
    const oldDir = mkdtempSync(path.join(os.tmpdir(), 'loom-old-plan-'));
    cpSync(planDir, oldDir, { recursive: true });
    for (const t of json.tenants) delete t.checkFinite;
    writeFileSync(path.join(oldDir, 'plan.json'), JSON.stringify(json));
    const old = readPlanDir(oldDir);
    expect(old.tenants.every((t) => t.checkFinite === undefined)).toBe(true);
    const s = new TickScheduler({ plan: old, runTick: (i) => loaded.runTick(i) });
    const out = await s.submit('mlp-a', withBad(Number.NaN, 3));
    expect(out.output!.shape).toEqual([2, 5]);
  });
});

describe('serving with checkFinite', () => {
  let server: LoomServer;
  let url = '';

  beforeAll(async () => {
    server = createServer({ runner: loaded, logger: false });
    url = await server.listen(0, '127.0.0.1');
  });
  afterAll(async () => {
    await server?.shutdown();
  });

  const post = async (model: string, body: string | Buffer, headers: Record<string, string> = {}) => {
    const r = await fetch(`${url}/v2/models/${model}/infer`, { method: 'POST', body, headers });
    return { status: r.status, body: (await r.json()) as { error?: string; outputs?: unknown[] } };
  };
  const binaryBody = (x: ReturnType<typeof withBad>) => {
    const head = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [2, 32], datatype: 'FP32', parameters: { binary_data_size: 256 } }] }));
    return {
      body: Buffer.concat([head, Buffer.from((x.input.data as Float32Array).buffer)]),
      headers: { 'inference-header-content-length': String(head.length) },
    };
  };

  it('a NaN or Inf for the tenant that asked is a 400 naming tenant, input and the first bad index', async () => {
    const nan = binaryBody(withBad(Number.NaN, 37));
    const r = await post('mlp-a', nan.body, nan.headers);
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(/model 'mlp-a' input 'input': element 37 is not finite \(NaN/);
    const inf = binaryBody(withBad(Number.NEGATIVE_INFINITY, 5));
    const r2 = await post('mlp-a', inf.body, inf.headers);
    expect(r2.status).toBe(400);
    expect(r2.body.error).toMatch(/model 'mlp-a' input 'input': element 5 is not finite \(-Infinity/);
    expect((await post('mlp-a', oipBody(requestInputs(plan, 'mlp-a', 1, 1)))).status).toBe(200);
  });

  it('the same values for a tenant that did not ask are computed (200), and the refusal did not touch them', async () => {
    const nan = binaryBody(withBad(Number.NaN, 37));
    const r = await post('mlp-b', nan.body, nan.headers);
    expect(r.status).toBe(200);
    expect(r.body.outputs).toHaveLength(1);
  });

  it('the server-wide override (--check-finite) refuses them for every tenant', async () => {
    const strict = createServer({ runner: { plan, backend: 'cpu', runTick: (i) => loaded.runTick(i) }, scheduler: { checkFinite: true }, logger: false });
    const u = await strict.listen(0, '127.0.0.1');
    try {
      const nan = binaryBody(withBad(Number.NaN, 2));
      const r = await fetch(`${u}/v2/models/mlp-b/infer`, { method: 'POST', body: nan.body, headers: nan.headers });
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: string }).error).toMatch(/model 'mlp-b' input 'input': element 2 is not finite/);
    } finally {
      await strict.shutdown();
    }
  });
});
