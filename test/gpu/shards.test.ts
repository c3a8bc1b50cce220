// Two shards on one GPU (issue 16): `loom compile --shards 2` of a mixed fleet, both shard plans loaded on CUDA
// device 0 (two plans, two tick loops), served behind one front end. Every tenant's answer matches the CPU
// backend running the same shard plan and onnxruntime; a device index the GPU does not have is refused by the
// addon. Skips (test/gpu/gpu-env.ts) without a GPU.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromNumbers } from '../../ir/tensor.js';
import { type LoadedPlan, loadPlan, nativeAddonInfo } from '../../runtime/index.js';
import { type LoomServer, createServer } from '../../runtime/serve/index.js';
import { readManifest } from '../../src/fleet/manifest.js';
import { compileShards } from '../../src/fleet/shard-compile.js';
import { type ShardsFile, readShardsFile } from '../../src/fleet/shards-file.js';
import { runOrt } from '../support/ort.js';
import { relativeError } from '../support/tensors.js';
import { MIXED, writeFleet } from '../fleet/shard-fleet.js';
import { type OipOutput, oipBody, requestInputs } from '../serve/fleet.js';
import { GPU_SKIP_REASON } from './gpu-env.js';

let file: ShardsFile;
let dir: string;
let models: string;
let server: LoomServer;
let url: string;
const cpu: LoadedPlan[] = [];

describe.skipIf(GPU_SKIP_REASON !== null)('two shards on one GPU behind one front end', () => {
  beforeAll(async () => {
    const manifest = writeFleet(MIXED);
    models = path.join(path.dirname(manifest), 'models');
    dir = path.join(path.dirname(manifest), 'shards');
    await compileShards(readManifest(manifest), dir, { shards: 2 });
    file = readShardsFile(dir);
    const shards = [];
    for (const s of file.shards) {
      shards.push({ id: s.id, device: 'cuda:0', runner: await loadPlan(path.join(dir, s.dir), { backend: 'cuda', device: 0 }) });
      cpu.push(await loadPlan(path.join(dir, s.dir), { backend: 'cpu' }));
    }
    server = createServer({ shards });
    url = await server.listen(0, '127.0.0.1');
  });

  afterAll(async () => {
    await server?.shutdown();
    for (const p of cpu) p.close();
  });

  it('answers every tenant like the CPU backend and onnxruntime', async () => {
    for (const s of file.shards) {
      for (const [i, id] of s.tenants.entries()) {
        const inputs = requestInputs(cpu[s.id]!.plan, id, 1, 40 + i);
        const r = await fetch(`${url}/v2/models/${id}/infer`, { method: 'POST', body: oipBody(inputs) });
        const body = (await r.json()) as { outputs?: OipOutput[]; error?: string };
        expect(r.status, `${id}: ${body.error}`).toBe(200);
        const onCpu = (await cpu[s.id]!.runTick({ [id]: inputs }))[id]!;
        const ort = await runOrt(path.join(models, `${id}.onnx`), inputs);
        for (const o of body.outputs!) {
          const got = fromNumbers('f32', o.shape, o.data);
          expect(relativeError(got, onCpu[o.name]!), `${id}.${o.name} vs CPU`).toBeLessThan(1e-4);
          expect(relativeError(got, ort[o.name]!), `${id}.${o.name} vs onnxruntime`).toBeLessThan(1e-4);
        }
      }
    }
    const metrics = await (await fetch(`${url}/metrics`)).text();
    for (const s of file.shards) expect(metrics).toMatch(new RegExp(`loom_shard_ticks_total\\{shard="${s.id}",device="cuda:0",result="ok"\\} [1-9]`));
  });

  it('refuses a device index the machine does not have', async () => {
    const n = nativeAddonInfo().cudaDevices ?? 0;
    await expect(loadPlan(path.join(dir, file.shards[0]!.dir), { backend: 'cuda', device: n })).rejects.toThrow(new RegExp(`device ${n} does not exist`));
  });
});
