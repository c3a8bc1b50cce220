// The tenant cache (src/cache/): a compile that reads tenants back from it writes the same bytes as a cold
// compile; a corrupt, truncated or foreign entry is recompiled, never trusted; pruning bounds the folder.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeZooModel } from '../../models/index.js';
import { fromNumbers } from '../../ir/tensor.js';
import { onnx } from '../../src/onnx/proto.js';
import { type ModelSpec, encodeModel } from '../../src/onnx/write.js';
import { type CompileResult, compileFleet } from '../../src/fleet/compile.js';
import { demoFleet, writeDemoFleet } from '../../src/fleet/demo.js';
import { defaultTenantCacheDir } from '../../src/cache/location.js';

const PLAN_FILES = ['plan.json', 'weights.bin', 'kernels.cu', 'client.ts'];
const root = mkdtempSync(path.join(os.tmpdir(), 'loom-tenant-cache-'));
const fleetDir = path.join(root, 'fleet');
const manifest = writeDemoFleet(fleetDir, demoFleet(true)); // MLPs, LSTMs, ResNet-18s, encoders (small)
let n = 0;

async function compile(cache: string | undefined, opts: { maxBytes?: number } = {}): Promise<CompileResult & { out: string }> {
  const out = path.join(root, `plan-${++n}`);
  const r = await compileFleet(manifest, out, {
    nvcc: 'off',
    ...(cache ? { tenantCache: cache } : {}),
    ...(opts.maxBytes !== undefined ? { tenantCacheMaxBytes: opts.maxBytes } : {}),
  });
  return { ...r, out };
}

function expectSamePlan(a: string, b: string): void {
  for (const f of PLAN_FILES) expect(readFileSync(path.join(b, f)).equals(readFileSync(path.join(a, f))), f).toBe(true);
}

const entriesOf = (cache: string) =>
  readdirSync(path.join(cache, 'entries'))
    .filter((f) => f.endsWith('.tenant'))
    .map((f) => path.join(cache, 'entries', f));

