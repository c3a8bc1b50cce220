import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateModel } from '../../models/index.js';
import { encodeModel } from '../../src/onnx/write.js';
import { manifestFromFiles, parseManifest, readManifest } from '../../src/fleet/manifest.js';
import { loadTenants } from '../../src/fleet/tenants.js';
import { expectLoomError } from '../support/errors.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'loom-manifest-'));
mkdirSync(path.join(dir, 'models'));
const small = { sizes: [8, 6, 3] };
writeFileSync(path.join(dir, 'models/a.onnx'), generateModel('mlp', { seed: 1, ...small }).bytes);
writeFileSync(path.join(dir, 'models/b.onnx'), generateModel('mlp', { seed: 2, ...small }).bytes);
writeFileSync(path.join(dir, 'models/junk.onnx'), Buffer.from('definitely not protobuf'));
writeFileSync(
  path.join(dir, 'models/nms.onnx'),
  encodeModel({
    inputs: [{ name: 'x', dtype: 'f32', shape: [1, 4] }],
    outputs: [{ name: 'y', dtype: 'f32', shape: [1, 4] }],
    nodes: [{ op: 'FancyNewOp', name: 'fancy', inputs: ['x'], outputs: ['y'] }],
  }),
);

function writeManifest(name: string, json: unknown): string {
  const file = path.join(dir, name);
  writeFileSync(file, typeof json === 'string' ? json : JSON.stringify(json));
  return file;
}

const ok = (id: string, model = 'models/a.onnx', extra: Record<string, unknown> = {}) => ({ id, model, maxBatch: 4, ...extra });

