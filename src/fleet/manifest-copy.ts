// The fleet's manifest, kept in the plan directory by `loom compile` (<plan-dir>/manifest.json) so that
// `loom bench` can re-plan the same tenants as its baselines (time-only, space-only). It is an ordinary
// manifest: model paths relative to the plan directory, so `loom compile <plan-dir>/manifest.json` works too.
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { LoomError, fail, isLoomError } from '../../ir/errors.js';
import { type Manifest, type ManifestPathOptions, readManifest } from './manifest.js';

export const MANIFEST_COPY = 'manifest.json';

export function renderManifestCopy(manifest: Manifest, planDir: string): string {
  const dir = path.resolve(planDir);
  const tenants = manifest.tenants.map((t) => ({
    id: t.id,
    model: path.relative(dir, t.modelPath).split(path.sep).join('/'),
    maxBatch: t.maxBatch,
    ...(t.sloMs !== null ? { sloMs: t.sloMs } : {}),
    ...(t.checkFinite ? { checkFinite: true } : {}),
    ...(Object.keys(t.dims).length > 0 ? { dims: t.dims } : {}),
  }));
  return `${JSON.stringify({ tenants, precision: manifest.precision }, null, 1)}\n`;
}

export function writeManifestCopy(manifest: Manifest, planDir: string): string {
  const file = path.join(planDir, MANIFEST_COPY);
  try {
    writeFileSync(file, renderManifestCopy(manifest, planDir));
  } catch (e) {
    fail('IO', `cannot write '${file}': ${(e as Error).message}`);
  }
  return MANIFEST_COPY;
}

// The manifest a plan was compiled from: `override` when given (the ordinary path policy, unless
// allowOutsidePaths), else the plan directory's copy. The copy's model paths lead out of the plan directory
// by design (they were checked when the fleet was compiled), so they are not confined to it.
export function readPlanManifest(planDir: string, override?: string, opts: ManifestPathOptions = {}): Manifest {
  if (override !== undefined) return readManifest(override, opts);
  const file = path.join(planDir, MANIFEST_COPY);
  if (!existsSync(file)) {
    fail(
      'USAGE',
      `plan '${planDir}' has no ${MANIFEST_COPY} (it was compiled by an older loom): recompile it with \`loom compile\`, or give the fleet's manifest with --manifest <fleet.json>`,
    );
  }
  try {
    return readManifest(file, { allowOutsidePaths: true });
  } catch (e) {
    if (isLoomError(e))
      throw new LoomError(
        e.code,
        `${e.message} (model paths in ${MANIFEST_COPY} are relative to the plan directory; if the plan or the models moved, give the fleet's manifest with --manifest <fleet.json>)`,
      );
    throw e;
  }
}
