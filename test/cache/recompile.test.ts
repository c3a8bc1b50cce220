// Issue 15's recompile: with the tenant cache, a compile after one tenant changed keeps the earlier plan's
// weights.bin bytes (src/cache/plan-record.ts) and leaves cached tenants' large constants on disk unless
// needed (ir/deferred.ts), and still writes exactly a cold compile's files. A previous weights.bin that
// changed, a corrupt plan record, another layout, or a corrupt cached constant never reach the plan: the
// compile says why and writes every byte (or starts again reading every entry whole).
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeZooModel } from '../../models/index.js';
import { fromNumbers } from '../../ir/tensor.js';
import { encodeModel } from '../../src/onnx/write.js';
import { type CompileResult, compileFleet } from '../../src/fleet/compile.js';

const PLAN_FILES = ['plan.json', 'weights.bin', 'kernels.cu', 'client.ts'];
const root = mkdtempSync(path.join(os.tmpdir(), 'loom-recompile-'));
const models = path.join(root, 'models');
mkdirSync(models, { recursive: true });

// MLPs with 128 KiB weight matrices (left on disk when cached), an LSTM, and a model whose large constant
// the planner lays out without reading it (an Add of a 64 KiB vector).
const MLP = { sizes: [256, 128, 10] };
for (let i = 1; i <= 4; i++) writeZooModel('mlp', { ...MLP, seed: i }, path.join(models, `mlp-${i}.onnx`));
writeZooModel('lstm', { hidden: 64, inputSize: 64, seqLen: 2, seed: 7 }, path.join(models, 'lstm.onnx'));
const WIDE = 16384;
writeFileSync(
  path.join(models, 'add.onnx'),
  encodeModel({
    inputs: [{ name: 'x', dtype: 'f32', shape: ['N', WIDE] }],
    outputs: [{ name: 'y', dtype: 'f32', shape: ['N', WIDE] }],
    nodes: [{ op: 'Add', name: 'add', inputs: ['x', 'c'], outputs: ['y'] }],
    initializers: {
      c: fromNumbers(
        'f32',
        [WIDE],
        Array.from({ length: WIDE }, (_, i) => ((i % 97) - 48) / 32),
      ),
    },
  }),
);

function writeFleet(name: string, ids: readonly string[], precision = 'fp32'): string {
  const file = path.join(root, `${name}.json`);
  writeFileSync(file, JSON.stringify({ tenants: ids.map((id) => ({ id, model: `models/${id}.onnx`, maxBatch: 2 })), precision }));
  return file;
}
const FLEET = ['mlp-1', 'mlp-2', 'mlp-3', 'mlp-4', 'lstm', 'add'];
const fleet = writeFleet('fleet', FLEET);

async function compile(manifest: string, out: string, cache?: string): Promise<CompileResult & { out: string; labels: string[] }> {
  const labels: string[] = [];
  const dir = path.join(root, out);
  const r = await compileFleet(manifest, dir, {
    nvcc: 'off',
    onProgress: (p) => labels.push(p.label),
    ...(cache !== undefined ? { tenantCache: cache, lazyWeights: true } : {}),
  });
  return { ...r, out: dir, labels };
}

function expectSamePlan(a: string, b: string): void {
  for (const f of PLAN_FILES) expect(readFileSync(path.join(b, f)).equals(readFileSync(path.join(a, f))), f).toBe(true);
}