describe('tenant cache', () => {
  it('writes the same plan as a cold compile, cold and warm, and after one tenant changed', async () => {
    const cache = path.join(root, 'cache-a');
    const cold = await compile(undefined);
    expect(cold.cache).toBeUndefined();
    const first = await compile(cache);
    expect(first.cache).toMatchObject({ hits: 0, misses: 16, written: 16, rejected: [] });
    expectSamePlan(cold.out, first.out);
    const warm = await compile(cache);
    expect(warm.cache).toMatchObject({ hits: 16, misses: 0, written: 0, rejected: [] });
    expect(warm.tenants).toEqual([]); // no canonical IR when the cache answered
    expectSamePlan(cold.out, warm.out);

    // a tenant ships new weights: only it is compiled, and the plan is what a cold compile gives
    writeZooModel('lstm', { hidden: 32, inputSize: 16, seqLen: 4, seed: 999 }, path.join(fleetDir, 'models', 'lstm-2.onnx'));
    const changed = await compile(cache);
    expect(changed.cache).toMatchObject({ hits: 15, misses: 1, written: 1 });
    const coldChanged = await compile(undefined);
    expectSamePlan(coldChanged.out, changed.out);
    expect(readFileSync(path.join(changed.out, 'weights.bin')).equals(readFileSync(path.join(cold.out, 'weights.bin')))).toBe(false);
  });

  it('recompiles corrupt, truncated and foreign entries, and says why', async () => {
    const cache = path.join(root, 'cache-b');
    const ref = await compile(cache);
    const entries = entriesOf(cache).sort((a, b) => statSync(b).size - statSync(a).size);
    expect(entries.length).toBeGreaterThanOrEqual(4);
    const [big, second, third, fourth] = entries as [string, string, string, string];
    const flipped = readFileSync(big);
    flipped[flipped.length - 5]! ^= 0x40; // one bit of a weight
    writeFileSync(big, flipped);
    truncateSync(second, statSync(second).size - 100);
    copyFileSync(fourth, third); // a valid entry, but another key's
    writeFileSync(fourth, 'not an entry at all');
    const r = await compile(cache);
    expect(r.cache!.hits).toBe(12);
    expect(r.cache!.misses).toBe(4);
    const reasons = r.cache!.rejected.map((x) => x.reason).sort();
    expect(reasons).toEqual([
      'corrupt (payload checksum)',
      'not a tenant cache entry (bad magic)',
      expect.stringMatching(/^truncated or padded \(\d+ bytes, header says \d+\)$/),
      'written for another key',
    ]);
    expectSamePlan(ref.out, r.out);
    const again = await compile(cache); // the rejected entries were rewritten
    expect(again.cache).toMatchObject({ hits: 16, misses: 0, rejected: [] });
  });

  it('keeps the typed client, checked: a tampered one is rendered again', async () => {
    const cache = path.join(root, 'cache-e');
    const first = await compile(cache);
    const clients = readdirSync(path.join(cache, 'clients')).map((f) => path.join(cache, 'clients', f));
    expect(clients).toHaveLength(1);
    const warm = await compile(cache);
    expectSamePlan(first.out, warm.out);
    const rec = JSON.parse(readFileSync(clients[0]!, 'utf8')) as { text: string };
    writeFileSync(clients[0]!, JSON.stringify({ ...rec, text: `${rec.text}// tampered\n` }));
    const again = await compile(cache);
    expectSamePlan(first.out, again.out);
    expect(readFileSync(clients[0]!, 'utf8')).not.toContain('tampered');
  });

  it('does not read an unchanged model once its stat is recorded', async () => {
    const cache = path.join(root, 'cache-c');
    await new Promise((r) => setTimeout(r, 2100)); // past the racy window after the models were written
    const first = await compile(cache);
    expect(first.cache!.modelsRead).toBe(16);
    const warm = await compile(cache);
    expect(warm.cache).toMatchObject({ hits: 16, modelsRead: 0 });
    // a touched model (new mtime, same bytes) is hashed again and still hits
    const f = path.join(fleetDir, 'models', 'mlp-1.onnx');
    writeFileSync(f, readFileSync(f));
    const touched = await compile(cache);
    expect(touched.cache).toMatchObject({ hits: 16, misses: 0, modelsRead: 1 });
  }, 60_000);

  it('prunes least recently used entries past the bound, never this compile’s', async () => {
    const cache = path.join(root, 'cache-d');
    await compile(cache);
    const before = entriesOf(cache).length;
    writeFileSync(path.join(cache, 'entries', `${'0'.repeat(64)}.tenant`), Buffer.alloc(4096)); // an old, unused entry
    const r = await compile(cache, { maxBytes: 1 });
    expect(r.cache!.pruned).toMatchObject({ removed: 1, freedBytes: 4096, maxBytes: 1 });
    expect(entriesOf(cache).length).toBe(before); // every entry this compile used survives
  });

  it('imports a model file shared by several tenants once (cache or not), with the same plan as importing it for each', async () => {
    const dir = path.join(root, 'shared');
    writeZooModel('mlp', { sizes: [16, 12, 4], seed: 5 }, path.join(dir, 'one.onnx'));
    writeZooModel('mlp', { sizes: [16, 12, 4], seed: 6 }, path.join(dir, 'two.onnx'));
    const tenants = ['a', 'b', 'c', 'd'].map((id, i) => ({ id, model: i < 3 ? 'one.onnx' : 'two.onnx', maxBatch: 2 }));
    writeFileSync(path.join(dir, 'fleet.json'), JSON.stringify({ tenants, precision: 'fp32' }));
    const cold = await compileFleet(path.join(dir, 'fleet.json'), path.join(dir, 'cold'), { nvcc: 'off' });
    expect(cold.tenants.map((t) => t.graph.name)).toEqual(['a', 'b', 'c', 'd']);
    const cached = await compileFleet(path.join(dir, 'fleet.json'), path.join(dir, 'cached'), { nvcc: 'off', tenantCache: path.join(dir, 'cache') });
    expect(cached.cache).toMatchObject({ hits: 0, misses: 2, modelsRead: 2, written: 2 }); // b and c share a's
    expectSamePlan(path.join(dir, 'cold'), path.join(dir, 'cached'));
    // the same as three separate copies of the file, each imported on its own
    copyFileSync(path.join(dir, 'one.onnx'), path.join(dir, 'one-b.onnx'));
    copyFileSync(path.join(dir, 'one.onnx'), path.join(dir, 'one-c.onnx'));
    const copies = tenants.map((t, i) => ({ ...t, model: ['one.onnx', 'one-b.onnx', 'one-c.onnx', 'two.onnx'][i]! }));
    writeFileSync(path.join(dir, 'copies.json'), JSON.stringify({ tenants: copies, precision: 'fp32' }));
    await compileFleet(path.join(dir, 'copies.json'), path.join(dir, 'separate'), { nvcc: 'off' });
    for (const f of ['weights.bin', 'kernels.cu'])
      expect(readFileSync(path.join(dir, 'separate', f)).equals(readFileSync(path.join(dir, 'cold', f))), f).toBe(true);
    const planText = (d: string) => readFileSync(path.join(dir, d, 'plan.json'), 'utf8').replace(/one-[bc]\.onnx/g, 'one.onnx');
    expect(planText('separate')).toBe(planText('cold'));
  });

  it('a changed external data file makes its tenant compile again', async () => {
    const dir = path.join(root, 'external');
    mkdirSync(dir, { recursive: true });
    const spec: ModelSpec = {
      inputs: [{ name: 'x', dtype: 'f32', shape: ['N', 3] }],
      outputs: [{ name: 'z', dtype: 'f32', shape: ['N', 3] }],
      nodes: [{ op: 'Add', name: 'add1', inputs: ['x', 'w'], outputs: ['z'] }],
      initializers: { w: fromNumbers('f32', [3], [1, 2, 3]) },
    };
    const m = onnx.ModelProto.decode(encodeModel(spec));
    const w = m.graph!.initializer!.find((i) => i.name === 'w')!;
    w.rawData = new Uint8Array();
    w.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    w.externalData = [{ key: 'location', value: 'w.bin' }];
    writeFileSync(path.join(dir, 'ext.onnx'), onnx.ModelProto.encode(m).finish());
    const data = (v: number[]) => writeFileSync(path.join(dir, 'w.bin'), new Uint8Array(new Float32Array(v).buffer));
    data([1, 2, 3]);
    writeFileSync(path.join(dir, 'fleet.json'), JSON.stringify({ tenants: [{ id: 'ext', model: 'ext.onnx', maxBatch: 2 }], precision: 'fp32' }));
    const fleet = path.join(dir, 'fleet.json');
    const cache = path.join(dir, 'cache');
    await compileFleet(fleet, path.join(dir, 'a'), { nvcc: 'off', tenantCache: cache });
    expect((await compileFleet(fleet, path.join(dir, 'b'), { nvcc: 'off', tenantCache: cache })).cache).toMatchObject({ hits: 1 });
    data([4, 5, 6]); // the model file itself is unchanged
    const changed = await compileFleet(fleet, path.join(dir, 'c'), { nvcc: 'off', tenantCache: cache });
    expect(changed.cache).toMatchObject({ hits: 0, misses: 1, written: 1 });
    await compileFleet(fleet, path.join(dir, 'cold'), { nvcc: 'off' });
    expectSamePlan(path.join(dir, 'cold'), path.join(dir, 'c'));
    expect(readFileSync(path.join(dir, 'c', 'weights.bin')).equals(readFileSync(path.join(dir, 'a', 'weights.bin')))).toBe(false);
  });

  it('defaults to $LOOM_TENANT_CACHE, else $XDG_CACHE_HOME/loom/tenants, else ~/.cache/loom/tenants', () => {
    expect(defaultTenantCacheDir({ LOOM_TENANT_CACHE: '/x/y' })).toBe('/x/y');
    expect(defaultTenantCacheDir({ XDG_CACHE_HOME: '/c' })).toBe('/c/loom/tenants');
    expect(defaultTenantCacheDir({ XDG_CACHE_HOME: 'relative' })).toBe(path.join(os.homedir(), '.cache', 'loom', 'tenants'));
    expect(defaultTenantCacheDir({})).toBe(path.join(os.homedir(), '.cache', 'loom', 'tenants'));
  });
});
