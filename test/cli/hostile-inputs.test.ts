// Hostile files through the real `bin/loom.js` (needs a fresh dist/: `npm run build`): every one is the
// user's mistake, so each must end in bounded time with exit 2 and one line naming what is wrong — never a
// hang (FIFOs, /dev/zero), never an unbounded read, never "internal error" (100k nested brackets).
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateModel } from '../../models/index.js';
import { compileFleet } from '../../src/fleet/compile.js';
import { onnx } from '../../src/onnx/proto.js';
import { makeFifo } from '../support/fifo.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'loom-hostile-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const TIME_LIMIT_MS = 20_000;

function loom(...args: string[]) {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/loom.js'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: TIME_LIMIT_MS,
    killSignal: 'SIGKILL',
  });
  return { code: r.status, err: r.stderr ?? '', ms: Date.now() - t0 };
}

function expectOneLineError(r: ReturnType<typeof loom>, code: string, ...mentions: string[]) {
  expect(r.code, `exit ${r.code} after ${r.ms} ms (null: killed at the ${TIME_LIMIT_MS} ms limit): ${r.err}`).toBe(2);
  const lines = r.err.trim().split('\n');
  expect(lines, r.err).toHaveLength(1);
  expect(lines[0]).toContain(`[${code}]`);
  expect(lines[0]).not.toContain('internal error');
  for (const m of mentions) expect(lines[0]).toContain(m);
}

const models = path.join(tmp, 'models');
const plan = path.join(tmp, 'plan');
const manifestOf = (name: string, body: unknown): string => {
  const f = path.join(tmp, name);
  writeFileSync(f, typeof body === 'string' ? body : JSON.stringify(body));
  return f;
};

beforeAll(async () => {
  mkdirSync(models);
  writeFileSync(path.join(models, 'a.onnx'), generateModel('mlp', { seed: 3, sizes: [8, 6, 3] }).bytes);
  const fleet = manifestOf('fleet.json', { tenants: [{ id: 'a', model: 'models/a.onnx', maxBatch: 2 }] });
  await compileFleet(fleet, plan, { nvcc: 'off' });
});

describe('hostile manifests', () => {
  it('100k nested brackets: MANIFEST, not a stack overflow', () => {
    expectOneLineError(
      loom('compile', manifestOf('deep.json', `{"tenants": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`), '-o', path.join(tmp, 'o1'), '--quiet'),
      'MANIFEST',
      'nested',
    );
    expectOneLineError(loom('compile', manifestOf('deep2.json', '['.repeat(100_000)), '-o', path.join(tmp, 'o1'), '--quiet'), 'MANIFEST');
  });

  it('wrong types and huge numbers in fields', () => {
    const t = { id: 'a', model: 'models/a.onnx', maxBatch: 2 };
    expectOneLineError(
      loom('compile', manifestOf('n1.json', { tenants: [{ ...t, maxBatch: 1e300 }] }), '-o', path.join(tmp, 'o2'), '--quiet'),
      'MANIFEST',
      'maxBatch',
    );
    expectOneLineError(
      loom('compile', manifestOf('n2.json', '{"tenants": [{"id": "a", "model": "models/a.onnx", "maxBatch": 1e999}]}'), '-o', path.join(tmp, 'o2'), '--quiet'),
      'MANIFEST',
      'maxBatch',
    );
    expectOneLineError(
      loom('compile', manifestOf('n3.json', { tenants: [{ ...t, dims: { seq: 1e300 } }] }), '-o', path.join(tmp, 'o2'), '--quiet'),
      'MANIFEST',
      'dims.seq',
    );
    expectOneLineError(
      loom('compile', manifestOf('n4.json', { tenants: [{ ...t, model: ['x'] }] }), '-o', path.join(tmp, 'o2'), '--quiet'),
      'MANIFEST',
      'model',
    );
    expectOneLineError(loom('compile', manifestOf('n5.json', { tenants: 'a' }), '-o', path.join(tmp, 'o2'), '--quiet'), 'MANIFEST', 'tenants');
    expectOneLineError(loom('compile', manifestOf('n6.json', 'null'), '-o', path.join(tmp, 'o2'), '--quiet'), 'MANIFEST');
  });

  it('a model path that leads out of the manifest folder, and --allow-outside-paths', () => {
    const sub = path.join(tmp, 'fleet-sub');
    mkdirSync(sub);
    symlinkSync(path.join(models, 'a.onnx'), path.join(sub, 'a.onnx'));
    const f = path.join(sub, 'fleet.json');
    writeFileSync(f, JSON.stringify({ tenants: [{ id: 'a', model: 'a.onnx', maxBatch: 2 }] }));
    expectOneLineError(loom('compile', f, '-o', path.join(tmp, 'o3'), '--no-nvcc', '--quiet'), 'MANIFEST', 'outside', '--allow-outside-paths');
    const r = loom('compile', f, '-o', path.join(tmp, 'o3'), '--no-nvcc', '--quiet', '--allow-outside-paths');
    expect(r.code, r.err).toBe(0);
  });

  it('a manifest or a model that is a FIFO or a device', () => {
    const fifo = path.join(tmp, 'm.json');
    makeFifo(fifo);
    expectOneLineError(loom('compile', fifo, '-o', path.join(tmp, 'o4'), '--quiet'), 'IO', 'FIFO');
    expectOneLineError(
      loom('compile', manifestOf('dev.json', { tenants: [{ id: 'a', model: '/dev/zero', maxBatch: 1 }] }), '-o', path.join(tmp, 'o4'), '--quiet'),
      'MANIFEST',
      'not a regular file',
    );
    const pipeModel = path.join(tmp, 'pipe.onnx');
    makeFifo(pipeModel);
    expectOneLineError(loom('import', pipeModel), 'IO', 'FIFO');
  });

  it('external data through a FIFO or a link out of the model folder', () => {
    const m = onnx.ModelProto.decode(generateModel('mlp', { seed: 3, sizes: [8, 6, 3] }).bytes);
    const init = m.graph!.initializer![0]!;
    const bytes = init.rawData!.length;
    init.rawData = new Uint8Array();
    init.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    init.externalData = [
      { key: 'location', value: 'w.bin' },
      { key: 'length', value: String(bytes) },
    ];
    const pipeDir = path.join(tmp, 'ext-pipe');
    mkdirSync(pipeDir);
    writeFileSync(path.join(pipeDir, 'model.onnx'), onnx.ModelProto.encode(m).finish());
    makeFifo(path.join(pipeDir, 'w.bin'));
    expectOneLineError(loom('compile', path.join(pipeDir, 'model.onnx'), '-o', path.join(tmp, 'o5'), '--quiet'), 'EXTERNAL_DATA', 'w.bin', 'FIFO');
    const linkDir = path.join(tmp, 'ext-link');
    mkdirSync(linkDir);
    copyFileSync(path.join(pipeDir, 'model.onnx'), path.join(linkDir, 'model.onnx'));
    symlinkSync('/etc/passwd', path.join(linkDir, 'w.bin'));
    expectOneLineError(loom('import', path.join(linkDir, 'model.onnx')), 'EXTERNAL_DATA', "'w.bin'", 'outside');
  });
});

