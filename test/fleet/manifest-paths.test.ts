// The manifest's path policy and its limits: relative `model` paths resolve against the manifest's folder and
// must stay inside it once symlinks are resolved (`..` and links out are refused unless allowOutsidePaths);
// absolute paths are the operator's explicit choice; every model must be a regular file; the manifest itself
// is a bounded read of a regular file, and JSON nested too deep for the walkers is a typed error.
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_MANIFEST_BYTES, readManifest } from '../../src/fleet/manifest.js';
import { readPlanManifest, writeManifestCopy } from '../../src/fleet/manifest-copy.js';
import { generateModel } from '../../models/index.js';
import { expectLoomError } from '../support/errors.js';
import { makeFifo } from '../support/fifo.js';

const root = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'loom-mpaths-')));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const fleet = path.join(root, 'fleet'); // the manifest's folder
const outside = path.join(root, 'outside'); // another tenant's, or the system's, files
mkdirSync(path.join(fleet, 'models'), { recursive: true });
mkdirSync(outside);
const mlp = generateModel('mlp', { seed: 1, sizes: [8, 6, 3] }).bytes;
writeFileSync(path.join(fleet, 'models/a.onnx'), mlp);
writeFileSync(path.join(outside, 'other.onnx'), mlp);

function manifestWith(name: string, model: string, extra: Record<string, unknown> = {}): string {
  const file = path.join(fleet, name);
  writeFileSync(file, JSON.stringify({ tenants: [{ id: 't', model, maxBatch: 2, ...extra }] }));
  return file;
}

describe('manifest model paths', () => {
  it('relative paths inside the manifest folder resolve to their real path', () => {
    symlinkSync(path.join(fleet, 'models/a.onnx'), path.join(fleet, 'models/current.onnx'));
    const m = readManifest(manifestWith('in.json', 'models/current.onnx'));
    expect(m.tenants[0]!.model).toBe('models/current.onnx');
    expect(m.tenants[0]!.modelPath).toBe(path.join(fleet, 'models/a.onnx'));
  });

  it("'..' out of the manifest folder is refused, naming the tenant and how to allow it", () => {
    const f = manifestWith('dotdot.json', '../outside/other.onnx');
    expectLoomError(() => readManifest(f), 'MANIFEST', "tenant 't'", "'../outside/other.onnx'", 'outside', fleet, '--allow-outside-paths');
    expect(readManifest(f, { allowOutsidePaths: true }).tenants[0]!.modelPath).toBe(path.join(outside, 'other.onnx'));
  });

  it('a symlink that leads out of the manifest folder is refused after resolving it', () => {
    symlinkSync(path.join(outside, 'other.onnx'), path.join(fleet, 'models/sneaky.onnx'));
    const f = manifestWith('link.json', 'models/sneaky.onnx');
    expectLoomError(() => readManifest(f), 'MANIFEST', "tenant 't'", 'models/sneaky.onnx', path.join(outside, 'other.onnx'), 'outside');
    symlinkSync(outside, path.join(fleet, 'linked-dir'));
    expectLoomError(() => readManifest(manifestWith('linkdir.json', 'linked-dir/other.onnx')), 'MANIFEST', "tenant 't'", 'outside');
    expect(readManifest(f, { allowOutsidePaths: true }).tenants[0]!.modelPath).toBe(path.join(outside, 'other.onnx'));
  });

  it('absolute paths are taken as the operator wrote them', () => {
    const m = readManifest(manifestWith('abs.json', path.join(outside, 'other.onnx')));
    expect(m.tenants[0]!.modelPath).toBe(path.join(outside, 'other.onnx'));
  });

  it('the manifest folder itself may be reached through a link', () => {
    const link = path.join(root, 'fleet-link');
    symlinkSync(fleet, link);
    const m = readManifest(path.join(link, path.basename(manifestWith('vialink.json', 'models/a.onnx'))));
    expect(m.tenants[0]!.modelPath).toBe(path.join(fleet, 'models/a.onnx'));
  });

  it('a model that is a FIFO, a device or a folder is refused at once', () => {
    makeFifo(path.join(fleet, 'models/pipe.onnx'));
    const t0 = Date.now();
    expectLoomError(() => readManifest(manifestWith('fifo.json', 'models/pipe.onnx')), 'MANIFEST', "tenant 't'", 'FIFO', 'not a regular file');
    expect(Date.now() - t0).toBeLessThan(2000);
    expectLoomError(() => readManifest(manifestWith('dev.json', '/dev/zero')), 'MANIFEST', "tenant 't'", 'not a regular file');
    expectLoomError(() => readManifest(manifestWith('dir.json', 'models')), 'MANIFEST', "tenant 't'", 'directory');
  });

  it("the plan directory's manifest copy may point out of the plan directory (Loom wrote it)", () => {
    const planDir = path.join(root, 'plan');
    mkdirSync(planDir);
    writeManifestCopy(readManifest(manifestWith('copy.json', 'models/a.onnx')), planDir);
    expect(readPlanManifest(planDir).tenants[0]!.modelPath).toBe(path.join(fleet, 'models/a.onnx'));
  });
});

describe('manifest limits', () => {
  it('100k nested brackets are a MANIFEST error, not a stack overflow', () => {
    const f = path.join(fleet, 'deep.json');
    writeFileSync(f, `{"tenants": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
    expectLoomError(() => readManifest(f), 'MANIFEST', 'deep.json', 'nested');
    writeFileSync(f, `{"tenants": [{"id": "t", "model": "models/a.onnx", "maxBatch": 2, "dims": ${'{"a":'.repeat(100_000)}1${'}'.repeat(100_001)}]}`);
    expectLoomError(() => readManifest(f), 'MANIFEST', 'deep.json', 'nested');
  });

  it('a wrongly typed deep value is described without overflowing', () => {
    const f = path.join(fleet, 'deepval.json');
    writeFileSync(f, `{"tenants": [{"id": "t", "model": "models/a.onnx", "maxBatch": ${'['.repeat(200)}${']'.repeat(200)}}]}`);
    expectLoomError(() => readManifest(f), 'MANIFEST', "'maxBatch'");
  });

  it('huge numbers in dims are refused', () => {
    expectLoomError(() => readManifest(manifestWith('hugedim.json', 'models/a.onnx', { dims: { seq: 1e300 } })), 'MANIFEST', "'dims.seq'");
  });

  it('a manifest that is a FIFO, a device or too big is refused before reading', () => {
    const fifo = path.join(fleet, 'm.fifo.json');
    makeFifo(fifo);
    expectLoomError(() => readManifest(fifo), 'IO', 'm.fifo.json', 'FIFO');
    expectLoomError(() => readManifest('/dev/zero'), 'IO', '/dev/zero', 'not a regular file');
    const big = path.join(fleet, 'big.json');
    writeFileSync(big, Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20));
    expectLoomError(() => readManifest(big), 'IO', 'big.json', 'limit');
  });
});
