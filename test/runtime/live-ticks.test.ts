// Ticks with a few live tenants among thousands (issue 18: host cost follows the live tenants), on the CPU
// backend: 2,000 small MLPs compiled once. A 10%-live tick returns exactly what a full tick returns for those
// tenants, in the order given and no others; its result holds only their bytes; results stay as they were while
// later ticks run other tenants.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tensor } from '../../ir/tensor.js';
import { type LoadedPlan, type TickOutputs, loadPlan } from '../../runtime/index.js';
import { compileFleet } from '../../src/fleet/compile.js';
import { exampleInputs } from '../../src/fleet/inputs.js';
import { spreadTenants, writeTenantFleet } from '../../bench/tenant-fleet.js';

const TENANTS = 2000;
let dir: string;
let loaded: LoadedPlan;
let feeds: Record<string, Record<string, Tensor>>; // every tenant's inputs: 2 rows for every third tenant, else 1
let full: TickOutputs;

const values = (o: TickOutputs, id: string) =>
  Object.entries(o[id]!).map(([name, t]) => ({ name, shape: [...t.shape], data: Array.from(t.data as Float32Array) }));

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'loom-live-ticks-'));
  const fleet = writeTenantFleet(dir, { count: TENANTS, sizes: [8, 8, 4], maxBatch: 2 });
  await compileFleet(fleet.manifest, path.join(dir, 'plan'), { nvcc: 'off' });
  loaded = await loadPlan(path.join(dir, 'plan'), { backend: 'cpu', threads: 1 });
  feeds = Object.fromEntries(loaded.plan.tenants.map((t, i) => [t.id, exampleInputs(t, i % 3 === 0 ? 2 : 1, 40 + i)]));
  full = await loaded.runTick(feeds);
}, 120_000);

afterAll(() => {
  loaded?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe(`live tenants among ${TENANTS}`, () => {
  it('a 10%-live tick returns exactly the full tick’s outputs for its tenants, in the order given, and no others', async () => {
    expect(Object.keys(full)).toHaveLength(TENANTS);
    const live = spreadTenants(
      loaded.plan.tenants.map((t) => t.id),
      0.1,
    ).reverse(); // not plan order
    const out = await loaded.runTick(Object.fromEntries(live.map((id) => [id, feeds[id]!])));
    expect(Object.keys(out)).toEqual(live);
    for (const id of live) expect(values(out, id)).toEqual(values(full, id));
    // the result holds the live tenants' output bytes only (each slot 8-byte aligned), not the plan's
    const one = Object.values(out[live[0]!]!)[0]!.data.buffer;
    const perTenant = loaded.plan.tenants[0]!.outputs.reduce((a, io) => a + Math.ceil(io.bytes / 8) * 8, 0);
    expect(one.byteLength).toBe(live.length * perTenant);
    for (const id of live) for (const t of Object.values(out[id]!)) expect(t.data.buffer).toBe(one);
  });

  it('results stay as they were while later ticks run other tenants, with other inputs', async () => {
    const ids = loaded.plan.tenants.map((t) => t.id);
    const first = ids.filter((_, i) => i % 10 === 3);
    const second = ids.filter((_, i) => i % 10 === 4 || i % 10 === 3);
    const a = await loaded.runTick(Object.fromEntries(first.map((id) => [id, feeds[id]!])));
    const snapshot = first.map((id) => values(a, id));
    const other = Object.fromEntries(second.map((id, i) => [id, exampleInputs(loaded.plan.tenants[ids.indexOf(id)]!, 1, 9000 + i)]));
    const b = await loaded.runTick(other);
    await loaded.runTick(feeds);
    expect(first.map((id) => values(a, id))).toEqual(snapshot);
    for (const id of first) expect(values(a, id)).toEqual(values(full, id));
    expect(Object.keys(b)).toEqual(second);
    // the same tenants with their first inputs again: the full tick's answers
    const again = await loaded.runTick(Object.fromEntries(second.map((id) => [id, feeds[id]!])));
    for (const id of second) expect(values(again, id)).toEqual(values(full, id));
  });
});
