import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isLoomError } from '../../ir/errors.js';
import {
  FORMAT_VERSION,
  loadWeights,
  loadWeightsAsync,
  readPlanDir,
  renderKernelsCu,
  renderLaunchJson,
  streamWeights,
  writePlanDir,
  parseLaunchPlan,
} from '../../codegen/index.js';
import { WEIGHT_CHUNK_ASYNC } from '../../codegen/read.js';
import { ChunkHasher } from '../../codegen/build.js';
import { stableJson } from '../../codegen/json.js';
import { WEIGHT_HASH_CHUNK, type WeightsTable } from '../../ir/contract/launch-plan.js';
import { samplePlan } from './fixture.js';
import type { Plan } from '../../ir/contract/plan.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'loom-codegen-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const freshDir = (): string => path.join(tmp, `plan${n++}`);

function loomError(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    if (isLoomError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected a LoomError');
}

// A plan as written before chunk hashes: the whole file's sha256 (such plans still load).
function wholeFileHash(w: WeightsTable): WeightsTable {
  const { chunks: _chunks, ...rest } = w;
  return rest;
}

describe('writePlanDir / readPlanDir', () => {
  it('round-trips the plan and is deterministic', async () => {
    const a = freshDir();
    const b = freshDir();
    const wa = await writePlanDir(samplePlan(), a, { nvcc: 'off' });
    const wb = await writePlanDir(samplePlan(), b, { nvcc: 'off' });
    for (const f of ['plan.json', 'weights.bin', 'kernels.cu']) expect(readFileSync(path.join(a, f))).toEqual(readFileSync(path.join(b, f)));
    expect(wa.nvccSkipped).toBe('nvcc: off');
    const read = readPlanDir(a);
    expect(read).toEqual(wa.plan);
    expect(read.version).toBe(FORMAT_VERSION);
    expect(read.kernels.cubin).toBeNull();
    // non-finite and signed-zero constants survive JSON
    const fill = read.launches.find((l) => l.id === 14)!;
    expect(fill.kind === 'kernel' && fill.op.op === 'fill' && fill.op.value).toBe(-Infinity);
    const elt = read.launches.find((l) => l.id === 18)!;
    const prog = elt.kind === 'kernel' && elt.op.op === 'eltwise' ? elt.op.program : [];
    expect(prog[4]).toEqual({ op: 'const', v: NaN });
    expect(Object.is((prog[7] as { v: number }).v, -0)).toBe(true);
    expect(prog[6]).toEqual({ op: 'clip', min: -Infinity, max: 6 });
    // the emit functions print what the dir holds (minus the cubin, not built there)
    expect(renderLaunchJson(samplePlan())).toBe(readFileSync(path.join(a, 'plan.json'), 'utf8'));
    expect(renderKernelsCu(samplePlan())).toBe(readFileSync(path.join(a, 'kernels.cu'), 'utf8'));
  });

  it('key order does not depend on how the planner built its objects', async () => {
    const p = samplePlan();
    const shuffled = JSON.parse(JSON.stringify({ ...p, weights: [] }), (_k, v: unknown) =>
      v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).reverse()) : v,
    ) as Plan;
    const fill = { ...shuffled, weights: p.weights, launches: p.launches } as Plan;
    const a = renderLaunchJson(p);
    const b = renderLaunchJson({ ...fill, tenants: shuffled.tenants, cost: shuffled.cost, arenas: shuffled.arenas });
    expect(b).toBe(a);
  });

  it('writes weights.bin with every blob at its offset and zero padding', async () => {
    const dir = freshDir();
    const w = await writePlanDir(samplePlan(), dir, { nvcc: 'off' });
    const bin = loadWeights(dir, w.plan);
    expect(bin.byteLength).toBe(176);
    const f32 = new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + 112));
    expect([...f32.slice(0, 12)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect([...f32.slice(12, 24)]).toEqual([-1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12]);
    expect([...f32.slice(24, 27)]).toEqual([0.5, -0.5, 0.25]);
    expect([...bin.slice(108, 112)]).toEqual([0, 0, 0, 0]); // padding
    const dv = new DataView(bin.buffer, bin.byteOffset, bin.byteLength);
    expect([0, 1, 2, 3].map((i) => dv.getInt32(112 + 4 * i, true))).toEqual([3, -1, 0, 2]);
    expect(dv.getBigInt64(128, true)).toBe(1n);
    expect(dv.getBigInt64(136, true)).toBe(-1n);
    expect(dv.getUint16(160, true)).toBe(15360);
    expect([...bin.slice(164)]).toEqual(new Array(12).fill(0));
    expect(w.plan.weights.blobs.map((b) => [b.offset, b.bytes, b.dtype])).toEqual([
      [0, 48, 'f32'],
      [48, 48, 'f32'],
      [96, 12, 'f32'],
      [112, 16, 'i32'],
      [128, 16, 'i64'],
      [160, 4, 'f16'],
    ]);
  });

  it('emits one kernel per distinct kernel key and names every kernel launch', async () => {
    const dir = freshDir();
    const w = await writePlanDir(samplePlan(), dir, { nvcc: 'off' });
    const src = readFileSync(path.join(dir, 'kernels.cu'), 'utf8');
    const defs = [...src.matchAll(/extern "C" __global__ void __launch_bounds__\(256\) (\w+)\(/g)].map((m) => m[1]);
    // 20 kernel launches; 2 and 17 share op and dtypes but not their segments' layout, so each has its own
    // layout-fixed kernel (codegen/fixed-layout.ts)
    expect(defs.length).toBe(20);
    expect(new Set(defs).size).toBe(20);
    const names = w.plan.kernels.names;
    expect(Object.keys(names).length).toBe(20);
    expect(names['2']).not.toBe(names['17']);
    expect(names['13']).not.toBe(names['19']); // copy f32→f32 vs f32→f16
    for (const name of Object.values(names)) expect(defs).toContain(name);
    expect(w.plan.kernels.grids['2']).toEqual({ name: names['2'], block: 256, grid: 1, mapping: 'thread', work: [6, 6] });
    expect(w.plan.kernels.grids['5']).toMatchObject({ mapping: 'block', grid: 4, work: [2, 2] });
    // the eltwise program became straight-line code over the prelude's helpers
    expect(src).toContain('const acc_t t1 = loom_mul(t0, ((acc_t)0.5));');
    expect(src).toContain('loom_act_relu(t1)');
    // per-segment constants are read from the segment table (launch 20)
    expect(src).toContain('const acc_t t3 = loom_mul(t2, ((acc_t)seg.params[1]));');
    expect(src).toContain('double params[16];');
    // the depthwise kernel (launch 21) adds the channel's bias and clips
    expect(src).toContain('acc_t a = loom_cvt<acc_t>(((const float*)views[seg.firstView + 2].ptr)[ch]);');
    expect(src).toContain('loom_act_clip(a, ((acc_t)0.0), ((acc_t)6.0))');
  });

  it('rejects corrupt, truncated and future plans with clear errors', async () => {
    const dir = freshDir();
    await writePlanDir(samplePlan(), dir, { nvcc: 'off' });
    const planFile = path.join(dir, 'plan.json');
    const good = readFileSync(planFile, 'utf8');

    writeFileSync(planFile, good.slice(0, good.length / 2));
    let e = loomError(() => readPlanDir(dir));
    expect(e.code).toBe('PLAN_INVALID');
    expect(e.message).toMatch(/not valid JSON \(truncated or corrupt\?\)/);

    writeFileSync(planFile, good.replace('"version": 2', '"version": 7'));
    e = loomError(() => readPlanDir(dir));
    expect(e.code).toBe('PLAN_INVALID');
    expect(e.message).toMatch(/format version 7, this Loom reads versions 1 to 2/);

    // a version-1 plan (written before im2col's ones row and the conv op, which it cannot hold) reads as before
    writeFileSync(planFile, good.replace('"version": 2', '"version": 1'));
    expect(readPlanDir(dir).version).toBe(1);
    writeFileSync(planFile, good.replace('"version": 2', '"version": 0'));
    expect(loomError(() => readPlanDir(dir)).message).toMatch(/format version 0 is not supported \(this Loom reads versions 1 to 2\)/);

    writeFileSync(planFile, good.replace('"format": "loom-launchplan"', '"format": "other"'));
    expect(loomError(() => readPlanDir(dir)).message).toMatch(/not a Loom launch plan/);

    writeFileSync(planFile, good.replace('"m": 2,', '"m": "2",'));
    expect(loomError(() => readPlanDir(dir)).message).toMatch(/launches\[0\]\.problem\.m: expected an integer >= 0, got "2"/);

    const j = JSON.parse(good);
    j.launches[0].strides = null;
    j.launches[0].entries[1].c.offset = 2040; // C of 2x3 f32 = 24 bytes past an act arena of 2048
    writeFileSync(planFile, JSON.stringify(j));
    expect(loomError(() => readPlanDir(dir)).message).toMatch(/launch 0 \(gemm\) entry 1 C: bytes \[2040, 2064\) fall outside arena 'act' of 2048 bytes/);

    const k = JSON.parse(good);
    k.launches[2].op.program = [{ op: 'in', i: 0 }, { op: 'add' }];
    writeFileSync(planFile, JSON.stringify(k));
    expect(loomError(() => readPlanDir(dir)).message).toMatch(/instruction 1 \('add'\) pops 2 values from a stack of 1/);

    const q = JSON.parse(good);
    q.launches[20].segments[0].params = [0.25];
    writeFileSync(planFile, JSON.stringify(q));
    expect(loomError(() => readPlanDir(dir)).message).toMatch(
      /launch 20 \(kernel, index 20\) segment 0: program instruction 6 reads param 1 but the segment has 1 params/,
    );
    q.launches[3].segments[0].params = [1];
    writeFileSync(planFile, JSON.stringify(q));
    expect(loomError(() => readPlanDir(dir)).message).toMatch(/launches\[3\]\.segments\[0\]\.params: a 'reduce' segment has no 'params'/);

    const m = JSON.parse(good);
    delete m.launches[3].segments[0].dims;
    writeFileSync(planFile, JSON.stringify(m));
    expect(loomError(() => readPlanDir(dir)).message).toMatch(/launch 3 \(kernel\) 'reduce' segment 0: 'dims' is missing/);

    const f = JSON.parse(good);
    f.launches[3].segments[0].count = 4; // a fill/gather_table field on a reduce segment
    writeFileSync(planFile, JSON.stringify(f));
    expect(loomError(() => readPlanDir(dir)).message).toMatch(/launches\[3\]\.segments\[0\]\.count: a 'reduce' segment has no 'count' \(it carries dims\)/);

    rmSync(planFile);
    expect(loomError(() => readPlanDir(dir)).code).toBe('IO');
  });

  it('checks weights.bin size and sha256', async () => {
    const dir = freshDir();
    const w = await writePlanDir(samplePlan(), dir, { nvcc: 'off' });
    const file = path.join(dir, 'weights.bin');
    const good = readFileSync(file);
    writeFileSync(file, good.subarray(0, 100));
    let e = loomError(() => loadWeights(dir, w.plan));
    expect(e.code).toBe('PLAN_INVALID');
    expect(e.message).toMatch(/has 100 bytes, plan.json expects 176/);
    const flipped = Buffer.from(good);
    flipped[5]! ^= 1;
    writeFileSync(file, flipped);
    e = loomError(() => loadWeights(dir, w.plan));
    expect(e.message).toMatch(/is corrupt: sha256/);
    // the overlapped reader loadPlan uses says the same
    await expect(loadWeightsAsync(dir, w.plan)).rejects.toMatchObject({ code: 'PLAN_INVALID', message: expect.stringMatching(/is corrupt: sha256/) });
    writeFileSync(file, good.subarray(0, 100));
    await expect(loadWeightsAsync(dir, w.plan)).rejects.toMatchObject({ code: 'PLAN_INVALID', message: expect.stringMatching(/has 100 bytes/) });
    writeFileSync(file, good);
    expect(Buffer.from(await loadWeightsAsync(dir, w.plan)).equals(good)).toBe(true);
  });

  it('checks each 1 MiB chunk of a plan with weights.chunks, naming the bad one as soon as it is read', async () => {
    const dir = freshDir();
    const w = await writePlanDir(samplePlan(), dir, { nvcc: 'off' });
    const big = Buffer.alloc(3 * WEIGHT_HASH_CHUNK + 4321);
    for (let i = 0; i + 4 <= big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
    writeFileSync(path.join(dir, 'weights.bin'), big);
    const hasher = new ChunkHasher();
    hasher.update(big);
    const chunks = hasher.digest();
    expect(chunks.sha256).toHaveLength(4);
    const plan = { ...w.plan, weights: { ...w.plan.weights, bytes: big.length, chunks } };
    expect(Buffer.from(loadWeights(dir, plan)).equals(big)).toBe(true);
    expect(Buffer.from(await loadWeightsAsync(dir, plan)).equals(big)).toBe(true);
    big[WEIGHT_HASH_CHUNK + 17]! ^= 1; // chunk 1
    writeFileSync(path.join(dir, 'weights.bin'), big);
    const message = new RegExp(`is corrupt: sha256 of bytes \\[${WEIGHT_HASH_CHUNK}, ${2 * WEIGHT_HASH_CHUNK}\\) .*weights\\.chunks\\.sha256\\[1\\]`);
    expect(loomError(() => loadWeights(dir, plan)).message).toMatch(message);
    await expect(loadWeightsAsync(dir, plan)).rejects.toMatchObject({ code: 'PLAN_INVALID', message: expect.stringMatching(message) });
    // a plan.json with both records, or a wrong number of chunk hashes, is refused
    expect(() => parseLaunchPlan(stableJson({ ...plan, weights: { ...plan.weights, sha256: 'a'.repeat(64) } }))).toThrow(/weights\.sha256/);
    expect(() => parseLaunchPlan(stableJson({ ...plan, weights: { ...plan.weights, chunks: { ...chunks, sha256: chunks.sha256.slice(1) } } }))).toThrow(
      /expected 4 chunk hashes/,
    );
  });

  it('reads weights over several chunks (the async reader: 8 MiB, so a server loading its next plan keeps answering)', async () => {
    const dir = freshDir();
    const w = await writePlanDir(samplePlan(), dir, { nvcc: 'off' });
    expect(WEIGHT_CHUNK_ASYNC).toBe(8 << 20);
    // three chunks and a ragged tail, every byte different from its neighbours in the next chunk
    const big = Buffer.alloc(3 * WEIGHT_CHUNK_ASYNC + 12345);
    for (let i = 0; i + 4 <= big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
    writeFileSync(path.join(dir, 'weights.bin'), big);
    const plan = { ...w.plan, weights: { ...wholeFileHash(w.plan.weights), bytes: big.length, sha256: createHash('sha256').update(big).digest('hex') } };
    expect(Buffer.from(await loadWeightsAsync(dir, plan)).equals(big)).toBe(true);
    expect(Buffer.from(loadWeights(dir, plan)).equals(big)).toBe(true);
    // a flipped byte in the last chunk is caught
    big[big.length - 7]! ^= 1;
    writeFileSync(path.join(dir, 'weights.bin'), big);
    await expect(loadWeightsAsync(dir, plan)).rejects.toMatchObject({ code: 'PLAN_INVALID', message: expect.stringMatching(/is corrupt: sha256/) });
  });

  it('streams weights into a sink: windows of its own or buffers of the reader, in order, refused when corrupt', async () => {
    const dir = freshDir();
    const w = await writePlanDir(samplePlan(), dir, { nvcc: 'off' });
    const big = Buffer.alloc(2 * WEIGHT_CHUNK_ASYNC + 999);
    for (let i = 0; i + 4 <= big.length; i += 4) big.writeUInt32LE((i * 2246822519) >>> 0, i);
    writeFileSync(path.join(dir, 'weights.bin'), big);
    const plan = { ...w.plan, weights: { ...wholeFileHash(w.plan.weights), bytes: big.length, sha256: createHash('sha256').update(big).digest('hex') } };
    for (const mode of ['window', 'data'] as const) {
      const out = new Uint8Array(big.length);
      const commits: Array<[number, number, boolean]> = [];
      let open = 0;
      let most = 0;
      await streamWeights(dir, plan, {
        window: (at, bytes) => {
          if (mode === 'data') return null;
          most = Math.max(most, ++open);
          return out.subarray(at, at + bytes);
        },
        commit: (at, bytes, data) => {
          if (mode === 'window') open--;
          if (data) out.set(data, at);
          commits.push([at, bytes, data !== null]);
        },
      });
      expect(Buffer.from(out).equals(big)).toBe(true);
      expect(commits).toEqual([
        [0, WEIGHT_CHUNK_ASYNC, mode === 'data'],
        [WEIGHT_CHUNK_ASYNC, WEIGHT_CHUNK_ASYNC, mode === 'data'],
        [2 * WEIGHT_CHUNK_ASYNC, 999, mode === 'data'],
      ]);
      if (mode === 'window') expect(most).toBe(2); // the next chunk is read while the last is hashed
    }
    // every chunk reached the sink, but the stream is refused: the caller must not use what it got
    big[3]! ^= 1;
    writeFileSync(path.join(dir, 'weights.bin'), big);
    let committed = 0;
    await expect(streamWeights(dir, plan, { window: () => null, commit: (_at, n) => void (committed += n) })).rejects.toMatchObject({
      code: 'PLAN_INVALID',
      message: expect.stringMatching(/is corrupt: sha256/),
    });
    expect(committed).toBe(big.length);
    // a sink that fails stops the stream with its error (no read left running)
    await expect(
      streamWeights(dir, plan, {
        window: () => null,
        commit: () => {
          throw new Error('sink full');
        },
      }),
    ).rejects.toThrow('sink full');
  });

  it('rejects planner bugs at write time', async () => {
    const p = samplePlan();
    const badRef: Plan = { ...p, arenas: { ...p.arenas, act: 100 } };
    await expect(writePlanDir(badRef, freshDir(), { nvcc: 'off' })).rejects.toThrow(/fall outside arena 'act' of 100 bytes/);
    const overlap: Plan = { ...p, weights: [...p.weights, { offset: 40, tensor: p.weights[2]!.tensor }] };
    await expect(writePlanDir(overlap, freshDir(), { nvcc: 'off' })).rejects.toThrow(/overlaps the previous blob/);
    const mixed: Plan = {
      ...p,
      launches: p.launches.map((l) =>
        l.id === 13 && l.kind === 'kernel' ? { ...l, segments: [l.segments[0]!, { ...l.segments[1]!, outDType: 'f16' as const }] } : l,
      ),
    };
    await expect(writePlanDir(mixed, freshDir(), { nvcc: 'off' })).rejects.toThrow(/segment 1 has dtypes f32->f16 but segment 0 has f32->f32/);
  });
});
