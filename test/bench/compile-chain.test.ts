// Compile time must grow near-linearly with graph size (issue 14, defect 7: a 20k-node chain took 4.3 s, a
// 100k-node one 168 s). Not a timed benchmark: 5k vs 20k nodes of the same chain must cost less than 8x (linear
// is 4x, quadratic 16x), so only a superlinear stage fails it. Runs import → plan in process (--emit plan).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type ChainKind, chainModelSpec, parseChains, prepareChain } from '../../bench/compile-time.js';
import { compileFleet } from '../../src/fleet/compile.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'loom-chain-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function seconds(kind: ChainKind, nodes: number): Promise<number> {
  const manifest = prepareChain(work, kind, nodes);
  const t0 = performance.now();
  const r = await compileFleet(manifest, path.join(path.dirname(manifest), 'out'), { emit: 'plan', nvcc: 'off' });
  const s = (performance.now() - t0) / 1000;
  expect(r.plan!.tenants[0]!.layers).toBeGreaterThan(0);
  return s;
}

describe('compile time of a long chain', () => {
  it('the bench writes the chain models it names', () => {
    expect(parseChains('eltwise:20000,matmul:5')).toEqual([
      { kind: 'eltwise', nodes: 20000 },
      { kind: 'matmul', nodes: 5 },
    ]);
    expect(parseChains('none')).toEqual([]);
    expect(() => parseChains('conv:3')).toThrow(/--chains/);
    const spec = chainModelSpec('eltwise', 5);
    expect(spec.nodes.map((n) => n.op)).toEqual(['Add', 'Relu', 'Add', 'Relu', 'Add']);
    expect(spec.nodes.at(-1)!.outputs).toEqual(['y']);
  });

  for (const kind of ['eltwise', 'matmul'] as const) {
    it(`${kind}: 20k nodes cost less than 8x 5k nodes`, async () => {
      await seconds(kind, 1000); // warm up the JIT
      const small = await seconds(kind, 5000);
      const big = await seconds(kind, 20000);
      expect(big, `5k: ${small.toFixed(2)} s, 20k: ${big.toFixed(2)} s`).toBeLessThan(Math.max(8 * small, 2));
      expect(big).toBeLessThan(60);
    }, 300_000);
  }
});
