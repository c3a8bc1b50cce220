// Sharding: the partitioner on a synthetic cost (exact expectations), then on a real mixed fleet with the
// planner's cost model (balanced predicted ticks, same-architecture tenants together, near the best class-level
// split), the refusals, and the files `loom compile --shards` writes.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readManifest } from '../../src/fleet/manifest.js';
import { type PieceCost, batchClasses, partition, sloTickCapUs } from '../../src/fleet/shard.js';
import { compileShards, planShards } from '../../src/fleet/shard-compile.js';
import { readShardsFile } from '../../src/fleet/shards-file.js';
import { formatShards } from '../../src/fleet/shards-summary.js';
import { expectLoomError } from '../support/errors.js';
import { MIXED, idsOf, writeFleet } from './shard-fleet.js';

// A synthetic planner: tenants of one architecture batch (one launch set per architecture, +1 us per tenant).
function synthetic(archs: readonly string[], archUs: Record<string, number>, bytes: readonly number[]) {
  const measure = (m: readonly number[]): PieceCost => {
    const kinds = new Set(m.map((i) => archs[i]!));
    return { tickUs: [...kinds].reduce((a, k) => a + archUs[k]!, 0) + m.length, bytes: m.reduce((a, i) => a + bytes[i]!, 0) };
  };
  const classes = batchClasses(
    archs.length,
    (i) => measure([i]).tickUs,
    (i, j) => measure([i, j]).tickUs,
  );
  return { measure, classes };
}

describe('partition (synthetic cost)', () => {
  const archs = ['a', 'a', 'a', 'b', 'b', 'c', 'c', 'c', 'd'];
  const archUs = { a: 100, b: 90, c: 60, d: 40 };
  const bytes = archs.map(() => 1000);
  const tenants = archs.map((a, i) => ({ id: `${a}${i}`, sloMs: null }));

  it('finds the batch classes and keeps each on one shard when that balances', () => {
    const { measure, classes } = synthetic(archs, archUs, bytes);
    expect(classes).toEqual([[0, 1, 2], [3, 4], [5, 6, 7], [8]]);
    const r = partition({ tenants, classes, shards: 2, budgetBytes: 1e9, measure });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.splits).toBe(0);
    // a(103) + d(41) = 144 vs b(92) + c(63) = 155
    expect(r.shards.map((s) => s.tenants)).toEqual([
      [0, 1, 2, 8],
      [3, 4, 5, 6, 7],
    ]);
    const ticks = r.shards.map((s) => s.tickUs);
    expect(Math.max(...ticks) / Math.min(...ticks)).toBeLessThanOrEqual(1.2);
    expect(partition({ tenants, classes, shards: 2, budgetBytes: 1e9, measure })).toEqual(r); // deterministic
  });

  it('splits a class when the memory budget needs it', () => {
    const five = ['a', 'a', 'a', 'a', 'a', 'b', 'b', 'c', 'c'];
    const { measure, classes } = synthetic(five, archUs, bytes);
    const names = five.map((a, i) => ({ id: `${a}${i}`, sloMs: null }));
    const r = partition({ tenants: names, classes, shards: 3, budgetBytes: 3000, measure }); // five a's (5000 bytes) must split
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    for (const s of r.shards) expect(s.bytes).toBeLessThanOrEqual(3000);
    expect(r.shards.flatMap((s) => s.tenants).sort((x, y) => x - y)).toEqual(five.map((_, i) => i));
    expect(r.splits).toBeGreaterThan(0);
    expect(partition({ tenants: names, classes, shards: 2, budgetBytes: 3000, measure })).toEqual({ ok: false, reason: '' }); // 9000 bytes > 2 x 3000
  });

  it("keeps each shard's tick within half of its tenants' sloMs", () => {
    const slo = archs.map((a, i) => ({ id: `${a}${i}`, sloMs: a === 'd' ? 0.1 : null })); // d: tick ≤ 50 us
    const { measure, classes } = synthetic(archs, archUs, bytes);
    const r = partition({ tenants: slo, classes, shards: 3, budgetBytes: 1e9, measure });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const home = r.shards.find((s) => s.tenants.includes(8))!;
    expect(home.tickUs).toBeLessThanOrEqual(sloTickCapUs(0.1));
    expect(home.tenants).toEqual([8]);
  });

  it('names the tenant that no device fits, with bytes', () => {
    const big = bytes.map((b, i) => (i === 5 ? 5_000_000 : i === 6 ? 4_000_000 : b));
    const { measure, classes } = synthetic(archs, archUs, big);
    const r = partition({ tenants, classes, shards: 2, budgetBytes: 1_000_000, measure });
    expect(r).toEqual({ ok: false, reason: expect.stringContaining("tenant 'c5' alone needs 4.8 MiB (5000000 bytes)") });
    expect(r.ok ? '' : r.reason).toContain('(1 other tenant too)');
    expect(r.ok ? '' : r.reason).toContain('976.6 KiB (1000000 bytes)');
  });

  it('refuses an SLO no device can meet', () => {
    const slo = archs.map((a, i) => ({ id: `${a}${i}`, sloMs: i === 0 ? 0.05 : null })); // 25 us, but a alone is 101 us
    const { measure, classes } = synthetic(archs, archUs, bytes);
    const r = partition({ tenants: slo, classes, shards: 2, budgetBytes: 1e9, measure });
    expect(r.ok ? '' : r.reason).toMatch(/tenant 'a0' alone predicts a 101\.0 us tick, more than half its sloMs 0\.05/);
  });
});

