// A compile restarted from a stage's dump (`--emit <stage>` then `--from <stage>`) writes the same bytes as a
// full compile of the fleet: the dumps hold everything the later stages read.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HASHED_FILES, writeHashFleet } from '../../tools/plan-fleets.js';
import { type EmitStage, type FromStage, compileFleet } from '../../src/fleet/compile.js';
import { STAGES } from '../../src/pipeline.js';
import { isLoomError } from '../../ir/errors.js';

// the full compile is itself held to the recorded bytes, so a restart is too
const recorded = JSON.parse(readFileSync(new URL('./plan-hashes.json', import.meta.url), 'utf8')) as Record<string, Record<string, string>>;
const root = mkdtempSync(path.join(tmpdir(), 'loom-restart-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function expectRejects(p: Promise<unknown>, code: string, text: string): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isLoomError(e) ? `${e.code}: ${e.message}` : String(e)).toMatch(new RegExp(`^${code}: .*${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
}

function hashes(dir: string): Record<string, string> {
  return Object.fromEntries(
    HASHED_FILES.map((f) => [
      f,
      createHash('sha256')
        .update(readFileSync(path.join(dir, f)))
        .digest('hex'),
    ]),
  );
}

const RESTARTS: ReadonlyArray<readonly [EmitStage, FromStage]> = [
  ['import', 'import'],
  ['ir', 'ir'],
  ['lower', 'lower'],
  ['launch', 'launch'],
];

describe('a restarted compile writes the same plan as a full one', () => {
  it('runs the stages in order, restarting where a dump can be read back', () => {
    expect(STAGES.map((s) => s.name)).toEqual(['import', 'canonicalize', 'lower', 'plan', 'launch', 'kernels']);
    expect(STAGES.filter((s) => s.load === null).map((s) => [s.name, typeof s.notRestartable])).toEqual([
      ['plan', 'string'],
      ['kernels', 'string'],
    ]);
  });

  for (const fleet of ['lstm', 'mixed']) {
    it(`fleet ${fleet}: --from import, ir, lower, launch`, async () => {
      const dir = path.join(root, fleet);
      const manifest = writeHashFleet(fleet, dir);
      await compileFleet(manifest, path.join(dir, 'full'), { nvcc: 'off' });
      const full = hashes(path.join(dir, 'full'));
      expect(full).toEqual(recorded[fleet]);
      for (const [emit, from] of RESTARTS) {
        const dump = path.join(dir, `dump-${emit}`);
        await compileFleet(manifest, dump, { nvcc: 'off', emit });
        const out = path.join(dir, `from-${from}`);
        const r = await compileFleet(dump, out, { nvcc: 'off', from });
        expect({ from, files: hashes(out) }).toEqual({ from, files: full });
        expect(readFileSync(path.join(out, 'manifest.json'), 'utf8')).toBe(readFileSync(path.join(dir, 'full', 'manifest.json'), 'utf8'));
        expect(r.files).toContain('client.ts');
      }
    });
  }

  it('names what a dump lacks, and refuses what is not a restart point', async () => {
    const dir = path.join(root, 'errors');
    const manifest = writeHashFleet('mlp', dir);
    const dump = path.join(dir, 'ir');
    await compileFleet(manifest, dump, { emit: 'ir' });
    rmSync(path.join(dump, 'ir', 'mlp-2.ir'));
    await expectRejects(compileFleet(dump, path.join(dir, 'p'), { from: 'ir' }), 'IO', 'mlp-2.ir');
    await expectRejects(compileFleet(path.join(dir, 'nothing'), path.join(dir, 'p'), { from: 'launch' }), 'IO', 'dump.json');
    await expectRejects(compileFleet(dump, path.join(dir, 'p'), { from: 'launch' }), 'USAGE', "stage 'canonicalize'");
    await expectRejects(compileFleet(dump, path.join(dir, 'p'), { from: 'plan' as FromStage }), 'USAGE', 'plan is not a restart point');
    expect(existsSync(path.join(dir, 'p', 'plan.json'))).toBe(false);
  });
});
