// Precisions of planFleet: tf32 plans are fp32 plans; bf16/fp16 plans hold GEMM weights in bf16/f16, cast
// each activation operand by an eltwise step, keep C and biases f32 (codegen/FORMAT.md "gemm dtype"), and
// still match onnxruntime fp32 within 2e-2 per tenant (plan simulator).
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { bf16ToF32, f16ToF32 } from '../../ir/dtype.js';
import { generateModel } from '../../models/index.js';
import type { Launch } from '../../ir/contract/launch.js';
import { type Plan, type Precision, planFleet } from '../../src/planner/index.js';
import { expectLoomError } from '../support/errors.js';
import { type TestTenant, checkFleet, tenantFromBytes, tenantFromFile } from './fleet-helpers.js';

const TORCH = path.resolve(import.meta.dirname, '../../models/torch/onnx');

const gemms = (p: Plan) => p.launches.filter((l): l is Extract<Launch, { kind: 'gemm' | 'gemm_grouped' }> => l.kind === 'gemm' || l.kind === 'gemm_grouped');
const casts = (p: Plan) =>
  p.launches.filter(
    (l): l is Extract<Launch, { kind: 'kernel' }> =>
      l.kind === 'kernel' && l.op.op === 'eltwise' && JSON.stringify(l.op.program) === '[{"op":"in","i":0}]' && l.segments[0]!.outDType !== 'f32',
  );
const blobAt = (p: Plan, offset: number) => p.weights.find((w) => w.offset === offset);

function mlps(n: number): TestTenant[] {
  return Array.from({ length: n }, (_, i) => tenantFromBytes(`mlp${i}`, generateModel('mlp', { seed: 10 + i, sizes: [64, 128, 128, 10] }).bytes, 4));
}