describe('sharding a mixed fleet with the cost model', () => {
  const manifestPath = writeFleet(MIXED);
  const manifest = readManifest(manifestPath);
  const idIndex = new Map(manifest.tenants.map((t, i) => [t.id, i]));

  it('balances predicted ticks within 20% and keeps same-architecture tenants together (2 shards)', async () => {
    const { result, plans } = await planShards(manifest, { shards: 2 });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const ticks = result.shards.map((s) => plans(s.tenants).cost.predictedTickUs);
    expect(Math.max(...ticks) / Math.min(...ticks)).toBeLessThanOrEqual(1.2);
    for (const a of MIXED) {
      const homes = new Set(idsOf(a).map((id) => result.shards.findIndex((s) => s.tenants.includes(idIndex.get(id)!))));
      expect(homes.size, `${a.prefix}* on one shard`).toBe(1);
    }
    // one plan of the whole fleet is slower than the slower shard: sharding halves the tick to within 20%
    const whole = plans(manifest.tenants.map((_, i) => i)).cost.predictedTickUs;
    expect(Math.max(...ticks)).toBeLessThan(0.6 * whole);
  });

  it('comes within 5% of the best placement of whole architectures (exhaustive, 2 and 3 shards)', async () => {
    for (const n of [2, 3]) {
      const { result, plans } = await planShards(manifest, { shards: n });
      expect(result.ok).toBe(true);
      if (!result.ok) return;
      const got = Math.max(...result.shards.map((s) => plans(s.tenants).cost.predictedTickUs));
      const groups = MIXED.map((a) => idsOf(a).map((id) => idIndex.get(id)!));
      let best = Number.POSITIVE_INFINITY;
      for (let code = 0; code < n ** groups.length; code++) {
        const shards: number[][] = Array.from({ length: n }, () => []);
        for (let g = 0, c = code; g < groups.length; g++, c = Math.floor(c / n)) shards[c % n]!.push(...groups[g]!);
        if (shards.some((s) => s.length === 0)) continue;
        best = Math.min(best, Math.max(...shards.map((s) => plans(s.sort((x, y) => x - y)).cost.predictedTickUs)));
      }
      expect(got, `${n} shards`).toBeLessThanOrEqual(best * 1.05);
    }
  });

  it('refuses a fleet that does not fit, saying how many shards would', async () => {
    const { result } = await planShards(manifest, { shards: 1 });
    expect(result.ok).toBe(true);
    // every shard within ~45% of the whole fleet's bytes: one or two shards cannot hold it
    const { plans } = await planShards(manifest, { shards: 1 });
    const total = plans(manifest.tenants.map((_, i) => i));
    const whole = total.arenas.weights + total.arenas.act + total.arenas.io;
    const budget = Math.floor(whole * 0.45);
    const r = await planShards(manifest, { shards: 1, deviceMemoryBytes: budget });
    expect(r.result.ok).toBe(false);
    const reason = r.result.ok ? '' : r.result.reason;
    expect(reason).toMatch(/does not fit 1 shard of --device-memory .*\(\d+ bytes\); it needs --shards (\d+)/);
    const needed = Number(/--shards (\d+)$/.exec(reason)![1]);
    expect(needed).toBeGreaterThanOrEqual(3);
    expect((await planShards(manifest, { shards: needed, deviceMemoryBytes: budget })).result.ok).toBe(true);
    expect((await planShards(manifest, { shards: needed - 1, deviceMemoryBytes: budget })).result.ok).toBe(false);
    await expect(
      compileShards(manifest, path.join(path.dirname(manifestPath), 'refused'), { shards: 1, deviceMemoryBytes: budget, nvcc: 'off' }),
    ).rejects.toThrow(/^cannot shard: .*it needs --shards \d+$/);
    expectLoomError(() => readShardsFile(path.join(path.dirname(manifestPath), 'refused')), 'IO');
  });

  it('writes shard plan directories and shards.json that inspect reads', async () => {
    const out = path.join(path.dirname(manifestPath), 'shards');
    const r = await compileShards(manifest, out, { shards: 2, nvcc: 'off' });
    const file = readShardsFile(out);
    expect(file.shards.map((s) => s.tenants.length).reduce((a, b) => a + b, 0)).toBe(manifest.tenants.length);
    for (const [k, s] of file.shards.entries()) {
      const plan = JSON.parse(readFileSync(path.join(out, s.dir, 'plan.json'), 'utf8')) as { tenants: { id: string }[] };
      expect(plan.tenants.map((t) => t.id)).toEqual(s.tenants);
      expect(s.predictedTickUs).toBe(r.results[k]!.plan!.cost.predictedTickUs);
      expect(s.deviceBytes).toBe(s.weightsBytes + s.activationBytes + s.ioBytes);
    }
    const text = formatShards(file);
    expect(text).toMatch(/shard 0\s+shard 1/);
    expect(text).toContain('predicted tick');
  });
});
