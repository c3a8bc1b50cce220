// The model zoo writes real ONNX: onnxruntime loads and runs every generator's output, activations stay
// O(1), seeds are reproducible byte for byte and distinct seeds are distinct tenants.
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { isLoomError } from '../../ir/errors.js';
import { type ZooKind, type ZooModel, type ZOO, ZOO_KINDS, generateModel, isZooKind, writeZooModel } from '../../models/index.js';
import { Rng } from '../../models/random.js';
import { onnx } from '../../src/onnx/proto.js';

type Feeds = Record<string, ort.Tensor>;
type Outputs = Record<string, { dims: readonly number[]; data: Float32Array }>;

// Symbolic dims: 'N' → `batch`, anything else (the encoder's 'S') → 16.
function concreteShape(shape: readonly (number | string)[], batch: number): number[] {
  return shape.map((d) => (typeof d === 'number' ? d : d === 'N' ? batch : 16));
}

function makeFeeds(m: ZooModel, batch: number, seed = 7): Feeds {
  const r = new Rng(seed);
  const feeds: Feeds = {};
  for (const io of m.inputs) {
    const shape = concreteShape(io.shape, batch);
    const n = shape.reduce((a, b) => a * b, 1);
    if (io.dtype === 'i64') {
      const d = new BigInt64Array(n);
      const seq = shape[1]!;
      // attention_mask: row b keeps its first seq - 2b tokens (row 0 unpadded); ids within the smallest vocab used
      for (let j = 0; j < n; j++) d[j] = io.name === 'attention_mask' ? (j % seq < seq - 2 * Math.floor(j / seq) ? 1n : 0n) : BigInt(r.int(500));
      feeds[io.name] = new ort.Tensor('int64', d, shape);
    } else {
      feeds[io.name] = new ort.Tensor('float32', r.normalArray(n, 1), shape);
    }
  }
  return feeds;
}

async function run(m: ZooModel, feeds: Feeds): Promise<Outputs> {
  const session = await ort.InferenceSession.create(m.bytes);
  const res = await session.run(feeds);
  const out: Outputs = {};
  for (const [k, v] of Object.entries(res)) out[k] = { dims: v.dims, data: v.data as Float32Array };
  return out;
}

