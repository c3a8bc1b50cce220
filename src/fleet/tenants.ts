// Manifest tenants → the planner's inputs: import each model (binding its symbolic dims) and canonicalize it.
import { LoomError, isLoomError } from '../../ir/errors.js';
import type { Graph } from '../../ir/graph.js';
import { markConsumable } from '../../ir/tensor.js';
import { importModelFile } from '../onnx/import.js';
import { canonicalize } from '../../ir/passes/index.js';
import type { TenantInput } from '../../ir/contract/plan.js';
import type { Manifest, TenantSpec } from './manifest.js';
import type { PhaseClock } from './timings.js';

// Imports and canonicalizes one tenant's model; any error names the tenant (a fleet has many models).
export function importTenant(t: TenantSpec, clock?: PhaseClock): Graph {
  try {
    if (clock === undefined) return canonicalize(consumed(importModelFile(t.modelPath, { dims: t.dims, name: t.id })));
    const imported = clock.time('import', () => importModelFile(t.modelPath, { dims: t.dims, name: t.id }));
    return clock.time('canonicalize', () => canonicalize(consumed(imported)));
  } catch (e) {
    if (isLoomError(e)) throw new LoomError(e.code, `tenant '${t.id}' (field 'model': ${t.model}): ${e.message}`);
    throw e;
  }
}

// Nothing keeps the imported graph once canonicalized, so passes may overwrite its constants' data.
function consumed(g: Graph): Graph {
  for (const t of g.constants.values()) markConsumable(t);
  return g;
}

export function loadTenants(manifest: Manifest, onTenant?: (t: TenantSpec, index: number) => void, clock?: PhaseClock): TenantInput[] {
  return manifest.tenants.map((t, i) => {
    onTenant?.(t, i);
    return { id: t.id, model: t.model, graph: importTenant(t, clock), maxBatch: t.maxBatch, sloMs: t.sloMs, checkFinite: t.checkFinite };
  });
}