describe('planFleet precisions', () => {
  it('tf32 gives the fp32 launches and weights; unknown precisions are refused', () => {
    const ts = mlps(3).map((t) => t.input);
    const fp32 = planFleet(ts);
    const tf32 = planFleet(ts, { precision: 'tf32' });
    expect(tf32.precision).toBe('tf32');
    expect(fp32.precision).toBe('fp32');
    expect(JSON.stringify(tf32.launches)).toBe(JSON.stringify(fp32.launches));
    expect(tf32.arenas).toEqual(fp32.arenas);
    expectLoomError(() => planFleet(ts, { precision: 'int8' as Precision }), 'USAGE', 'int8', 'fp32, tf32, bf16, fp16');
  });

  for (const [precision, dt, toF32] of [
    ['bf16', 'bf16', bf16ToF32],
    ['fp16', 'f16', f16ToF32],
  ] as const) {
    it(`${precision}: GEMM weights stored in ${dt}, activations cast once per GEMM input, C and bias f32`, async () => {
      const ts = mlps(8);
      const fp32 = planFleet(ts.map((t) => t.input));
      const plan = planFleet(
        ts.map((t) => t.input),
        { precision },
      );
      expect(plan.precision).toBe(precision);
      const g = gemms(plan);
      expect(g.map((l) => l.kind)).toEqual(['gemm', 'gemm', 'gemm']);
      for (const l of g) {
        if (l.kind !== 'gemm') throw new Error('expected gemm');
        expect(l.dtype).toBe(dt);
        expect(l.entries).toHaveLength(8);
        expect(l.strides).not.toBeNull(); // half weights still packed back to back
        for (const e of l.entries) {
          expect(e.b.arena).toBe('weights');
          const w = blobAt(plan, e.b.offset)!;
          expect(w.tensor.dtype).toBe(dt);
          if (e.bias) expect(blobAt(plan, e.bias.offset)!.tensor.dtype).toBe('f32');
        }
      }
      // the converted weight is the f32 weight rounded to nearest even
      const f0 = gemms(fp32)[0]!;
      const h0 = g[0]!;
      if (f0.kind !== 'gemm' || h0.kind !== 'gemm') throw new Error('expected gemm');
      const wf = blobAt(fp32, f0.entries[3]!.b.offset)!.tensor.data as Float32Array;
      const wh = blobAt(plan, h0.entries[3]!.b.offset)!.tensor.data as Uint16Array;
      expect(wh.length).toBe(wf.length);
      for (let i = 0; i < wf.length; i += 97)
        expect(Math.abs(toF32(wh[i]!) - wf[i]!)).toBeLessThanOrEqual(Math.abs(wf[i]!) * (dt === 'bf16' ? 2 ** -8 : 2 ** -11) + 1e-7);
      // no f32 copy of a GEMM weight is kept: weights take about half the bytes
      expect(plan.arenas.weights).toBeLessThan(fp32.arenas.weights * 0.6);
      // one cast launch per layer (all 8 tenants), each f32 → dt, feeding the GEMM's A
      const c = casts(plan);
      expect(c).toHaveLength(3);
      for (const k of c) {
        expect(k.segments).toHaveLength(8);
        expect(k.op).toEqual({ op: 'eltwise', program: [{ op: 'in', i: 0 }], computeF32: true });
        for (const s of k.segments) expect([s.inputs[0]!.dtype, s.outDType]).toEqual(['f32', dt]);
      }
      for (const [i, l] of g.entries()) {
        if (l.kind !== 'gemm') continue;
        const cast = c[i]!;
        expect(cast.info.stage).toBeLessThan(l.info.stage);
        expect(l.entries.map((e) => e.a)).toEqual(cast.segments.map((s) => s.out));
      }
      const errors = await checkFleet(plan, ts);
      for (const [id, e] of Object.entries(errors)) expect(e, id).toBeLessThanOrEqual(2e-2);
      console.log(`${precision} MLP fleet (plan simulator vs onnxruntime fp32): worst ${Math.max(...Object.values(errors)).toExponential(2)}`);
    });
  }

  it('bf16 convolutions cast the input before im2col, which runs in bf16; attention casts both operands', () => {
    const cnn = tenantFromFile('cnn-bn', path.join(TORCH, 'torch_cnn_bn.onnx'), 2);
    const enc = tenantFromBytes(
      'enc',
      generateModel('encoder', { seed: 7, layers: 1, hidden: 64, heads: 2, ffn: 128, seq: 16, vocabSize: 100, maxPositions: 32 }).bytes,
      2,
    );
    const plan = planFleet([cnn.input, enc.input], { precision: 'bf16' });
    for (const l of gemms(plan)) expect(l.dtype).toBe('bf16');
    const im2col = plan.launches.filter((l) => l.kind === 'kernel' && l.op.op === 'im2col');
    expect(im2col.length).toBeGreaterThan(0);
    for (const l of im2col) if (l.kind === 'kernel') for (const s of l.segments) expect([s.inputs[0]!.dtype, s.outDType]).toEqual(['bf16', 'bf16']);
    // some GEMM reads two activations (Q·Kᵀ, P·V), both cast copies in the act arena
    const actAct = gemms(plan)
      .flatMap((l) => (l.kind === 'gemm' ? l.entries : l.groups.flatMap((x) => x.entries)))
      .filter((e) => e.a.arena === 'act' && e.b.arena === 'act');
    expect(actAct.length).toBeGreaterThan(0);
    const castOuts = new Set(casts(plan).flatMap((k) => k.segments.map((s) => s.out.offset)));
    expect(castOuts.size).toBeGreaterThan(0);
    // every weight a GEMM reads as A or B is bf16; every other weight keeps its dtype (f32 biases, norms)
    const gemmWeightOffsets = new Set(
      gemms(plan).flatMap((l) =>
        (l.kind === 'gemm' ? l.entries : l.groups.flatMap((x) => x.entries))
          .flatMap((e) => [e.a, e.b])
          .filter((r) => r.arena === 'weights')
          .map((r) => r.offset),
      ),
    );
    for (const o of gemmWeightOffsets) expect(plan.weights.find((w) => w.offset <= o && o < w.offset + w.tensor.data.byteLength)!.tensor.dtype).toBe('bf16');
    expect(plan.weights.some((w) => w.tensor.dtype === 'f32')).toBe(true);
  });

  it('bf16 and fp16 mixed fleets (MLPs, encoder, CNNs, LSTM, torch exports) match onnxruntime fp32 within 2e-2', async () => {
    const zoo = (id: string, kind: Parameters<typeof generateModel>[0], opts: object, maxBatch: number): TestTenant =>
      tenantFromBytes(id, generateModel(kind, opts as never).bytes, maxBatch);
    const ts: TestTenant[] = [
      zoo('mlp-a0', 'mlp', { seed: 1, sizes: [32, 64, 10] }, 4),
      zoo('mlp-a1', 'mlp', { seed: 2, sizes: [32, 64, 10], linear: 'matmul', activation: 'relu' }, 4),
      zoo('enc-1', 'encoder', { seed: 7, layers: 2, hidden: 64, heads: 2, ffn: 128, seq: 16, vocabSize: 100, maxPositions: 32 }, 2),
      zoo('mobilenet', 'mobilenet', { seed: 9, resolution: 32, classes: 10, widthMult: 0.25 }, 2),
      zoo('squeezenet', 'squeezenet', { seed: 10, resolution: 32, classes: 10 }, 2),
      tenantFromFile('torch-mlp', path.join(TORCH, 'torch_mlp.onnx'), 3),
      tenantFromFile('cnn-bn', path.join(TORCH, 'torch_cnn_bn.onnx'), 2),
      tenantFromFile('lstm', path.join(TORCH, 'torch_lstm.onnx'), 2),
    ];
    for (const precision of ['bf16', 'fp16'] as const) {
      const plan = planFleet(
        ts.map((t) => t.input),
        { precision },
      );
      const errors = await checkFleet(plan, ts);
      console.log(
        `${precision} mixed fleet (plan simulator vs onnxruntime fp32): ${Object.entries(errors)
          .map(([k, v]) => `${k} ${v.toExponential(1)}`)
          .join(', ')}`,
      );
      for (const [id, e] of Object.entries(errors)) expect(e, `${precision} ${id}`).toBeLessThanOrEqual(2e-2);
    }
  });
});