describe('fleet manifest', () => {
  it('parses a good manifest: paths relative to it, defaults filled', () => {
    const m = readManifest(
      writeManifest('good.json', {
        tenants: [ok('fraud-a', 'models/a.onnx', { sloMs: 20 }), ok('fraud.b_2', 'models/b.onnx', { dims: { seq: 8 } })],
        precision: 'fp32',
      }),
    );
    expect(m.precision).toBe('fp32');
    expect(m.tenants.map((t) => t.id)).toEqual(['fraud-a', 'fraud.b_2']);
    expect(m.tenants[0]!.modelPath).toBe(path.join(dir, 'models/a.onnx'));
    expect(m.tenants[0]!.model).toBe('models/a.onnx');
    expect(m.tenants[0]!.sloMs).toBe(20);
    expect(m.tenants[1]!.sloMs).toBeNull();
    expect(m.tenants[1]!.dims).toEqual({ seq: 8 });
    // precision may be left out
    expect(parseManifest({ tenants: [ok('x')] }, { source: 'inline', baseDir: dir }).precision).toBe('fp32');
  });

  it('missing model file names the tenant, the field and the path', () => {
    const f = writeManifest('missing.json', { tenants: [ok('a'), ok('lost', 'models/nope.onnx')] });
    expectLoomError(() => readManifest(f), 'MANIFEST', "tenant 'lost'", "'model'", 'nope.onnx', 'does not exist');
  });

  it('duplicate ids', () => {
    const f = writeManifest('dup.json', { tenants: [ok('a'), ok('b'), ok('a', 'models/b.onnx')] });
    expectLoomError(() => readManifest(f), 'MANIFEST', "'a'", 'twice', 'tenants[0]', 'tenants[2]');
  });

  it('bad ids', () => {
    for (const id of ['../etc', 'has space', '-leading', '.hidden', 'a/b']) {
      const f = writeManifest('badid.json', { tenants: [ok(id)] });
      expectLoomError(() => readManifest(f), 'MANIFEST', `'${id}'`, "field 'id'", 'letters, digits');
    }
    expectLoomError(() => readManifest(writeManifest('noid.json', { tenants: [{ model: 'models/a.onnx', maxBatch: 1 }] })), 'MANIFEST', 'tenants[0]', "'id'");
    expectLoomError(
      () => readManifest(writeManifest('numid.json', { tenants: [{ id: 7, model: 'models/a.onnx', maxBatch: 1 }] })),
      'MANIFEST',
      'tenants[0]',
      "'id'",
      '7',
    );
  });

  it('precision: fp32, tf32, bf16 and fp16 are accepted; anything else says what is supported', () => {
    for (const p of ['fp32', 'tf32', 'bf16', 'fp16']) expect(readManifest(writeManifest(`${p}.json`, { tenants: [ok('a')], precision: p })).precision).toBe(p);
    const f = writeManifest('int4.json', { tenants: [ok('a')], precision: 'int4' });
    expectLoomError(() => readManifest(f), 'MANIFEST', "'precision'", 'int4', 'supported: fp32, tf32, bf16, fp16');
    expectLoomError(() => readManifest(writeManifest('f16.json', { tenants: [ok('a')], precision: 'f16' })), 'MANIFEST', 'f16', 'fp16');
    expectLoomError(() => readManifest(writeManifest('num.json', { tenants: [ok('a')], precision: 16 })), 'MANIFEST', '16', 'fp32');
  });

  it('bad maxBatch', () => {
    for (const mb of [0, -1, 1.5, 5000, '4', null]) {
      const f = writeManifest('mb.json', { tenants: [ok('a'), { id: 'big', model: 'models/a.onnx', maxBatch: mb }] });
      expectLoomError(() => readManifest(f), 'MANIFEST', "tenant 'big'", "'maxBatch'", '1..4096');
    }
    expectLoomError(
      () => readManifest(writeManifest('nomb.json', { tenants: [{ id: 'a', model: 'models/a.onnx' }] })),
      'MANIFEST',
      "tenant 'a'",
      "'maxBatch'",
      'missing',
    );
  });

  it('other malformed manifests', () => {
    expectLoomError(() => readManifest(writeManifest('notjson.json', '{"tenants": [')), 'MANIFEST', 'notjson.json', 'not valid JSON');
    expectLoomError(() => readManifest(writeManifest('arr.json', [])), 'MANIFEST', 'expected a JSON object');
    expectLoomError(() => readManifest(writeManifest('empty.json', { tenants: [] })), 'MANIFEST', "'tenants'", 'empty');
    expectLoomError(
      () => readManifest(writeManifest('typo.json', { tenants: [{ ...ok('a'), maxbatch: 2 }] })),
      'MANIFEST',
      "tenant 'a'",
      "unknown field 'maxbatch'",
      'maxBatch',
    );
    expectLoomError(() => readManifest(writeManifest('slo.json', { tenants: [ok('a', undefined, { sloMs: -3 })] })), 'MANIFEST', "tenant 'a'", "'sloMs'");
    expectLoomError(
      () => readManifest(writeManifest('dims.json', { tenants: [ok('a', undefined, { dims: { seq: 0 } })] })),
      'MANIFEST',
      "tenant 'a'",
      "'dims.seq'",
    );
    expectLoomError(() => readManifest(path.join(dir, 'absent.json')), 'IO', 'absent.json');
  });

  it('a model that fails import names the tenant and keeps the import error', () => {
    const junk = readManifest(writeManifest('junk.json', { tenants: [ok('good'), ok('broken', 'models/junk.onnx')] }));
    expectLoomError(() => loadTenants(junk), 'MODEL_DECODE', "tenant 'broken'", "field 'model'", 'junk.onnx');
    const nms = readManifest(writeManifest('nms.json', { tenants: [ok('fancy-tenant', 'models/nms.onnx')] }));
    expectLoomError(() => loadTenants(nms), 'UNSUPPORTED_OP', "tenant 'fancy-tenant'", 'FancyNewOp');
  });

  it('loads tenants: imported, canonicalized, named by id', () => {
    const m = readManifest(writeManifest('load.json', { tenants: [ok('t1'), ok('t2', 'models/b.onnx', { maxBatch: 2, sloMs: 5 })] }));
    const seen: string[] = [];
    const ts = loadTenants(m, (t) => seen.push(t.id));
    expect(seen).toEqual(['t1', 't2']);
    expect(ts.map((t) => [t.id, t.model, t.maxBatch, t.sloMs])).toEqual([
      ['t1', 'models/a.onnx', 4, null],
      ['t2', 'models/b.onnx', 2, 5],
    ]);
    expect(ts[0]!.graph.name).toBe('t1');
    expect(ts[0]!.graph.nodes.length).toBeGreaterThan(0);
    expect(ts[0]!.graph.nodes.some((n) => n.op === 'Erf')).toBe(false); // GELU fused into the Gemm epilogue by canonicalize
  });

  it('manifestFromFiles: ids from file names, deduplicated', () => {
    const a = path.join(dir, 'models/a.onnx');
    const b = path.join(dir, 'models/b.onnx');
    const m = manifestFromFiles([a, b, a, a], { maxBatch: 3 });
    expect(m.tenants.map((t) => t.id)).toEqual(['a', 'b', 'a-2', 'a-3']);
    expect(m.tenants.every((t) => t.maxBatch === 3 && t.modelPath === path.resolve(t.model))).toBe(true);
    mkdirSync(path.join(dir, 'odd name'), { recursive: true });
    const odd = path.join(dir, 'odd name', 'my model (v2).onnx');
    writeFileSync(odd, generateModel('mlp', { seed: 3, ...small }).bytes);
    expect(manifestFromFiles([odd]).tenants[0]!.id).toBe('my_model_v2_');
    expectLoomError(() => manifestFromFiles([path.join(dir, 'models/zzz.onnx')]), 'MANIFEST', "tenant 'zzz'", 'does not exist');
    expectLoomError(() => manifestFromFiles([a], { maxBatch: 0 }), 'MANIFEST', '--max-batch', '1..4096');
    expectLoomError(() => manifestFromFiles([]), 'USAGE', 'no model files');
  });
});
