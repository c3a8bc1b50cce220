// A small mixed fleet for the serving tests (three MLPs, two of one shape so they share launches, an LSTM
// whose rows are on axis 1, a one-layer encoder with INT64 inputs), compiled with compileFleet into a
// temp dir, plus seeded request inputs and their expected outputs from a direct runTick.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LaunchPlan } from '../../codegen/index.js';
import type { Tensor } from '../../ir/tensor.js';
import { generateModel } from '../../models/index.js';
import type { LoadedPlan } from '../../runtime/index.js';
import { compileFleet } from '../../src/fleet/compile.js';
import { exampleInputs } from '../../src/fleet/inputs.js';
import { oipDatatype, tensorToJson } from '../../runtime/serve/index.js';

export const FLEET = [
  { id: 'mlp-a', kind: 'mlp', opts: { seed: 11, sizes: [32, 24, 5] }, maxBatch: 4 },
  { id: 'mlp-b', kind: 'mlp', opts: { seed: 12, sizes: [32, 24, 5] }, maxBatch: 4 },
  { id: 'mlp-c', kind: 'mlp', opts: { seed: 13, sizes: [16, 40, 3], linear: 'matmul', activation: 'relu' }, maxBatch: 2 },
  { id: 'lstm-a', kind: 'lstm', opts: { seed: 15, hidden: 8, inputSize: 6, seqLen: 3, classes: 4 }, maxBatch: 3 },
  { id: 'enc-a', kind: 'encoder', opts: { seed: 7, layers: 1, hidden: 32, heads: 2, ffn: 64, seq: 8, vocabSize: 50, maxPositions: 16 }, maxBatch: 2 },
] as const;

export type TenantId = (typeof FLEET)[number]['id'];

// Writes the models and manifest, compiles; returns the plan dir. `slo` sets sloMs per tenant, `checkFinite`
// lists the tenants whose manifest entry asks for the finite-value check.
export async function compileTestFleet(slo: Partial<Record<TenantId, number>> = {}, checkFinite: readonly TenantId[] = []): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'loom-serve-'));
  mkdirSync(path.join(dir, 'models'));
  for (const t of FLEET) writeFileSync(path.join(dir, 'models', `${t.id}.onnx`), generateModel(t.kind, t.opts as never).bytes);
  const manifest = {
    tenants: FLEET.map((t) => ({
      id: t.id,
      model: `models/${t.id}.onnx`,
      maxBatch: t.maxBatch,
      ...(slo[t.id] !== undefined ? { sloMs: slo[t.id] } : {}),
      ...(checkFinite.includes(t.id) ? { checkFinite: true } : {}),
    })),
    precision: 'fp32',
  };
  writeFileSync(path.join(dir, 'fleet.json'), JSON.stringify(manifest));
  const plan = path.join(dir, 'plan');
  await compileFleet(path.join(dir, 'fleet.json'), plan, { nvcc: 'off' });
  return plan;
}

export function tenantOf(plan: LaunchPlan, id: string) {
  const t = plan.tenants.find((x) => x.id === id);
  if (!t) throw new Error(`no tenant ${id}`);
  return t;
}

// Seeded inputs for one request (token ids within the test encoder's vocabulary).
export function requestInputs(plan: LaunchPlan, id: string, rows: number, seed: number): Record<string, Tensor> {
  return exampleInputs(tenantOf(plan, id), rows, seed, 50);
}

export function oipBody(inputs: Readonly<Record<string, Tensor>>, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    ...extra,
    inputs: Object.entries(inputs).map(([name, t]) => ({ name, shape: t.shape, datatype: oipDatatype(t.dtype), data: tensorToJson(t) })),
  });
}

// What the plan answers for this one request run alone: the reference the server must reproduce.
export async function expectedOutputs(loaded: LoadedPlan, id: string, inputs: Readonly<Record<string, Tensor>>): Promise<Record<string, Tensor>> {
  return (await loaded.runTick({ [id]: inputs }))[id]!;
}

export interface OipOutput {
  name: string;
  datatype: string;
  shape: number[];
  data: number[];
}

// The JSON output equals the tensor exactly (FP32 values survive JSON as doubles).
export function sameValues(got: OipOutput, want: Tensor): boolean {
  const w = tensorToJson(want);
  return (
    got.shape.length === want.shape.length &&
    got.shape.every((d, i) => d === want.shape[i]) &&
    got.data.length === w.length &&
    got.data.every((v, i) => v === w[i])
  );
}
