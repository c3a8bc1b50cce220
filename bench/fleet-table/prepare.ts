// A fleet on disk: the tenants' ONNX models (zoo, one seed each), the manifest, the peer's weights files, and
// the compiled plan. Big fleets are gigabytes, so the models are generated and their initializers streamed
// out one tenant at a time, and a fleet directory is reused when its stamp matches: the models when the spec
// and the zoo's sources are unchanged, the plan when the compiler's sources are unchanged too.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { readPlanDir } from '../../codegen/index.js';
import { generateModel } from '../../models/index.js';
import { compileFleet } from '../../src/fleet/compile.js';
import type { CompileBranching as Branching } from '../../src/fleet/branch-measure.js';
import { readPlanManifest } from '../../src/fleet/manifest-copy.js';
import { type SpaceOnlyDirs, writeSpaceOnly } from '../../src/measure/index.js';
import { createProgressReporter } from '../../src/fleet/progress.js';
import { type PeerWeightTensor, weightsFile, writeInitializers } from './handoff.js';
import { type FleetSpec, type TenantPlanEntry, fleetTenants, specHash } from './specs.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const ZOO_SOURCES = ['models/zoo', 'models/index.ts', 'models/random.ts', 'src/onnx/write.ts'];
export const COMPILER_SOURCES = ['ir', 'src/onnx', 'src/planner', 'src/fleet', 'codegen'];
const MODELS_STAMP = 'models-stamp.json';
const PLAN_STAMP = 'plan-stamp.json';
const SPACE_ONLY_STAMP = 'space-only-stamp.json';

export interface PrepareOptions {
  readonly work: string; // the fleet goes to <work>/<dirName>/
  readonly dirName?: string; // default: the fleet's name
  readonly precision: string;
  readonly nvcc: 'auto' | 'off';
  readonly branching?: Branching; // the plan's batch or branch (loom compile --branching; default the planner's)
  readonly fresh?: boolean; // ignore the stamps: regenerate and recompile
  readonly spaceOnly?: boolean; // also plan every tenant alone (the space-only column), in <dir>/space-only/
  readonly log?: (msg: string) => void;
  readonly quietProgress?: boolean;
}

export interface PreparedFleet {
  readonly spec: FleetSpec;
  readonly precision: string;
  readonly dir: string;
  readonly planDir: string;
  readonly peerDir: string;
  readonly entries: readonly TenantPlanEntry[];
  readonly weights: Readonly<Record<string, readonly PeerWeightTensor[]>>;
  readonly spaceOnly: SpaceOnlyDirs | null; // one plan per tenant, as `loom bench` plans its space-only mode
  readonly reused: { readonly models: boolean; readonly plan: boolean };
  readonly seconds: { readonly models: number; readonly compile: number; readonly spaceOnly: number };
}

export async function prepareFleet(spec: FleetSpec, opts: PrepareOptions): Promise<PreparedFleet> {
  const log = opts.log ?? (() => {});
  const dir = path.join(opts.work, opts.dirName ?? spec.name);
  const planDir = path.join(dir, 'plan');
  const peerDir = path.join(dir, 'peer');
  const entries = fleetTenants(spec);
  const modelsHash = `${specHash(spec, opts.precision)}-${sourcesFingerprint(ZOO_SOURCES)}`;
  const planHash = `${modelsHash}-${sourcesFingerprint(COMPILER_SOURCES)}-${opts.nvcc}-${opts.branching ?? 'never'}`;

  let t0 = performance.now();
  const modelsStamp = opts.fresh ? null : readStamp<{ weights: Record<string, PeerWeightTensor[]> }>(path.join(dir, MODELS_STAMP), modelsHash);
  let weights: Record<string, PeerWeightTensor[]>;
  if (modelsStamp) {
    weights = modelsStamp.weights;
    log(`${spec.name}: reusing ${entries.length} models and weights in ${dir}`);
  } else {
    rmSync(dir, { recursive: true, force: true });
    weights = writeModels(dir, peerDir, entries, opts.precision, log);
    writeStamp(path.join(dir, MODELS_STAMP), modelsHash, { weights });
  }
  const modelsS = (performance.now() - t0) / 1e3;

  t0 = performance.now();
  const planReused = !opts.fresh && modelsStamp !== null && readStamp(path.join(dir, PLAN_STAMP), planHash) !== null;
  if (planReused) log(`${spec.name}: reusing the compiled plan ${planDir}`);
  else {
    rmSync(planDir, { recursive: true, force: true });
    const progress = createProgressReporter({ quiet: opts.quietProgress ?? false });
    try {
      await compileFleet(path.join(dir, 'manifest.json'), planDir, {
        nvcc: opts.nvcc,
        onProgress: progress.onProgress,
        ...(opts.branching ? { branching: opts.branching } : {}),
      });
    } finally {
      progress.finish();
    }
    writeStamp(path.join(dir, PLAN_STAMP), planHash, {});
  }
  const compileS = (performance.now() - t0) / 1e3;
  log(`${spec.name}: models ${modelsS.toFixed(1)} s${modelsStamp ? ' (reused)' : ''}, compile ${compileS.toFixed(1)} s${planReused ? ' (reused)' : ''}`);

  t0 = performance.now();
  const spaceOnly = opts.spaceOnly ? await prepareSpaceOnly(spec.name, dir, planDir, { reused: planReused, hash: planHash, nvcc: opts.nvcc }, log) : null;
  return {
    spec,
    precision: opts.precision,
    dir,
    planDir,
    peerDir,
    entries,
    weights,
    spaceOnly,
    reused: { models: modelsStamp !== null, plan: planReused },
    seconds: { models: modelsS, compile: compileS, spaceOnly: (performance.now() - t0) / 1e3 },
  };
}