describe('hostile run inputs and plan directories', () => {
  it('loom run --input x=/dev/zero and a FIFO input end at once', () => {
    const r = loom('run', plan, '--tenant', 'a', '--input', 'input=/dev/zero', '--out', path.join(tmp, 'out'));
    expectOneLineError(r, 'IO', '/dev/zero', 'not a regular file');
    const fifo = path.join(tmp, 'x.npy');
    makeFifo(fifo);
    expectOneLineError(loom('run', plan, '--tenant', 'a', '--input', `input=${fifo}`, '--out', path.join(tmp, 'out')), 'IO', 'FIFO');
  });

  it('plan.json with 100k nested brackets, or as a FIFO; a nested --bench file', () => {
    const deep = path.join(tmp, 'deep-plan');
    mkdirSync(deep);
    writeFileSync(path.join(deep, 'plan.json'), `{"format": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
    expectOneLineError(loom('inspect', deep), 'PLAN_INVALID', 'nested');
    const pipe = path.join(tmp, 'pipe-plan');
    mkdirSync(pipe);
    makeFifo(path.join(pipe, 'plan.json'));
    expectOneLineError(loom('inspect', pipe), 'IO', 'FIFO');
    // the files a plan names are bare names inside its directory
    const escapeDir = path.join(tmp, 'escape-plan');
    mkdirSync(escapeDir);
    const json = JSON.parse(readFileSync(path.join(plan, 'plan.json'), 'utf8')) as { weights: { file: string } };
    json.weights.file = '../../../etc/passwd';
    writeFileSync(path.join(escapeDir, 'plan.json'), JSON.stringify(json));
    expectOneLineError(loom('inspect', escapeDir), 'PLAN_INVALID', 'weights.file', 'not a file name inside the plan directory');
    const bench = manifestOf('bench.json', `{"launches": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
    expectOneLineError(loom('inspect', plan, '--html', path.join(tmp, 'r.html'), '--bench', bench), 'USAGE', 'nested');
  });

  it('a device profile (--profile) that is a FIFO, a device, nested 100k deep or another format', () => {
    const fleet = path.join(tmp, 'fleet.json');
    const fifo = path.join(tmp, 'profile-fifo.json');
    makeFifo(fifo);
    expectOneLineError(loom('compile', fleet, '-o', path.join(tmp, 'p1'), '--quiet', '--profile', fifo), 'USAGE', 'device profile', 'not a regular file');
    expectOneLineError(
      loom('compile', fleet, '-o', path.join(tmp, 'p1'), '--quiet', '--profile', '/dev/zero'),
      'USAGE',
      'device profile',
      'not a regular file',
    );
    const deep = manifestOf('profile-deep.json', `${'['.repeat(100_000)}${']'.repeat(100_000)}`);
    expectOneLineError(loom('compile', fleet, '-o', path.join(tmp, 'p1'), '--quiet', '--profile', deep), 'USAGE', 'device profile', 'nested');
    expectOneLineError(
      loom('compile', fleet, '-o', path.join(tmp, 'p1'), '--quiet', '--profile', path.join(plan, 'plan.json')),
      'USAGE',
      'device profile',
      "field format must be 'loom-device-profile'",
    );
  });

  it('an output file in a folder that does not exist', () => {
    expectOneLineError(loom('import', path.join(models, 'a.onnx'), '-o', path.join(tmp, 'no', 'such', 'dir', 'a.ir')), 'IO', 'a.ir');
  });

  it('a restart dump whose dump.json is nested 100k deep', () => {
    const dump = path.join(tmp, 'dump');
    mkdirSync(dump);
    writeFileSync(path.join(dump, 'dump.json'), `{"manifest": ${'{"a":'.repeat(100_000)}1${'}'.repeat(100_001)}`);
    expectOneLineError(loom('compile', '--from', 'ir', dump, '-o', path.join(tmp, 'o6'), '--quiet'), 'USAGE', 'nested');
  });
});
