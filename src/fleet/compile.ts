// The deploy-time compile: manifest → import + canonicalize every tenant → planFleet → LaunchPlan directory.
// `emit` stops after a stage and writes only that stage's artifact, so each stage can be inspected alone.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fail } from '../../ir/errors.js';
import { printGraph } from '../../ir/print.js';
import { renderKernelsCu, renderLaunchJson, writePlanDir } from '../../codegen/index.js';
import { CLIENT_FILE, renderClient } from '../../codegen/client.js';
import { writeManifestCopy } from './manifest-copy.js';
import { planFleet } from '../planner/index.js';
import type { Plan, TenantInput } from '../../ir/contract/plan.js';
import { type Manifest, manifestFromFiles, readManifest } from './manifest.js';
import { loadTenants } from './tenants.js';
import { type PhaseTime, createPhaseClock } from './timings.js';

export const EMIT_STAGES = ['ir', 'plan', 'launch', 'cuda'] as const;
export type EmitStage = (typeof EMIT_STAGES)[number];

export interface CompileProgress {
  readonly done: number; // steps finished before this one
  readonly total: number;
  readonly label: string; // what is being done now
}

export interface CompileOptions {
  readonly onProgress?: (p: CompileProgress) => void;
  readonly emit?: EmitStage; // stop after this stage; default: the whole plan directory
  readonly nvcc?: 'auto' | 'off';
  readonly cacheDir?: string;
  readonly maxBatch?: number; // for a list of model files (a manifest says it per tenant)
  readonly client?: string; // also write the typed client here (a full compile always writes <dir>/client.ts)
}

export interface CompileResult {
  readonly dir: string;
  readonly manifest: Manifest;
  readonly tenants: readonly TenantInput[];
  readonly plan: Plan | null; // null for --emit ir
  readonly files: readonly string[]; // what was written, relative to dir
  readonly nvccSkipped?: string | null; // why no cubin was built (full compiles only)
  readonly phases: readonly PhaseTime[]; // seconds per compile phase
}

// `fleet` is a Manifest, a manifest file path, or a list of .onnx files (one tenant each).
export async function compileFleet(fleet: Manifest | string | readonly string[], outDir: string, opts: CompileOptions = {}): Promise<CompileResult> {
  const manifest = toManifest(fleet, opts);
  const emit = opts.emit;
  if (emit !== undefined && !(EMIT_STAGES as readonly string[]).includes(emit)) fail('USAGE', `emit must be one of ${EMIT_STAGES.join(', ')}, got '${String(emit)}'`);
  const n = manifest.tenants.length;
  const total = n + (emit === 'ir' ? 0 : 1) + (emit === undefined ? 1 : 0);
  const step = (done: number, label: string) => opts.onProgress?.({ done, total, label });
  ensureDir(outDir);
  const clock = createPhaseClock();

  if (emit === 'ir' && opts.client !== undefined) fail('USAGE', 'a typed client needs the plan; it cannot be written with emit ir');
  const tenants = loadTenants(manifest, (t, i) => step(i, `import ${t.id} (${t.model})`), clock);
  if (emit === 'ir') {
    ensureDir(path.join(outDir, 'ir'));
    const files = tenants.map((t) => {
      const rel = path.join('ir', `${t.id}.ir`);
      writeText(path.join(outDir, rel), printGraph(t.graph));
      return rel;
    });
    step(total, 'done');
    return { dir: outDir, manifest, tenants, plan: null, files, phases: clock.phases() };
  }

  step(n, `plan ${n} tenant${n === 1 ? '' : 's'}`);
  const plan = clock.time('plan', () => planFleet(tenants, { precision: manifest.precision }));
  let clientText: string | undefined; // rendered once, written where asked and into the plan dir
  const client = async () => (clientText ??= await clock.timeAsync('client', () => renderClient(plan.tenants)));
  if (opts.client !== undefined) {
    step(n, 'write the typed client');
    writeText(opts.client, await client());
  }
  if (emit === 'plan') {
    writeText(path.join(outDir, 'plan-summary.json'), `${JSON.stringify(planSummary(plan), null, 1)}\n`);
    step(total, 'done');
    return { dir: outDir, manifest, tenants, plan, files: ['plan-summary.json'], phases: clock.phases() };
  }

  if (emit === undefined) {
    step(n + 1, 'write the plan directory');
    const onProgress = (msg: string) => step(n + 1, msg);
    const written = await writePlanDir(plan, outDir, { nvcc: opts.nvcc ?? 'auto', ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}), onProgress, onPhase: clock.add });
    step(n + 1, 'write the typed client');
    writeText(path.join(outDir, CLIENT_FILE), await client());
    const manifestCopy = clock.time('manifest copy', () => writeManifestCopy(manifest, outDir)); // lets `loom bench` re-plan the baselines
    step(total, 'done');
    const f = written.files;
    const files = [f.plan, f.weights, f.kernels, ...(f.cubin ? [f.cubin] : []), CLIENT_FILE, manifestCopy].map((p) => (path.isAbsolute(p) ? path.relative(outDir, p) : p));
    return { dir: outDir, manifest, tenants, plan, files, nvccSkipped: written.nvccSkipped, phases: clock.phases() };
  }
  // launch / cuda: the one artifact, rendered without writing a plan dir or running nvcc
  const wanted = emit === 'launch' ? 'plan.json' : 'kernels.cu';
  writeText(path.join(outDir, wanted), emit === 'launch' ? renderLaunchJson(plan) : renderKernelsCu(plan));
  step(total, 'done');
  return { dir: outDir, manifest, tenants, plan, files: [wanted], phases: clock.phases() };
}

function toManifest(fleet: Manifest | string | readonly string[], opts: CompileOptions): Manifest {
  if (typeof fleet === 'string') {
    return fleet.endsWith('.json') ? readManifest(fleet) : manifestFromFiles([fleet], opts.maxBatch === undefined ? {} : { maxBatch: opts.maxBatch });
  }
  if (isStringList(fleet)) {
    const jsons = fleet.filter((f) => f.endsWith('.json'));
    if (jsons.length > 0) {
      if (fleet.length > 1) fail('USAGE', `give either one manifest (.json) or a list of .onnx files, not both (got ${fleet.join(', ')})`);
      return readManifest(jsons[0]!);
    }
    return manifestFromFiles(fleet, opts.maxBatch === undefined ? {} : { maxBatch: opts.maxBatch });
  }
  return fleet as Manifest;
}

function isStringList(v: unknown): v is readonly string[] {
  return Array.isArray(v);
}

// The Plan as JSON for `--emit plan`: everything but the weights' data (their placement stays).
export function planSummary(plan: Plan): unknown {
  return {
    ...plan,
    weights: plan.weights.map((w) => ({
      offset: w.offset,
      dtype: w.tensor.dtype,
      shape: w.tensor.shape,
      bytes: w.tensor.data.byteLength,
    })),
  };
}

function ensureDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    fail('IO', `cannot create output folder '${dir}': ${(e as Error).message}`);
  }
}

function writeText(file: string, text: string): void {
  try {
    writeFileSync(file, text);
  } catch (e) {
    fail('IO', `cannot write '${file}': ${(e as Error).message}`);
  }
}