// The space-only baseline: every tenant planned alone from the plan's manifest copy (src/measure's
// writeSpaceOnly, what `loom bench` runs), reused while the plan is (same stamp hash). With nvcc 'auto' the
// tenants of one architecture share one cached cubin instead of an NVRTC compile per plan at load.
async function prepareSpaceOnly(
  name: string,
  dir: string,
  planDir: string,
  plan: { readonly reused: boolean; readonly hash: string; readonly nvcc: 'auto' | 'off' },
  log: (msg: string) => void,
): Promise<SpaceOnlyDirs> {
  const soDir = path.join(dir, 'space-only');
  const stamp = plan.reused ? readStamp<{ tenants: string[] }>(path.join(dir, SPACE_ONLY_STAMP), plan.hash) : null;
  if (stamp) {
    log(`${name}: reusing ${stamp.tenants.length} space-only plans in ${soDir}`);
    return stamp.tenants.map((tenant, i) => ({ tenant, dir: path.join(soDir, String(i)) }));
  }
  rmSync(soDir, { recursive: true, force: true });
  const t0 = performance.now();
  const dirs = await writeSpaceOnly(readPlanDir(planDir), readPlanManifest(planDir), soDir, { nvcc: plan.nvcc });
  writeStamp(path.join(dir, SPACE_ONLY_STAMP), plan.hash, { tenants: dirs.map((d) => d.tenant) });
  log(`${name}: planned ${dirs.length} tenants alone for space-only in ${((performance.now() - t0) / 1e3).toFixed(1)} s`);
  return dirs;
}

// One tenant at a time: generate, write the .onnx, stream its initializers to the peer's weights file.
function writeModels(
  dir: string,
  peerDir: string,
  entries: readonly TenantPlanEntry[],
  precision: string,
  log: (msg: string) => void,
): Record<string, PeerWeightTensor[]> {
  mkdirSync(path.join(dir, 'models'), { recursive: true });
  const weights: Record<string, PeerWeightTensor[]> = {};
  let bytes = 0;
  entries.forEach((e, i) => {
    const model = generateModel(e.group.kind, { ...e.group.options, seed: e.seed } as never);
    writeFileSync(path.join(dir, 'models', `${e.id}.onnx`), model.bytes);
    weights[e.id] = writeInitializers(model.bytes, path.join(peerDir, weightsFile(e.id)));
    bytes += model.bytes.byteLength;
    if (i % 16 === 15 || i === entries.length - 1) log(`models: ${i + 1}/${entries.length} written (${(bytes / 1e9).toFixed(2)} GB of ONNX)`);
  });
  const manifest = { tenants: entries.map((e) => ({ id: e.id, model: `models/${e.id}.onnx`, maxBatch: e.group.batch })), precision };
  writeFileSync(path.join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 1)}\n`);
  return weights;
}

export function readStamp<T>(file: string, hash: string): (T & { hash: string }) | null {
  if (!existsSync(file)) return null;
  try {
    const s = JSON.parse(readFileSync(file, 'utf8')) as T & { hash: string };
    return s.hash === hash ? s : null;
  } catch {
    return null; // a torn stamp from an interrupted run: rebuild
  }
}

export function writeStamp(file: string, hash: string, body: object): void {
  writeFileSync(file, `${JSON.stringify({ hash, ...body })}\n`);
}

// sha256 over the paths and contents of the TypeScript sources (and templates) under `parts` of the repo.
export function sourcesFingerprint(parts: readonly string[]): string {
  const h = createHash('sha256');
  const visit = (rel: string): void => {
    const abs = path.join(ROOT, rel);
    if (!existsSync(abs)) return;
    if (statSync(abs).isDirectory()) {
      for (const name of readdirSync(abs).sort()) visit(path.join(rel, name));
    } else if (/\.(ts|hbs|cu|json)$/.test(rel)) {
      h.update(rel).update('\0').update(readFileSync(abs)).update('\0');
    }
  };
  for (const p of parts) visit(p);
  return h.digest('hex').slice(0, 12);
}
