// Models written by PyTorch 2.11's exporters (TorchScript and dynamo paths; see models/torch/export_models.py).
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { importModelFile } from '../../src/onnx/import.js';
import { checkAgainstOrt, makeFeeds, worstError } from './harness.js';

const DIR = path.resolve(import.meta.dirname, '../../models/torch/onnx');
const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.onnx'))
  .sort();

describe('PyTorch exports match onnxruntime through import and every pass', () => {
  it('the export set is present', () => {
    expect(files.length).toBeGreaterThanOrEqual(12);
  });
  for (const f of files) {
    it(f, async () => {
      const file = path.join(DIR, f);
      const g = importModelFile(file);
      const batch = g.symbols.length ? 3 : 1;
      const feeds = makeFeeds(g, { batch, seed: 7, intRange: 500 });
      // given the path, onnxruntime reads external data (.onnx.data) from the model's folder, as Loom does
      const reports = await checkAgainstOrt(file, g, feeds, { everyPass: true });
      const worst = worstError(reports);
      expect(worst.error, `worst at ${worst.stage} output ${worst.output}`).toBeLessThanOrEqual(1e-4);
    });
  }
});
