// Plans for the hot-swap tests: small MLP fleets whose tenant ids overlap from plan to plan while every
// tenant's weights differ (a different seed per plan), so an answer from the wrong plan is caught. Also a
// symbolic link switched atomically between plan directories, as an operator does before SIGHUP.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LaunchPlan } from '../../codegen/index.js';
import type { Tensor } from '../../ir/tensor.js';
import { generateModel } from '../../models/index.js';
import { type LoadedPlan, loadPlan } from '../../runtime/index.js';
import { compileFleet } from '../../src/fleet/compile.js';
import { exampleInputs } from '../../src/fleet/inputs.js';
import { readManifest } from '../../src/fleet/manifest.js';
import { compileShards } from '../../src/fleet/shard-compile.js';
import { type OipOutput, sameValues } from './fleet.js';

export interface SwapTenant {
  readonly id: string;
  readonly seed: number;
}

export const SIZES = [12, 20, 5];
export const MAX_BATCH = 4;

// Compiles the tenants (MLPs of one shape, weights from their seed) into `root/name` (or `root/name` as a
// shards directory with `shards` shards); returns the directory.
export async function compileSwapPlan(root: string, name: string, tenants: readonly SwapTenant[], shards = 0, sizes = SIZES): Promise<string> {
  const work = path.join(root, `${name}-src`);
  mkdirSync(work, { recursive: true });
  for (const t of tenants) writeFileSync(path.join(work, `${t.id}.onnx`), generateModel('mlp', { seed: t.seed, sizes }).bytes);
  const manifest = { tenants: tenants.map((t) => ({ id: t.id, model: `${t.id}.onnx`, maxBatch: MAX_BATCH })), precision: 'fp32' };
  writeFileSync(path.join(work, 'fleet.json'), JSON.stringify(manifest));
  const out = path.join(root, name);
  if (shards > 0) await compileShards(readManifest(path.join(work, 'fleet.json')), out, { shards, nvcc: 'off' });
  else await compileFleet(path.join(work, 'fleet.json'), out, { nvcc: 'off' });
  return out;
}

export function tempRoot(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'loom-swap-'));
}

// Points `link` at `target` atomically (a new link renamed over the old one), as `ln -sfn` does not.
export function switchLink(link: string, target: string): void {
  const tmp = `${link}.next`;
  rmSync(tmp, { force: true });
  symlinkSync(target, tmp);
  renameSync(tmp, link);
}

// A copy of a plan directory with one byte of weights.bin flipped, or without plan.json.
export function brokenCopy(root: string, from: string, how: 'corrupt-weights' | 'no-plan-json'): string {
  const to = path.join(root, `broken-${how}`);
  cpSync(from, to, { recursive: true });
  if (how === 'no-plan-json') rmSync(path.join(to, 'plan.json'));
  else {
    const file = path.join(to, 'weights.bin');
    const bytes = new Uint8Array(readFileSync(file));
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    writeFileSync(file, bytes);
  }
  return to;
}

export function requestFor(plan: LaunchPlan, id: string, rows: number, seed: number): Record<string, Tensor> {
  const t = plan.tenants.find((x) => x.id === id);
  if (!t) throw new Error(`no tenant ${id} in this plan`);
  return exampleInputs(t, rows, seed, 50);
}

// Every plan's own answer to one request, for telling which plan served a response. Plans are numbered
// 1.. in the order given (the tests give them in the order they are swapped in: the generation).
export class PlanOracle {
  private constructor(readonly plans: ReadonlyArray<{ readonly generation: number; readonly loaded: LoadedPlan }>) {}

  static async load(dirs: readonly string[]): Promise<PlanOracle> {
    const plans = [];
    for (const [i, d] of dirs.entries()) plans.push({ generation: i + 1, loaded: await loadPlan(d, { backend: 'cpu', threads: 1 }) });
    return new PlanOracle(plans);
  }

  // The plans (numbered 1.. in the order given) whose plan answers `inputs` for `id` with exactly `outputs`.
  async whichPlans(id: string, inputs: Readonly<Record<string, Tensor>>, outputs: readonly OipOutput[]): Promise<number[]> {
    const out: number[] = [];
    for (const p of this.plans) {
      if (!p.loaded.plan.tenants.some((t) => t.id === id)) continue;
      const want = (await p.loaded.runTick({ [id]: inputs }))[id]!;
      if (outputs.length > 0 && outputs.every((o) => want[o.name] !== undefined && sameValues(o, want[o.name]!))) out.push(p.generation);
    }
    return out;
  }

  close(): void {
    for (const p of this.plans) p.loaded.close();
  }
}
