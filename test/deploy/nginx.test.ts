// `loom deploy nginx` with a real nginx (Debian's package; .ci/run installs it) in front of three `loom serve`
// shards on loopback (CPU backend): every tenant's answer through nginx equals its shard's direct answer and
// matches onnxruntime; unknown models get the OIP error body; stopping one shard fails only its tenants (503
// with an error body) and the aggregated readiness; restarting it recovers; gRPC is routed by the loom-model
// metadata. Skips, saying why, where nginx is absent.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LaunchPlan } from '../../codegen/index.js';
import { readPlanDir } from '../../codegen/index.js';
import { type Tensor, fromNumbers } from '../../ir/tensor.js';
import { loadInferenceProto } from '../../runtime/serve/grpc/service.js';
import { readManifest } from '../../src/fleet/manifest.js';
import { compileShards } from '../../src/fleet/shard-compile.js';
import { type ShardsFile, readShardsFile } from '../../src/fleet/shards-file.js';
import { runOrt } from '../support/ort.js';
import { relativeError } from '../support/tensors.js';
import { FLEET, type OipOutput, compileTestFleet, oipBody, requestInputs } from '../serve/fleet.js';
import { ROOT, type Shard, findNginx, freePort, startNginx, startShard, stop, waitFor } from './processes.js';

const found = findNginx();
if ('reason' in found) console.warn(`test/deploy/nginx.test.ts skipped: ${found.reason}`);

let dir: string;
let modelsDir: string;
let file: ShardsFile;
let plans: LaunchPlan[];
let prefix: string;
let front: string;
let grpcFront: string;
const ports: { http: number; grpc: number }[] = [];
const shards: Shard[] = [];
let nginx: ReturnType<typeof startNginx> | null = null;

beforeAll(async () => {
  if ('reason' in found) return;
  const planDir = await compileTestFleet();
  const base = path.dirname(planDir);
  modelsDir = path.join(base, 'models');
  dir = path.join(base, 'shards');
  await compileShards(readManifest(path.join(base, 'fleet.json')), dir, { shards: 3, nvcc: 'off' });
  file = readShardsFile(dir);
  plans = file.shards.map((s) => readPlanDir(path.join(dir, s.dir)));
  for (const s of file.shards) {
    const p = { http: await freePort(), grpc: await freePort() };
    ports.push(p);
    shards.push(await startShard(path.join(dir, s.dir), p.http, p.grpc));
  }
  const listen = await freePort();
  const grpcListen = await freePort();
  prefix = path.join(base, 'nginx');
  mkdirSync(prefix);
  execFileSync(
    process.execPath,
    [
      path.join(ROOT, 'bin/loom.js'),
      'deploy',
      'nginx',
      dir,
      '--listen',
      `127.0.0.1:${listen}`,
      ...ports.flatMap((p, k) => ['--shard', `${k}=127.0.0.1:${p.http}`, '--grpc-shard', `${k}=127.0.0.1:${p.grpc}`]),
      '--grpc-listen',
      `127.0.0.1:${grpcListen}`,
      '-o',
      path.join(prefix, 'nginx.conf'),
    ],
    { cwd: ROOT, stdio: 'pipe' },
  );
  nginx = startNginx(found.bin, prefix);
  front = `http://127.0.0.1:${listen}`;
  grpcFront = `127.0.0.1:${grpcListen}`;
  await waitFor(`${front}/v2/health/ready`, (s) => s === 200);
});

afterAll(async () => {
  if (nginx) {
    nginx.proc.kill('SIGQUIT');
    await nginx.exited;
  }
  for (const s of shards) await stop(s);
});

const shardOf = (id: string) => file.shards.find((s) => s.tenants.includes(id))!.id;

async function post(base: string, id: string, body: string): Promise<{ status: number; json: { outputs?: OipOutput[]; error?: string } }> {
  const r = await fetch(`${base}/v2/models/${id}/infer`, { method: 'POST', body, signal: AbortSignal.timeout(10_000) });
  return { status: r.status, json: (await r.json()) as never };
}

const asTensor = (o: OipOutput): Tensor => fromNumbers('f32', o.shape, o.data);

