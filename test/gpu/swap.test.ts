// Hot plan swap on CUDA (issue 15 item 1): `loom serve`'s reload between two CUDA plans of the same tenants
// (different weights) frees the old plan's device memory once it has drained. Device memory is read from the
// serving plan's backendInfo().deviceFreeBytes (cudaMemGetInfo on its GPU, cuda_stats in
// native/src/backend_cuda.cc). Skips without a GPU (gpu-env.ts), or, saying so, with an addon built before
// that number existed.
// Run alone (vitest run test/gpu/swap.test.ts): other GPU test files running beside it move the free memory it reads.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromNumbers } from '../../ir/tensor.js';
import type { LoadedPlan } from '../../runtime/index.js';
import { type LoomServer, type ServeRunner, createServer } from '../../runtime/serve/index.js';
import { type ServeSource, loadServeSource } from '../../src/cli/serve-reload.js';
import { type OipOutput, oipBody } from '../serve/fleet.js';
import { PlanOracle, type SwapTenant, compileSwapPlan, requestFor, switchLink, tempRoot } from '../serve/swap-fleet.js';
import { relativeError } from '../support/tensors.js';
import { GPU_SKIP_REASON } from './gpu-env.js';

// ~33.6 MB of f32 weights per tenant, three tenants: ~100 MB a plan, far above the measuring noise
const SIZES = [1024, 4096, 1024];
const A: SwapTenant[] = [
  { id: 'keep-1', seed: 61 },
  { id: 'keep-2', seed: 62 },
  { id: 'gone', seed: 63 },
];
const B: SwapTenant[] = [
  { id: 'keep-1', seed: 71 },
  { id: 'keep-2', seed: 72 },
  { id: 'added', seed: 74 },
];

const MiB = 1024 * 1024;
let root = '';
let dirs: string[] = [];
let oracle: PlanOracle; // the same plans on the CPU backend
let server: LoomServer;
let url = '';

// What the serving plan's backend says about device memory now.
function deviceNumbers(runner: ServeRunner): { free: number | null; weights: number } {
  const info = (runner as unknown as LoadedPlan).backendInfo();
  return { free: typeof info.deviceFreeBytes === 'number' ? info.deviceFreeBytes : null, weights: info.weightBytes as number };
}

describe.skipIf(GPU_SKIP_REASON !== null)('hot swap between two CUDA plans', () => {
  beforeAll(async () => {
    root = tempRoot();
    dirs = [await compileSwapPlan(root, 'a', A, 0, SIZES), await compileSwapPlan(root, 'b', B, 0, SIZES)];
    oracle = await PlanOracle.load(dirs);
  }, 300_000);
  afterAll(async () => {
    await server?.shutdown();
    oracle?.close();
  });

  it("frees the old plan's device memory after the switch, and the new plan answers", async (ctx) => {
    const link = path.join(root, 'current');
    switchLink(link, dirs[0]!);
    const src: ServeSource = { dir: link, backend: 'cuda' };
    const first = await loadServeSource(src);
    const withA = deviceNumbers(first.value.runner!);
    if (withA.free === null) {
      first.close();
      process.stdout.write(
        'test/gpu/swap.test.ts: skipped: backendInfo() has no deviceFreeBytes (cuda_stats in native/src/backend_cuda.cc): rebuild the addon (npm run build:native)\n',
      );
      ctx.skip();
    }
    expect(withA.weights).toBe(first.value.runner!.plan.arenas.weights);
    server = createServer({ runner: first.value.runner!, planSource: { source: first.source, sha: first.sha }, reload: () => loadServeSource(src) });
    url = await server.listen(0, '127.0.0.1');

    const ask = async (id: string, seed: number) => {
      const plan = oracle.plans.find((p) => p.loaded.plan.tenants.some((t) => t.id === id))!.loaded.plan;
      const inputs = requestFor(plan, id, 2, seed);
      const r = await fetch(`${url}/v2/models/${id}/infer`, { method: 'POST', body: oipBody(inputs) });
      const body = (await r.json()) as { outputs?: OipOutput[]; error?: string };
      return { status: r.status, body, inputs };
    };
    // which CPU plan the CUDA answer matches (fp32 plans: within 1e-4)
    const servedBy = async (id: string, seed: number) => {
      const r = await ask(id, seed);
      expect(r.status, r.body.error).toBe(200);
      const close: number[] = [];
      for (const [k, p] of oracle.plans.entries()) {
        if (!p.loaded.plan.tenants.some((t) => t.id === id)) continue;
        const want = (await p.loaded.runTick({ [id]: r.inputs }))[id]!;
        if (r.body.outputs!.every((o) => relativeError(fromNumbers('f32', o.shape, o.data), want[o.name]!) < 1e-4)) close.push(k + 1);
      }
      return close;
    };
    expect(await servedBy('keep-1', 1)).toEqual([1]);
    const freeWithA = deviceNumbers(first.value.runner!).free!; // after a tick: everything the plan allocates is allocated

    const levels: number[] = []; // free device memory after each swap
    for (const [k, next] of [dirs[1]!, dirs[0]!, dirs[1]!].entries()) {
      switchLink(link, next);
      const got: { runner?: ServeRunner } = {};
      const r = await server.plans.reload(async () => {
        const l = await loadServeSource(src);
        got.runner = l.value.runner!;
        return l;
      });
      expect(r.ok, r.error ?? '').toBe(true);
      const plan = next === dirs[0] ? 1 : 2;
      expect(await servedBy('keep-1', 10 + k)).toEqual([plan]);
      // reload() resolves once the old plan is freed: the free memory is back to one plan's worth (both plans
      // have the same sizes); had the old plan stayed, it would be less by at least its weights
      const now = deviceNumbers(got.runner!);
      process.stdout.write(
        `swap ${k + 1}: free device memory ${(now.free! / MiB).toFixed(1)} MiB, with plan A alone ${(freeWithA / MiB).toFixed(1)} MiB (a plan's weights: ${(now.weights / MiB).toFixed(1)} MiB)\n`,
      );
      expect.soft(now.free!, `swap ${k + 1}: the old plan's memory came back`).toBeGreaterThan(freeWithA - now.weights / 2);
      levels.push(now.free!);
    }
    // and swapping does not leak: the third swap (to plan B again) leaves what the first one did
    expect(levels[2]!, 'swap 3 against swap 1').toBeGreaterThan(levels[0]! - withA.weights / 2);
    expect((await ask('gone', 5)).status).toBe(404);
  }, 300_000);
});
