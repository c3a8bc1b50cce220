// bench/compile-time.ts on a tiny fleet (3 tenants, shrunken models): a row with real seconds, peak memory and
// phases, and its table. And the streamed weights.bin: the same bytes as packing the arena in memory, and the
// same bytes as before streaming, BN folding and the recurrent lowering were made faster.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FLEETS, fleetTenants, formatTable, prepareFleet, readWriteFloor, timeCompile } from '../../bench/compile-time.js';
import { writePlanDir } from '../../codegen/index.js';
import { ChunkHasher } from '../../codegen/build.js';
import { generateModel } from '../../models/index.js';
import { importModelBytes } from '../../src/onnx/import.js';
import { canonicalize } from '../../ir/passes/index.js';
import { planFleet } from '../../src/planner/index.js';
import type { Plan, TenantInput } from '../../ir/contract/plan.js';

const SHRINK = {
  mlp: { sizes: [24, 32, 8] },
  encoder: { layers: 1, hidden: 16, heads: 2, ffn: 32, seq: 4, vocabSize: 30, maxPositions: 8 },
  resnet18: { width: 4, resolution: 16, classes: 5 },
};

describe('bench/compile-time.ts', () => {
  it('splits the mixed fleet 1:1:2 and names tenants by kind', () => {
    const mixed = FLEETS.find((f) => f.name === 'mixed')!;
    const kinds = fleetTenants(mixed, 120).map((t) => t.spec.kind);
    expect(kinds.filter((k) => k === 'encoder')).toHaveLength(30);
    expect(kinds.filter((k) => k === 'resnet18')).toHaveLength(30);
    expect(kinds.filter((k) => k === 'mlp')).toHaveLength(60);
    expect(fleetTenants(mixed, 3).map((t) => t.id)).toEqual(['encoder-1', 'resnet18-1', 'mlp-1']);
  });

  it('times a child `loom compile` of a tiny mixed fleet: seconds, peak memory, phases, table', async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'loom-compile-time-'));
    const mixed = FLEETS.find((f) => f.name === 'mixed')!;
    const manifest = prepareFleet(work, mixed, 3, SHRINK);
    expect(prepareFleet(work, mixed, 3, SHRINK)).toBe(manifest); // models reused, not rewritten
    const row = await timeCompile('mixed', manifest, { nvcc: 'off' });
    expect(row.tenants).toBe(3);
    expect(row.seconds).toBeGreaterThan(0);
    expect(row.peakRssBytes).toBeGreaterThan(0);
    expect(row.modelBytes).toBeGreaterThan(0);
    expect(row.weightsBytes).toBeGreaterThan(0);
    const phases = row.phases.map((p) => p.phase);
    for (const p of ['import', 'canonicalize', 'plan', 'weights + kernels', 'client']) expect(phases).toContain(p);
    expect(row.phases.every((p) => p.seconds >= 0)).toBe(true);
    expect(row.cache).toBeUndefined(); // cold: --no-cache
    expect(row.loadavg).toMatch(/^[\d.]+ [\d.]+ [\d.]+$/);

    // the cache modes: fill an empty cache, then recompile with one tenant's model changed
    const cache = path.join(work, 'tenant-cache');
    const filled = await timeCompile('mixed', manifest, { nvcc: 'off', tenantCache: cache, mode: 'cache' });
    expect(filled.cache).toMatchObject({ hits: 0, misses: 3 });
    const before = readFileSync(path.join(path.dirname(manifest), 'first.onnx'));
    expect(prepareFleet(work, mixed, 3, SHRINK, undefined, true)).toBe(manifest); // first.onnx rewritten in place
    expect(readFileSync(path.join(path.dirname(manifest), 'first.onnx')).equals(before)).toBe(false);
    const warm = await timeCompile('mixed', manifest, { nvcc: 'off', tenantCache: cache, mode: 'warm' });
    expect(warm.cache).toMatchObject({ hits: 2, misses: 1 });
    expect(readWriteFloor(manifest, row.weightsBytes)).toBeGreaterThan(0);

    const table = formatTable([row, { ...warm, coldSeconds: row.seconds, floorSeconds: 0.5 }]);
    expect(table).toContain('peak RSS MB');
    expect(table.split('\n')[2]).toMatch(/^mixed\s+cold\s+3\s/);
    expect(table.split('\n')[3]).toMatch(/^mixed\s+warm, 1 changed\s+3\s.*\s2\/3\s/);
  }, 120_000);

  it('the scale fleets: 1,000 zoo MLPs, 10,000 small MLPs over 16 model files', () => {
    const small = FLEETS.find((f) => f.name === 'small-10k')!;
    const tenants = fleetTenants(small, small.tenants!);
    expect(tenants).toHaveLength(10000);
    expect(new Set(tenants.map((t) => t.seed)).size).toBe(16);
    expect(FLEETS.find((f) => f.name === 'mlp-1k')!.tenants).toBe(1000);
  });
});

