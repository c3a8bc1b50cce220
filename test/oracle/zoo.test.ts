// Every zoo family, as generated (real ONNX), against onnxruntime: after import and after every pass.
import { describe, expect, it } from 'vitest';
import { interpret } from '../../ir/interpret.js';
import { generateModel } from '../../models/index.js';
import { importModelBytes } from '../../src/onnx/import.js';
import { canonicalize } from '../../ir/passes/index.js';
import { checkAgainstOrt, makeFeeds, relativeError, runOrt, worstError } from './harness.js';

const TOL = 1e-4;

const CASES = [
  { kind: 'mlp', opts: { seed: 11 }, batch: 3 },
  { kind: 'mlp', opts: { seed: 12, activation: 'relu' }, batch: 2 },
  { kind: 'lstm', opts: { seed: 13 }, batch: 2 },
  { kind: 'lstm', opts: { seed: 14, hidden: 1024, inputSize: 64, seqLen: 2 }, batch: 1 },
  { kind: 'gru', opts: { seed: 15, hidden: 512 }, batch: 2 },
  { kind: 'resnet18', opts: { seed: 16 }, batch: 1 },
  { kind: 'encoder', opts: { seed: 17 }, batch: 2, intRange: 8192 },
  { kind: 'mobilenet', opts: { seed: 18 }, batch: 1 },
  { kind: 'squeezenet', opts: { seed: 19 }, batch: 1 },
] as const;

describe('zoo models match onnxruntime through import and every canonicalizing pass', () => {
  for (const c of CASES) {
    it(`${c.kind} ${JSON.stringify(c.opts)} batch ${c.batch}`, async () => {
      const model = generateModel(c.kind, c.opts as never);
      const g = importModelBytes(model.bytes, { name: model.name });
      const feeds = makeFeeds(g, { batch: c.batch, seed: c.opts.seed, intRange: 'intRange' in c ? c.intRange : 10 });
      const reports = await checkAgainstOrt(model.bytes, g, feeds, { everyPass: true });
      const worst = worstError(reports);
      expect(reports.length).toBeGreaterThan(1);
      expect(worst.error, `worst at ${worst.stage} output ${worst.output}`).toBeLessThanOrEqual(TOL);
    });
  }
});

describe('the oracle can tell tenants apart', () => {
  it('a model with other weights (another seed) does not pass as this one', async () => {
    const a = generateModel('mlp', { seed: 1 });
    const b = generateModel('mlp', { seed: 2 });
    const gb = canonicalize(importModelBytes(b.bytes));
    const feeds = makeFeeds(gb, { batch: 2, seed: 3 });
    const want = await runOrt(a.bytes, feeds);
    const got = interpret(gb, feeds);
    const name = Object.keys(want)[0]!;
    expect(relativeError(got[name]!, want[name]!)).toBeGreaterThan(1e-2);
  });
});