describe.skipIf('reason' in found)('nginx in front of three shards', () => {
  it('writes every file nginx needs under its prefix', () => {
    const conf = readFileSync(path.join(prefix, 'nginx.conf'), 'utf8');
    for (const m of conf.matchAll(/^\s*(pid|error_log|access_log|\w+_temp_path)\s+(\S+)/gm)) expect(m[2]!.startsWith('/'), m[0]).toBe(false);
    expect(readdirSync(prefix).sort()).toEqual(
      expect.arrayContaining(['access.log', 'client_body_temp', 'error.log', 'nginx.conf', 'nginx.pid', 'proxy_temp']),
    );
  });

  it('answers every tenant as its shard does directly, and as onnxruntime does', async () => {
    for (const [i, t] of FLEET.entries()) {
      const k = shardOf(t.id);
      const inputs = requestInputs(plans[k]!, t.id, Math.min(2, t.maxBatch), 300 + i);
      const body = oipBody(inputs);
      const via = await post(front, t.id, body);
      const direct = await post(shards[k]!.url, t.id, body);
      expect(via.status, `${t.id}: ${via.json.error}`).toBe(200);
      expect(via.json.outputs).toEqual(direct.json.outputs);
      const want = await runOrt(path.join(modelsDir, `${t.id}.onnx`), inputs);
      for (const o of via.json.outputs!) expect(relativeError(asTensor(o), want[o.name]!), `${t.id}.${o.name}`).toBeLessThan(1e-4);
    }
  });

  it('answers an unknown model with the OIP error body', async () => {
    const r = await post(front, 'no-such-model', '{}');
    expect(r.status).toBe(404);
    expect(r.json.error).toMatch(/^unknown model 'no-such-model' \(this deployment has: /);
    for (const t of FLEET) expect(r.json.error).toContain(t.id);
    const junk = await fetch(`${front}/v2/models/${encodeURIComponent('a"b')}/infer`, { method: 'POST', body: '{}' });
    expect(junk.status).toBe(404);
    expect(((await junk.json()) as { error: string }).error).toContain('unknown model'); // still valid JSON
  });

  it('routes gRPC by the loom-model metadata', async () => {
    const Ctor = (loadInferenceProto().packageObject.inference as grpc.GrpcObject).GRPCInferenceService as grpc.ServiceClientConstructor;
    const client = new Ctor(grpcFront, grpc.credentials.createInsecure()) as grpc.Client & Record<string, (...a: unknown[]) => void>;
    const call = (method: string, name: string) =>
      new Promise<{ name?: string; code?: number }>((resolve) => {
        const md = new grpc.Metadata();
        md.set('loom-model', name);
        client[method]!({ name, version: '' }, md, { deadline: Date.now() + 10_000 }, (e: grpc.ServiceError | null, r: { name?: string }) =>
          resolve(e ? { code: e.code } : r),
        );
      });
    try {
      for (const t of FLEET) expect((await call('ModelMetadata', t.id)).name).toBe(t.id);
      expect((await call('ModelMetadata', 'no-such-model')).code).toBe(grpc.status.NOT_FOUND);
    } finally {
      client.close();
    }
  });

  it('stopping one shard fails only its tenants; restarting it recovers', async () => {
    const victim = 1;
    const theirs = file.shards[victim]!.tenants;
    const body = (id: string) => oipBody(requestInputs(plans[shardOf(id)]!, id, 1, 9));
    expect(await stop(shards[victim]!)).toBe(0);
    for (const t of FLEET) {
      const r = await post(front, t.id, body(t.id));
      if (theirs.includes(t.id)) {
        expect(r.status, t.id).toBe(503);
        expect(r.json.error).toContain(`model '${t.id}' is served by shard ${victim}, which is not answering`);
      } else expect(r.status, t.id).toBe(200);
    }
    expect((await fetch(`${front}/v2/health/ready`)).status).toBe(503);
    expect((await fetch(`${front}/v2/health/ready/shard-0`)).status).toBe(200);

    shards[victim] = await startShard(path.join(dir, file.shards[victim]!.dir), ports[victim]!.http, ports[victim]!.grpc);
    await waitFor(`${front}/v2/health/ready`, (s) => s === 200);
    for (const t of FLEET) expect((await post(front, t.id, body(t.id))).status, t.id).toBe(200);
  });
});
