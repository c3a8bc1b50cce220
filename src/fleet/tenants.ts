// Manifest tenants → the planner's inputs: import each model (binding its symbolic dims) and canonicalize it.
import { LoomError, fail, isLoomError } from '../../ir/errors.js';
import type { Graph } from '../../ir/graph.js';
import { markConsumable } from '../../ir/tensor.js';
import { type ImportOptions, importModelFile } from '../onnx/import.js';
import { type CanonicalizeOptions, canonicalize } from '../../ir/passes/index.js';
import type { TenantInput } from '../../ir/contract/plan.js';
import type { Manifest, TenantSpec } from './manifest.js';
import type { PhaseClock } from './timings.js';

// Any error names the tenant: a fleet has many models.
function inTenant<T>(t: TenantSpec, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (isLoomError(e)) throw new LoomError(e.code, `tenant '${t.id}' (field 'model': ${t.model}): ${e.message}`);
    throw e;
  }
}

// The tenant's model as imported (raw IR, its symbolic dims bound).
// hooks: the tenant cache's (it hashes the bytes read and notes external data files).
export function importTenantModel(t: TenantSpec, hooks?: Pick<ImportOptions, 'onModelBytes' | 'onExternalFile'>): Graph {
  return inTenant(t, () => {
    const g = importModelFile(t.modelPath, { dims: t.dims, name: t.id, ...hooks });
    if (g.inputs.length === 0) {
      fail('MODEL_INVALID', 'the model has no runtime inputs (graph.input is empty or lists only initializers), so no request could ever call it');
    }
    return g;
  });
}

// Nothing keeps the imported graph once canonicalized, so passes may overwrite its constants' data.
export function canonicalizeTenant(t: TenantSpec, imported: Graph, opts: CanonicalizeOptions = {}): Graph {
  return inTenant(t, () => canonicalize(consumed(imported), opts));
}

// Imports and canonicalizes one tenant's model.
export function importTenant(t: TenantSpec, clock?: PhaseClock): Graph {
  if (clock === undefined) return canonicalizeTenant(t, importTenantModel(t));
  const imported = clock.time('import', () => importTenantModel(t));
  return clock.time('canonicalize', () => canonicalizeTenant(t, imported));
}

function consumed(g: Graph): Graph {
  for (const t of g.constants.values()) markConsumable(t);
  return g;
}

export function tenantInput(t: TenantSpec, graph: Graph): TenantInput {
  return { id: t.id, model: t.model, graph, maxBatch: t.maxBatch, sloMs: t.sloMs, checkFinite: t.checkFinite };
}

export function loadTenants(manifest: Manifest, onTenant?: (t: TenantSpec, index: number) => void, clock?: PhaseClock): TenantInput[] {
  return manifest.tenants.map((t, i) => {
    onTenant?.(t, i);
    return tenantInput(t, importTenant(t, clock));
  });
}
