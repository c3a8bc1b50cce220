// `loom serve` over shards (runtime/serve/shards.ts): two CPU shards in one process behind one front end. Every
// tenant answers as its own shard's plan does, /metrics names each tenant's shard and device and counts each
// shard's ticks, and a failed tick makes only its shard's tenants unready.
import { cpSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoadedPlan, loadPlan } from '../../runtime/index.js';
import { type LoomServer, type ServeShard, createServer } from '../../runtime/serve/index.js';
import { loadServed, parseDevices } from '../../src/cli/serve-shards.js';
import { readManifest } from '../../src/fleet/manifest.js';
import { compileShards } from '../../src/fleet/shard-compile.js';
import { type ShardsFile, readShardsFile } from '../../src/fleet/shards-file.js';
import { expectLoomError } from '../support/errors.js';
import { FLEET, type OipOutput, compileTestFleet, expectedOutputs, oipBody, requestInputs, sameValues } from './fleet.js';

let file: ShardsFile;
let dir: string;
let server: LoomServer;
let url: string;
const references: LoadedPlan[] = []; // each shard loaded a second time: the direct answers

beforeAll(async () => {
  const planDir = await compileTestFleet();
  const manifestPath = path.join(path.dirname(planDir), 'fleet.json');
  dir = path.join(path.dirname(planDir), 'shards');
  await compileShards(readManifest(manifestPath), dir, { shards: 2, nvcc: 'off' });
  file = readShardsFile(dir);
  const shards: ServeShard[] = [];
  for (const s of file.shards) {
    // shard 1's third tick fails inside the backend: the readiness test below
    const runner = await loadPlan(path.join(dir, s.dir), { backend: 'cpu', threads: 1, ...(s.id === 1 ? { testFaults: { ticks: 1, after: 2 } } : {}) });
    shards.push({ id: s.id, device: 'cpu', runner });
    references.push(await loadPlan(path.join(dir, s.dir), { backend: 'cpu', threads: 1 }));
  }
  server = createServer({ shards, scheduler: { failureHoldMs: 60_000 } });
  url = await server.listen(0, '127.0.0.1');
});

afterAll(async () => {
  await server?.shutdown();
  for (const r of references) r.close();
});

const shardOf = (id: string) => file.shards.find((s) => s.tenants.includes(id))!.id;

async function infer(id: string, seed: number): Promise<{ status: number; body: { outputs?: OipOutput[]; error?: string } }> {
  const plan = references[shardOf(id)]!.plan;
  const r = await fetch(`${url}/v2/models/${id}/infer`, { method: 'POST', body: oipBody(requestInputs(plan, id, 1, seed)) });
  return { status: r.status, body: (await r.json()) as never };
}

describe('serving two shards in one process', () => {
  it('splits the fleet over both shards', () => {
    expect(file.shards).toHaveLength(2);
    expect(file.shards.flatMap((s) => s.tenants).sort()).toEqual(FLEET.map((t) => t.id).sort());
  });

  it("answers every tenant exactly as its shard's plan does", async () => {
    for (const [i, t] of FLEET.entries()) {
      const ref = references[shardOf(t.id)]!;
      const want = await expectedOutputs(ref, t.id, requestInputs(ref.plan, t.id, 1, 100 + i));
      const got = await infer(t.id, 100 + i);
      expect(got.status, t.id).toBe(200);
      for (const o of got.body.outputs!) expect(sameValues(o, want[o.name]!), `${t.id}.${o.name}`).toBe(true);
    }
  });

  it('names every tenant of every shard for an unknown model', async () => {
    const r = await fetch(`${url}/v2/models/nope/infer`, { method: 'POST', body: '{}' });
    expect(r.status).toBe(404);
    const { error } = (await r.json()) as { error: string };
    for (const t of FLEET) expect(error).toContain(t.id);
  });

  it('labels /metrics by shard and device', async () => {
    const text = await (await fetch(`${url}/metrics`)).text();
    for (const s of file.shards) {
      for (const t of s.tenants) expect(text).toContain(`loom_shard_tenant_info{tenant="${t}",shard="${s.id}",device="cpu"} 1`);
      expect(text).toMatch(new RegExp(`loom_shard_ticks_total\\{shard="${s.id}",device="cpu",result="ok"\\} [1-9]`));
      expect(text).toContain(`loom_shard_plan_arena_bytes{shard="${s.id}",device="cpu",backend="cpu",arena="weights"} ${s.weightsBytes}`);
    }
    expect(text).toContain('loom_plan_info{backend="cpu"');
  });

  it("a failed tick makes only its shard's tenants unready", async () => {
    const down = file.shards[1]!.tenants[0]!;
    const up = file.shards[0]!.tenants[0]!;
    let failed = false;
    for (let seed = 0; seed < 4 && !failed; seed++) failed = (await infer(down, seed)).status === 500;
    expect(failed).toBe(true);
    expect((await fetch(`${url}/v2/models/${down}/ready`)).status).toBe(503);
    expect((await fetch(`${url}/v2/models/${up}/ready`)).status).toBe(200);
    expect((await fetch(`${url}/v2/health/ready`)).status).toBe(503);
    expect((await infer(up, 7)).status).toBe(200);
    expect(await (await fetch(`${url}/metrics`)).text()).toMatch(/loom_shard_ready\{shard="1",device="cpu"\} 0/);
  });
});

describe('--devices', () => {
  it('parses GPU indices, cuda:N and cpu, one per shard', () => {
    expect(parseDevices('0,1', 2).map((d) => d.label)).toEqual(['cuda:0', 'cuda:1']);
    expect(parseDevices('cuda:1, cpu', 2)).toEqual([
      { backend: 'cuda', gpu: 1, label: 'cuda:1' },
      { backend: 'cpu', gpu: null, label: 'cpu' },
    ]);
    expectLoomError(() => parseDevices('0', 2), 'USAGE', 'names 1 device, but there are 2 shards');
    expectLoomError(() => parseDevices('0,gpu1', 2), 'USAGE', "'gpu1' is not a device");
  });

  it('refuses a shards directory whose shard serves other tenants than shards.json says', async () => {
    const copy = `${dir}-swapped`;
    cpSync(dir, copy, { recursive: true });
    const f = readShardsFile(dir);
    const swapped = { ...f, shards: f.shards.map((s, k) => ({ ...s, tenants: f.shards[1 - k]!.tenants })) };
    writeFileSync(path.join(copy, 'shards.json'), JSON.stringify(swapped));
    await expect(loadServed(copy, { backend: 'cpu', devices: 'cpu,cpu' })).rejects.toThrow(/serves other tenants than shards.json lists for shard 0/);
    await expect(loadServed(dir, { backend: 'cpu', devices: 'cpu' })).rejects.toThrow(/names 1 device, but there are 2 shards/);
    const ok = await loadServed(dir, { backend: 'cpu', devices: 'cpu,cpu', threads: 1 });
    expect(ok.shards!.map((s) => s.device)).toEqual(['cpu', 'cpu']);
    ok.close();
  });
});