describe('recompile with the tenant cache', () => {
  it('keeps the earlier weights.bin and leaves unneeded constants on disk, writing a cold compile’s bytes', async () => {
    const cache = path.join(root, 'cache-a');
    const cold = await compile(fleet, 'cold-a');
    const fill = await compile(fleet, 'fill-a', cache);
    expectSamePlan(cold.out, fill.out);
    expect(fill.cache?.weights).toMatchObject({ fullBecause: 'no earlier plan recorded' });

    // nothing changed: every blob is kept, no chunk hashed
    const same = await compile(fleet, 'same-a', cache);
    expectSamePlan(cold.out, same.out);
    expect(same.cache).toMatchObject({ hits: 6, misses: 0 });
    expect(same.cache?.weights?.reuse).toMatchObject({ from: path.join(fill.out, 'weights.bin'), rewrittenBlobs: 0, hashedChunks: 0 });
    expect(same.labels.some((l) => /read by the planner/.test(l))).toBe(false); // laid out, never read

    // one tenant ships new weights: only its blobs are written and only their chunks hashed
    writeZooModel('mlp', { ...MLP, seed: 99 }, path.join(models, 'mlp-2.onnx'));
    const warm = await compile(fleet, 'warm-a', cache);
    expect(warm.cache).toMatchObject({ hits: 5, misses: 1 });
    const reuse = warm.cache!.weights!.reuse!;
    expect(reuse.rewrittenBlobs).toBeGreaterThan(0);
    expect(reuse.keptBlobs).toBeGreaterThan(reuse.rewrittenBlobs);
    expect(reuse.hashedChunks).toBeLessThanOrEqual(reuse.totalChunks);
    // its weights.bin was copied while the tenants were read (the same fleet's last plan): no copy left over
    for (const r of [same, warm]) expect(readdirSync(r.out).filter((f) => f.startsWith('weights.bin.'))).toEqual([]);
    const coldWarm = await compile(fleet, 'cold-warm-a');
    expectSamePlan(coldWarm.out, warm.out);
    expect(readFileSync(path.join(warm.out, 'weights.bin')).equals(readFileSync(path.join(cold.out, 'weights.bin')))).toBe(false);
    writeZooModel('mlp', { ...MLP, seed: 2 }, path.join(models, 'mlp-2.onnx'));
  }, 120_000);

  it('plans again with the constants the planner read (bf16 converts every GEMM weight) loaded', async () => {
    const bf16 = writeFleet('bf16', FLEET, 'bf16');
    const cache = path.join(root, 'cache-d');
    const cold = await compile(bf16, 'cold-d');
    await compile(bf16, 'fill-d', cache);
    const warm = await compile(bf16, 'warm-d', cache);
    expect(warm.cache).toMatchObject({ hits: 6, misses: 0 });
    expect(warm.labels.some((l) => /\d+ cached constants? read by the planner; loaded them, planning again/.test(l))).toBe(true);
    expectSamePlan(cold.out, warm.out);
  }, 120_000);

  it('does not keep a weights.bin that changed, a corrupt record, or another layout; the plan is a cold compile’s', async () => {
    const cache = path.join(root, 'cache-b');
    const cold = await compile(fleet, 'cold-b');
    const fill = await compile(fleet, 'fill-b', cache);
    // the earlier plan's weights.bin rewritten in place (same size, other bytes): its stat changed
    const w = path.join(fill.out, 'weights.bin');
    const bytes = readFileSync(w);
    bytes[bytes.length >> 1]! ^= 0x10;
    const fd = openSync(w, 'r+');
    writeSync(fd, bytes, 0, bytes.length, 0);
    closeSync(fd);
    const changed = await compile(fleet, 'changed-b', cache);
    expectSamePlan(cold.out, changed.out);
    expect(changed.cache?.weights?.reuse).toBeUndefined();
    expect(changed.cache?.weights?.passedOver.join('\n')).toMatch(/fill-b\/weights\.bin: changed since it was written/);

    // a record whose text was altered is ignored and deleted
    const plans = path.join(cache, 'plans');
    for (const f of readdirSync(plans)) {
      const text = readFileSync(path.join(plans, f), 'utf8');
      writeFileSync(path.join(plans, f), text.replace(/"bytes":(\d)/, '"bytes":9$1'));
    }
    const tampered = await compile(fleet, 'tampered-b', cache);
    expectSamePlan(cold.out, tampered.out);
    expect(tampered.cache?.weights?.reuse).toBeUndefined();
    expect(tampered.cache?.weights?.passedOver.join('\n')).toMatch(/corrupt; deleted/);

    // a tenant added: another layout, so every byte is written
    const more = writeFleet('more', [...FLEET, 'mlp-5']);
    writeZooModel('mlp', { ...MLP, seed: 5 }, path.join(models, 'mlp-5.onnx'));
    const added = await compile(more, 'added-b', cache);
    expect(added.cache?.weights?.reuse).toBeUndefined();
    expect(added.cache?.weights?.passedOver.join('\n')).toMatch(/another layout/);
    expectSamePlan((await compile(more, 'cold-added-b')).out, added.out);
  }, 120_000);

  it('a corrupt cached constant left on disk: the compile starts again reading entries whole, and recompiles that tenant', async () => {
    const cache = path.join(root, 'cache-c');
    const cold = await compile(fleet, 'cold-c');
    const fill = await compile(fleet, 'fill-c', cache);
    rmSync(fill.out, { recursive: true }); // no earlier weights.bin to keep: every blob is read from its entry
    const entries = readdirSync(path.join(cache, 'entries')).map((f) => path.join(cache, 'entries', f));
    const biggest = entries.sort((a, b) => statSync(b).size - statSync(a).size)[0]!;
    flipInLargestBlob(biggest);
    const r = await compile(fleet, 'again-c', cache);
    expect(r.labels.some((l) => /corrupt \(blob checksum\); compiling again reading every cache entry whole/.test(l))).toBe(true);
    expect(r.cache?.rejected.map((x) => x.reason)).toContain('corrupt (payload checksum)');
    expectSamePlan(cold.out, r.out);
  }, 120_000);
});

// Flips one byte in the middle of an entry's largest blob (entry.ts layout: magic, u32 header size, u32 crc,
// header JSON, zeros to 64, payload).
function flipInLargestBlob(file: string): void {
  const buf = readFileSync(file);
  const headerBytes = buf.readUInt32LE(8);
  const header = JSON.parse(buf.subarray(16, 16 + headerBytes).toString('utf8')) as { blobs: { offset: number; shape: number[] }[] };
  const start = Math.ceil((16 + headerBytes) / 64) * 64;
  const big = header.blobs.map((b) => ({ ...b, n: b.shape.reduce((x, y) => x * y, 1) })).sort((a, b) => b.n - a.n)[0]!;
  const at = start + big.offset + 2 * big.n; // the middle of an f32 blob
  const fd = openSync(file, 'r+');
  const one = Buffer.alloc(1);
  readSync(fd, one, 0, 1, at);
  one[0]! ^= 0x01;
  writeSync(fd, one, 0, 1, at);
  closeSync(fd);
}