// Every architecture whose weights compile rewrites: BN folded into convs, LSTM/GRU gates transposed.
const FLEET = [
  { id: 'mlp-1', kind: 'mlp', opts: { seed: 1, sizes: [24, 32, 8] }, maxBatch: 2 },
  { id: 'mlp-2', kind: 'mlp', opts: { seed: 2, sizes: [24, 32, 8] }, maxBatch: 2 },
  { id: 'lstm-1', kind: 'lstm', opts: { seed: 3, hidden: 16, inputSize: 8, seqLen: 2, classes: 4 }, maxBatch: 1 },
  { id: 'gru-1', kind: 'gru', opts: { seed: 4, hidden: 8, inputSize: 4, seqLen: 3, classes: 4 }, maxBatch: 1 },
  { id: 'resnet-1', kind: 'resnet18', opts: { seed: 5, width: 4, resolution: 16, classes: 5 }, maxBatch: 1 },
  { id: 'enc-1', kind: 'encoder', opts: { seed: 6, layers: 1, hidden: 16, heads: 2, ffn: 32, seq: 4, vocabSize: 30, maxPositions: 8 }, maxBatch: 1 },
] as const;

// Computed by the code before the streaming change (whole-arena packing, f64 BN folding and LSTM/GRU transposes);
// recomputed when residual adds moved into GEMM epilogues (weights are laid out in launch order, which moved).
const BEFORE = {
  bytes: 218112,
  weightsSha256: 'fa6337606336fa13faf4486060af6b27670f857e47ef57d23c2b5d0f483dbbb1',
};

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

// The arena as the in-memory packer built it: zeros, each blob copied to its offset.
function packInMemory(plan: Plan): Uint8Array {
  const out = new Uint8Array(plan.arenas.weights);
  for (const w of plan.weights) out.set(new Uint8Array(w.tensor.data.buffer, w.tensor.data.byteOffset, w.tensor.data.byteLength), w.offset);
  return out;
}

describe('streamed weights.bin', () => {
  it('is byte-identical to the in-memory packing and to the files written before streaming', async () => {
    const tenants: TenantInput[] = FLEET.map((t) => ({
      id: t.id,
      model: `${t.id}.onnx`,
      graph: canonicalize(importModelBytes(generateModel(t.kind, t.opts as never).bytes)),
      maxBatch: t.maxBatch,
      sloMs: null,
    }));
    // without the conv bias row (stop 24), whose widened conv weights are not the bytes recorded before streaming
    const plan = planFleet(tenants, { convBiasInGemm: false });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'loom-weights-'));
    const written = await writePlanDir(plan, dir, { nvcc: 'off' });
    const bytes = readFileSync(path.join(dir, 'weights.bin'));
    expect(Buffer.compare(bytes, Buffer.from(packInMemory(plan)))).toBe(0);
    const chunks = new ChunkHasher();
    chunks.update(bytes);
    expect(written.plan.weights.chunks).toEqual(chunks.digest());
    expect(bytes.byteLength).toBe(BEFORE.bytes);
    expect(sha256(bytes)).toBe(BEFORE.weightsSha256);
  }, 60_000);
});