function stats(d: Float32Array): { std: number; finite: boolean } {
  let s = 0;
  let sq = 0;
  let finite = true;
  for (const x of d) {
    if (!Number.isFinite(x)) finite = false;
    s += x;
    sq += x * x;
  }
  const mean = s / d.length;
  return { std: Math.sqrt(Math.max(0, sq / d.length - mean * mean)), finite };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

// Runs the model and checks declared outputs: names, shapes, finiteness and a sane spread.
async function expectHealthy(m: ZooModel, batch: number): Promise<Outputs> {
  const out = await run(m, makeFeeds(m, batch));
  expect(Object.keys(out).sort()).toEqual(m.outputs.map((o) => o.name).sort());
  for (const o of m.outputs) {
    const got = out[o.name]!;
    expect(got.dims, o.name).toEqual(concreteShape(o.shape, batch));
    const { std, finite } = stats(got.data);
    expect(finite, `${o.name} finite`).toBe(true);
    expect(std, `${m.name} ${o.name} std`).toBeGreaterThan(1e-3);
    expect(std, `${m.name} ${o.name} std`).toBeLessThan(1e3);
  }
  return out;
}

function opCounts(bytes: Uint8Array): Map<string, number> {
  const model = onnx.ModelProto.decode(bytes);
  const counts = new Map<string, number>();
  for (const n of model.graph!.node ?? []) counts.set(n.opType!, (counts.get(n.opType!) ?? 0) + 1);
  return counts;
}

function nodeAttr(bytes: Uint8Array, op: string, attr: string): unknown {
  const n = onnx.ModelProto.decode(bytes).graph!.node?.find((x) => x.opType === op);
  const a = n?.attribute?.find((x) => x.name === attr);
  if (a === undefined) return undefined;
  const T = onnx.AttributeProto.AttributeType;
  return a.type === T.INT ? Number(a.i) : a.type === T.FLOAT ? a.f : a.type === T.INTS ? a.ints!.map(Number) : a;
}

// Small variants, fast enough to run for every seed test.
const SMALL: { readonly [K in ZooKind]: Parameters<(typeof ZOO)[K]['generate']>[0] } = {
  mlp: { seed: 1, sizes: [64, 48, 32, 10] },
  lstm: { seed: 1, hidden: 32, inputSize: 16, seqLen: 5 },
  gru: { seed: 1, hidden: 32, inputSize: 16, seqLen: 5, layers: 2 },
  resnet18: { seed: 1, width: 8, resolution: 64, classes: 20 },
  encoder: { seed: 1, layers: 2, hidden: 32, heads: 4, ffn: 64, seq: 12, vocabSize: 600 },
  mobilenet: { seed: 1, resolution: 64, classes: 20, widthMult: 0.5 },
  squeezenet: { seed: 1, resolution: 66, classes: 20 },
};

function small<K extends ZooKind>(kind: K, seed: number): ZooModel {
  return generateModel(kind, { ...SMALL[kind], seed } as never);
}

describe('every zoo generator', () => {
  for (const kind of ZOO_KINDS) {
    it(`${kind}: runs in onnxruntime with healthy outputs; seeds are reproducible and distinct`, async () => {
      const a = small(kind, 1);
      const again = small(kind, 1);
      const b = small(kind, 2);
      expect(a.kind).toBe(kind);
      expect(Buffer.compare(Buffer.from(a.bytes), Buffer.from(again.bytes))).toBe(0);
      expect(Buffer.compare(Buffer.from(a.bytes), Buffer.from(b.bytes))).not.toBe(0);
      expect(a.paramCount).toBe(b.paramCount);
      const outA = await expectHealthy(a, 2);
      const outB = await run(b, makeFeeds(b, 2));
      for (const o of a.outputs) expect(maxAbsDiff(outA[o.name]!.data, outB[o.name]!.data), o.name).toBeGreaterThan(1e-3);
    });
  }
});

describe('default (full-size) models', () => {
  it('resnet18 is the real ResNet-18 (torchvision parameter count) and runs at batch 1, 224x224', async () => {
    const m = generateModel('resnet18', { seed: 5 });
    expect(m.paramCount).toBe(11_689_512);
    expect(m.inputs).toEqual([{ name: 'input', dtype: 'f32', shape: ['N', 3, 224, 224] }]);
    const ops = opCounts(m.bytes);
    expect(ops.get('Conv')).toBe(20);
    expect(ops.get('BatchNormalization')).toBe(20); // unfolded, one per Conv
    expect(ops.get('Add')).toBe(8);
    expect([ops.get('MaxPool'), ops.get('GlobalAveragePool'), ops.get('Flatten'), ops.get('Gemm')]).toEqual([1, 1, 1, 1]);
    await expectHealthy(m, 1);
  });

  it('encoder (4 layers, hidden 256, seq 64): masked tokens do not change unmasked outputs', async () => {
    const m = generateModel('encoder', { seed: 5 });
    expect(m.inputs.map((i) => [i.name, i.dtype, i.shape])).toEqual([
      ['input_ids', 'i64', ['N', 64]],
      ['attention_mask', 'i64', ['N', 64]],
    ]);
    const ops = opCounts(m.bytes);
    expect(ops.get('LayerNormalization')).toBe(1 + 2 * 4);
    expect(ops.get('Softmax')).toBe(4);
    expect(ops.get('Erf')).toBe(4);
    expect(ops.get('Reshape')).toBe(4 * 4);
    const feeds = makeFeeds(m, 2);
    const out = await expectHealthy(m, 2);
    // row 1 masks its last 2 tokens: changing those ids must leave row 1's other positions unchanged
    const ids = (feeds.input_ids!.data as BigInt64Array).slice();
    ids[64 + 63] = 1n;
    ids[64 + 62] = 2n;
    const out2 = await run(m, { ...feeds, input_ids: new ort.Tensor('int64', ids, [2, 64]) });
    const h1 = out.last_hidden_state!.data;
    const h2 = out2.last_hidden_state!.data;
    const H = 256;
    expect(maxAbsDiff(h1.subarray(64 * H, (64 + 62) * H), h2.subarray(64 * H, (64 + 62) * H))).toBeLessThan(1e-4);
    expect(maxAbsDiff(h1.subarray((64 + 62) * H, 128 * H), h2.subarray((64 + 62) * H, 128 * H))).toBeGreaterThan(1e-2);
  });

  it('mobilenet and squeezenet match torchvision parameter counts and run at 224x224', async () => {
    const mb = generateModel('mobilenet', { seed: 5 });
    expect(mb.paramCount).toBe(2_542_856); // torchvision mobilenet_v3_small
    const ops = opCounts(mb.bytes);
    expect(ops.get('HardSigmoid')).toBe(9);
    expect(nodeAttr(mb.bytes, 'HardSigmoid', 'alpha')).toBeCloseTo(1 / 6, 6);
    expect(ops.get('HardSwish')).toBeGreaterThan(10);
    await expectHealthy(mb, 1);
    const sq = generateModel('squeezenet', { seed: 5 });
    expect(sq.paramCount).toBe(1_235_496); // torchvision squeezenet1_1
    expect(opCounts(sq.bytes).get('Concat')).toBe(8);
    expect(nodeAttr(sq.bytes, 'MaxPool', 'ceil_mode')).toBe(1);
    await expectHealthy(sq, 1);
  });

  it('mlp default is 784-512-512-10 with the Erf GELU pattern torch writes', async () => {
    const m = generateModel('mlp', { seed: 5 });
    expect(m.inputs[0]!.shape).toEqual(['N', 784]);
    expect(m.outputs[0]!.shape).toEqual(['N', 10]);
    const nodes = (onnx.ModelProto.decode(m.bytes).graph!.node ?? []).filter((n) => n.opType !== 'Constant').map((n) => n.opType);
    expect(nodes).toEqual(['Gemm', 'Div', 'Erf', 'Add', 'Mul', 'Mul', 'Gemm', 'Div', 'Erf', 'Add', 'Mul', 'Mul', 'Gemm']);
    expect(nodeAttr(m.bytes, 'Gemm', 'transB')).toBe(1);
    await expectHealthy(m, 3);
  });

  it('lstm and gru defaults: hidden 256, input 128, 8 steps, layout 0; GRU linear_before_reset=1', async () => {
    for (const kind of ['lstm', 'gru'] as const) {
      const m = generateModel(kind, { seed: 5 });
      expect(m.inputs[0]!.shape).toEqual([8, 'N', 128]);
      const op = kind === 'lstm' ? 'LSTM' : 'GRU';
      const w = onnx.ModelProto.decode(m.bytes).graph!.initializer!.find((t) => t.name === `onnx::${op}_W_l0`)!;
      expect(w.dims).toEqual([1, (kind === 'lstm' ? 4 : 3) * 256, 128]);
      expect(nodeAttr(m.bytes, op, 'hidden_size')).toBe(256);
      if (kind === 'gru') expect(nodeAttr(m.bytes, 'GRU', 'linear_before_reset')).toBe(1);
      await expectHealthy(m, 4);
    }
  });
});

describe('variants and options', () => {
  it('fixed batch sizes are declared and run', async () => {
    const m = generateModel('mlp', { seed: 3, sizes: [20, 10], batch: 3, activation: 'relu', linear: 'matmul' });
    expect(m.inputs[0]!.shape).toEqual([3, 20]);
    expect(opCounts(m.bytes).get('MatMul')).toBe(1);
    await expectHealthy(m, 3);
  });

  it('encoder with a symbolic sequence length, -10000 mask and no pooler', async () => {
    const m = generateModel('encoder', {
      seed: 3,
      layers: 1,
      hidden: 64,
      heads: 2,
      ffn: 128,
      seq: 'S',
      vocabSize: 600,
      pooler: false,
      maskValue: 'minus-10000',
    });
    expect(m.inputs[0]!.shape).toEqual(['N', 'S']);
    expect(m.outputs.map((o) => o.name)).toEqual(['last_hidden_state']);
    expect(opCounts(m.bytes).get('Slice')).toBe(2);
    await expectHealthy(m, 3);
  });

  it('squeezenet AveragePool head equals the GlobalAveragePool head', async () => {
    const g = generateModel('squeezenet', { seed: 4, resolution: 66, classes: 10 });
    const a = generateModel('squeezenet', { seed: 4, resolution: 66, classes: 10, headPool: 'average' });
    expect(opCounts(a.bytes).get('AveragePool')).toBe(1);
    const feeds = makeFeeds(g, 2);
    const [og, oa] = [await run(g, feeds), await run(a, feeds)];
    expect(maxAbsDiff(og.output!.data, oa.output!.data)).toBeLessThan(1e-4);
  });

  it('writeZooModel writes the same bytes generateModel returns', () => {
    const path = join(tmpdir(), `loom-zoo-${process.pid}`, 'sub', 'gru.onnx');
    const m = writeZooModel('gru', { seed: 9, hidden: 16, inputSize: 8, seqLen: 3 }, path);
    expect(Buffer.compare(readFileSync(path), Buffer.from(m.bytes))).toBe(0);
  });

  it('bad kinds and options are USAGE errors naming the option', () => {
    expect(isZooKind('resnet18')).toBe(true);
    expect(isZooKind('toString')).toBe(false);
    const usage = (f: () => unknown, word: string): void => {
      try {
        f();
        expect.unreachable('should have thrown');
      } catch (e) {
        expect(isLoomError(e) && e.code === 'USAGE', String(e)).toBe(true);
        expect((e as Error).message).toContain(word);
      }
    };
    usage(() => generateModel('vgg' as ZooKind, { seed: 1 } as never), 'vgg');
    usage(() => generateModel('encoder', { seed: 1, hidden: 30, heads: 4 }), 'heads');
    usage(() => generateModel('mlp', { seed: 1, sizes: [10] }), 'sizes');
    usage(() => generateModel('lstm', { seed: 1.5 }), 'seed');
    usage(() => generateModel('resnet18', { seed: 1, batch: 0 }), 'batch');
  });
});
