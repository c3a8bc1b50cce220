// External data and model files are read as regular files inside the model's own folder: a symlink that
// leads out of it (to /etc/passwd, to another tenant's weights) is refused after resolving the real path,
// and a FIFO or a device is refused at once instead of hanging the import.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { toNumbers } from '../../ir/tensor.js';
import { importModelFile } from '../../src/onnx/import.js';
import { onnx } from '../../src/onnx/proto.js';
import { type ModelSpec, encodeModel } from '../../src/onnx/write.js';
import { expectLoomError } from '../support/errors.js';
import { makeFifo } from '../support/fifo.js';
import { randomTensor, valueNamed } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'loom-extfiles-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const w = randomTensor([2, 3], 21);
const spec: ModelSpec = {
  inputs: [{ name: 'x', dtype: 'f32', shape: [2, 3] }],
  outputs: [{ name: 'z', dtype: 'f32', shape: [2, 3] }],
  nodes: [{ op: 'Add', name: 'add1', inputs: ['x', 'w'], outputs: ['z'] }],
  initializers: { w },
};
const BYTES = 2 * 3 * 4;

// The model with initializer 'w' moved to `location` (offset 0, length 24) and the 24 bytes it had.
function externalModel(location: string): { model: Uint8Array; data: Uint8Array } {
  const m = onnx.ModelProto.decode(encodeModel(spec));
  const t = m.graph!.initializer!.find((i) => i.name === 'w')!;
  const data = Uint8Array.from(t.rawData!);
  t.rawData = new Uint8Array();
  t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
  t.externalData = [
    { key: 'location', value: location },
    { key: 'length', value: String(BYTES) },
  ];
  return { model: onnx.ModelProto.encode(m).finish(), data };
}

function modelDir(location: string): { dir: string; file: string; data: Uint8Array } {
  const dir = mkdtempSync(join(tmp, 'm-'));
  const { model, data } = externalModel(location);
  writeFileSync(join(dir, 'model.onnx'), model);
  return { dir, file: join(dir, 'model.onnx'), data };
}

describe('external data files', () => {
  it('a symlink out of the model folder is refused, naming the tensor and the location', () => {
    const secret = join(tmp, 'secret.bin'); // outside every model folder, and big enough to pass the range check
    writeFileSync(secret, Buffer.alloc(4096, 7));
    const { dir, file } = modelDir('weights.bin');
    symlinkSync(secret, join(dir, 'weights.bin'));
    expectLoomError(() => importModelFile(file), 'EXTERNAL_DATA', "initializer 'w'", "'weights.bin'", 'outside', secret);
    // a link to /etc/passwd the same way (the probe's case)
    const p = modelDir('passwd');
    symlinkSync('/etc/passwd', join(p.dir, 'passwd'));
    expectLoomError(() => importModelFile(p.file), 'EXTERNAL_DATA', "initializer 'w'", "'passwd'", 'outside');
  });

  it('a linked folder leading out is refused too; links that stay inside are followed', () => {
    const { dir, file, data } = modelDir('sub/weights.bin');
    const elsewhere = mkdtempSync(join(tmp, 'elsewhere-'));
    writeFileSync(join(elsewhere, 'weights.bin'), data);
    symlinkSync(elsewhere, join(dir, 'sub'));
    expectLoomError(() => importModelFile(file), 'EXTERNAL_DATA', "initializer 'w'", "'sub/weights.bin'", 'outside');

    const ok = modelDir('link.bin');
    mkdirSync(join(ok.dir, 'data'));
    writeFileSync(join(ok.dir, 'data', 'real.bin'), ok.data);
    symlinkSync(join(ok.dir, 'data', 'real.bin'), join(ok.dir, 'link.bin'));
    const g = importModelFile(ok.file);
    expect(Array.from(toNumbers(g.constants.get(valueNamed(g, 'w'))!))).toEqual(Array.from(toNumbers(w)));
  });

  it("a file whose name starts with '..' is inside the folder", () => {
    const { dir, file, data } = modelDir('..weights.bin');
    writeFileSync(join(dir, '..weights.bin'), data);
    expect(importModelFile(file).constants.size).toBe(1);
  });

  it('the model folder may itself be reached through a link', () => {
    const { dir, data } = modelDir('weights.bin');
    writeFileSync(join(dir, 'weights.bin'), data);
    const link = join(tmp, `linked-${Date.now()}`);
    symlinkSync(dir, link);
    expect(importModelFile(join(link, 'model.onnx')).constants.size).toBe(1);
  });

  it('a FIFO, a device or a folder as external data is refused at once', () => {
    const fifo = modelDir('pipe.bin');
    makeFifo(join(fifo.dir, 'pipe.bin'));
    const t0 = Date.now();
    expectLoomError(() => importModelFile(fifo.file), 'EXTERNAL_DATA', "initializer 'w'", 'pipe.bin', 'FIFO', 'not a regular file');
    expect(Date.now() - t0).toBeLessThan(2000);
    const dev = modelDir('zero');
    symlinkSync('/dev/zero', join(dev.dir, 'zero'));
    expectLoomError(() => importModelFile(dev.file), 'EXTERNAL_DATA', "initializer 'w'", "'zero'");
    const folder = modelDir('d');
    mkdirSync(join(folder.dir, 'd'));
    expectLoomError(() => importModelFile(folder.file), 'EXTERNAL_DATA', "initializer 'w'", 'directory', 'not a regular file');
  });

  it('a model file that is a FIFO or a device is refused at once', () => {
    const f = join(tmp, 'model-pipe.onnx');
    makeFifo(f);
    expectLoomError(() => importModelFile(f), 'IO', 'model-pipe.onnx', 'FIFO', 'not a regular file');
    expectLoomError(() => importModelFile('/dev/zero'), 'IO', '/dev/zero', 'not a regular file');
  });
});
