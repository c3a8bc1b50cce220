// writePlanDir: a Plan becomes a LaunchPlan directory (plan.json, weights.bin, kernels.cu and, where nvcc
// is present, kernels.sm_90.cubin). Same Plan → byte-identical files.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fail } from '../ir/errors.js';
import type { Plan } from '../src/planner/plan.js';
import { buildLaunchPlan } from './build.js';
import { KERNELS_FILE, PLAN_FILE, WEIGHTS_FILE, type LaunchPlan, type WritePlanOptions, type WrittenPlan } from './format.js';
import { stableJson } from './json.js';
import { ARCH, compileCubin, defaultCacheDir, findNvcc } from './nvcc.js';

function write(file: string, data: string | Uint8Array): void {
  try {
    writeFileSync(file, data);
  } catch (e) {
    fail('IO', `cannot write '${file}': ${(e as Error).message}`);
  }
}

export async function writePlanDir(plan: Plan, dir: string, opts: WritePlanOptions = {}): Promise<WrittenPlan> {
  const progress = opts.onProgress ?? (() => {});
  progress(`launch plan: ${plan.launches.length} launches, ${plan.tenants.length} tenants`);
  const built = buildLaunchPlan(plan);
  progress(`kernels: ${built.kernels.kernels.length} generated kernels for ${Object.keys(built.kernels.names).length} launches`);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    fail('IO', `cannot create the plan directory '${dir}': ${(e as Error).message}`);
  }
  const files = { plan: path.join(dir, PLAN_FILE), weights: path.join(dir, WEIGHTS_FILE), kernels: path.join(dir, KERNELS_FILE) };
  write(files.weights, built.weights);
  write(files.kernels, built.source);

  let launchPlan: LaunchPlan = built.plan;
  let cubinFile: string | null = null;
  let fromCache = false;
  let skipped: string | null = null;
  const nvcc = opts.nvcc === 'off' ? null : findNvcc();
  if (opts.nvcc === 'off') skipped = 'nvcc: off';
  else if (nvcc === null) skipped = 'nvcc not found (PATH, $CUDA_HOME/bin, /usr/local/cuda/bin): no cubin';
  else if (built.kernels.kernels.length === 0) skipped = 'no generated kernels';
  if (nvcc !== null && skipped === null) {
    const r = await compileCubin(built.source, nvcc, opts.cacheDir ?? defaultCacheDir(), progress);
    const name = `kernels.${ARCH}.cubin`;
    cubinFile = path.join(dir, name);
    write(cubinFile, r.cubin);
    fromCache = r.fromCache;
    launchPlan = { ...launchPlan, kernels: { ...launchPlan.kernels, cubin: name, arch: ARCH } };
  } else if (skipped !== null) progress(`kernels: ${skipped}`);
  write(files.plan, stableJson(launchPlan));
  progress(`launch plan written to ${dir}`);
  return { dir, plan: launchPlan, files: { ...files, cubin: cubinFile }, cubinFromCache: fromCache, nvccSkipped: skipped };
}
