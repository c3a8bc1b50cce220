import { type Tensor, fromNumbers } from '../../ir/tensor.js';

// A synthetic text page for the PP-OCR detector: a light background with rows of dark strokes, normalized
// like PP-OCR preprocessing. Uniform noise reads as "no text": the detector's logits are then -13..-38 and
// its probability map ~1e-6, below the resolution of onnxruntime's float Sigmoid (a rational approximation
// with output steps ~3e-8), so a norm-wise error would measure onnxruntime's rounding, not Loom.
export function textPage(H: number, W: number, seed: number): Tensor {
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  let s = seed >>> 0;
  const rnd = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296;
  const ink = new Float64Array(H * W).fill(0.92);
  for (let y0 = 8; y0 + 12 < H; y0 += 24) {
    for (let x = 6; x < W - 6; x++) {
      if (rnd() < 0.35) continue;
      for (let y = y0; y < y0 + 12; y++) if (rnd() < 0.6) ink[y * W + x] = 0.1;
    }
  }
  const v = new Float64Array(3 * H * W);
  for (let c = 0; c < 3; c++) for (let i = 0; i < H * W; i++) v[c * H * W + i] = (ink[i]! + (rnd() - 0.5) * 0.05 - mean[c]!) / std[c]!;
  return fromNumbers('f32', [1, 3, H, W], v);
}
