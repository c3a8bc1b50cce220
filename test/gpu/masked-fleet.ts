// What the CUDA tests of partly occupied ticks share: feeds for the tenants a mask keeps live, and a CUDA load
// with backend environment switches (LOOM_CUDA_SPARSE, LOOM_CUDA_OVERLAP, ... are read when the backend is
// created, so they are set only around the load).
import type { Tensor } from '../../ir/tensor.js';
import { type BackendEnv, type LoadedPlan, type LoadPlanOptions, loadPlan, withBackendEnv } from '../../runtime/index.js';
import { makeFeeds } from '../oracle/harness.js';
import type { TestTenant } from '../planner/fleet-helpers.js';

export type Feeds = Record<string, Record<string, Tensor>>;

// Every live tenant's inputs at its maxBatch, seeded per tenant.
export function feedsFor(ts: readonly TestTenant[], seed: number, live: (i: number) => boolean): Feeds {
  const feeds: Feeds = {};
  ts.forEach((t, i) => {
    if (live(i)) feeds[t.input.id] = makeFeeds(t.input.graph, { batch: t.input.maxBatch, seed: seed + i, intRange: t.intRange ?? 50 });
  });
  return feeds;
}

export function loadCudaWith(dir: string, env: BackendEnv, opts: LoadPlanOptions = {}): Promise<LoadedPlan> {
  return withBackendEnv(env, () => loadPlan(dir, { backend: 'cuda', ...opts }));
}
