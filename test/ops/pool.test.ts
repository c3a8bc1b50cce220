import { describe, expect, it } from 'vitest';
import { isLoomError } from '../../ir/errors.js';
import { toNumbers } from '../../ir/tensor.js';
import { attrsOf, evalOp, inferOp } from '../support/one-node.js';
import { tensor } from '../support/tensors.js';
import { checkOp, rand } from './helpers-la.js';

describe('MaxPool', () => {
  const x = () => rand([2, 3, 9, 11]);
  it('2x2 stride 2', async () => {
    await checkOp('MaxPool', [x()], { kernel_shape: [2, 2], strides: [2, 2] });
  });
  it('3x3 stride 2 pads 1 (ResNet stem)', async () => {
    await checkOp('MaxPool', [rand([1, 4, 16, 16])], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
  });
  it('ceil_mode', async () => {
    await checkOp('MaxPool', [x()], { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 });
  });
  it('ceil_mode with pads (last window starting in the padding is dropped)', async () => {
    await checkOp('MaxPool', [rand([1, 2, 6, 6])], { kernel_shape: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 });
  });
  it('dilations and asymmetric pads', async () => {
    await checkOp('MaxPool', [x()], { kernel_shape: [2, 3], dilations: [2, 2], pads: [0, 1, 1, 0] });
  });
  it('auto_pad SAME_UPPER / SAME_LOWER', async () => {
    await checkOp('MaxPool', [x()], { kernel_shape: [3, 2], strides: [2, 2], auto_pad: 'SAME_UPPER' });
    await checkOp('MaxPool', [x()], { kernel_shape: [3, 2], strides: [2, 2], auto_pad: 'SAME_LOWER' });
  });
  it('1-D', async () => {
    await checkOp('MaxPool', [rand([2, 3, 15])], { kernel_shape: [3], strides: [2], pads: [1, 1] });
  });
  it('Indices output, storage_order 0 and 1', async () => {
    await checkOp('MaxPool', [x()], { kernel_shape: [2, 2], strides: [2, 2] }, 2);
    await checkOp('MaxPool', [x()], { kernel_shape: [3, 3], strides: [2, 1], pads: [1, 1, 1, 1], storage_order: 1 }, 2);
  });
});

describe('AveragePool', () => {
  for (const countIncludePad of [0, 1]) {
    it(`pads, count_include_pad=${countIncludePad}`, async () => {
      await checkOp('AveragePool', [rand([2, 3, 9, 10])], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: countIncludePad });
    });
    it(`ceil_mode, asymmetric pads, count_include_pad=${countIncludePad}`, async () => {
      await checkOp('AveragePool', [rand([1, 2, 10, 9])], {
        kernel_shape: [3, 2],
        strides: [2, 2],
        pads: [0, 1, 1, 0],
        ceil_mode: 1,
        count_include_pad: countIncludePad,
      });
    });
  }
  it('auto_pad SAME_UPPER', async () => {
    await checkOp('AveragePool', [rand([1, 2, 7, 7])], { kernel_shape: [2, 2], strides: [2, 2], auto_pad: 'SAME_UPPER' });
  });
  it('1-D', async () => {
    await checkOp('AveragePool', [rand([2, 3, 12])], { kernel_shape: [4], strides: [3], pads: [2, 1] });
  });
});

describe('global pools', () => {
  it('GlobalAveragePool / GlobalMaxPool 2-D and 1-D', async () => {
    await checkOp('GlobalAveragePool', [rand([2, 5, 7, 6])]);
    await checkOp('GlobalMaxPool', [rand([2, 5, 7, 6])]);
    await checkOp('GlobalAveragePool', [rand([2, 5, 9])]);
  });
  it('infer keeps the symbolic batch', () => {
    expect(inferOp('GlobalAveragePool', [{ type: { dtype: 'f32', shape: ['N', 512, 7, 7] } }])[0]!.type.shape).toEqual(['N', 512, 1, 1]);
    const r = inferOp('MaxPool', [{ type: { dtype: 'f32', shape: ['N', 64, 112, 112] } }], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
    expect(r[0]!.type.shape).toEqual(['N', 64, 56, 56]);
  });
});

describe('Resize', () => {
  const scales = (v: number[]) => tensor('f32', [v.length], v);
  const sizes = (v: number[]) => tensor('i64', [v.length], v);
  for (const nearestMode of ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil']) {
    for (const ctm of ['asymmetric', 'half_pixel', 'align_corners', 'tf_half_pixel_for_nn']) {
      it(`nearest ${nearestMode} ${ctm}, scales x2,x3 and x0.75,x0.5`, async () => {
        const attrs = { mode: 'nearest', nearest_mode: nearestMode, coordinate_transformation_mode: ctm };
        await checkOp('Resize', [rand([1, 2, 5, 4]), null, scales([1, 1, 2, 3])], attrs);
        await checkOp('Resize', [rand([1, 2, 10, 8]), null, scales([1, 1, 0.75, 0.5])], attrs);
      });
    }
  }
  it('nearest with sizes (torch style)', async () => {
    await checkOp('Resize', [rand([2, 3, 5, 7]), null, null, sizes([2, 3, 12, 9])], {
      mode: 'nearest',
      coordinate_transformation_mode: 'asymmetric',
      nearest_mode: 'floor',
    });
  });
  it('PaddleOCR det form: nearest, scales, empty roi', async () => {
    await checkOp('Resize', [rand([1, 4, 8, 8]), tensor('f32', [0], []), scales([1, 1, 2, 2])], {
      mode: 'nearest',
      coordinate_transformation_mode: 'asymmetric',
      nearest_mode: 'floor',
    });
  });
  for (const ctm of ['half_pixel', 'asymmetric', 'align_corners', 'pytorch_half_pixel']) {
    it(`linear ${ctm}: up by scales, down by sizes, to 1 pixel`, async () => {
      const attrs = { mode: 'linear', coordinate_transformation_mode: ctm };
      await checkOp('Resize', [rand([2, 3, 4, 5]), null, scales([1, 1, 2.5, 1.5])], attrs);
      await checkOp('Resize', [rand([1, 2, 9, 7]), null, null, sizes([1, 2, 4, 5])], attrs);
      await checkOp('Resize', [rand([1, 2, 3, 3]), null, null, sizes([1, 2, 1, 4])], attrs);
    });
  }
  it('axes attribute (opset 18 form) equals full scales', () => {
    const x = rand([1, 2, 4, 5]);
    const full = evalOp('Resize', [x, null, scales([1, 1, 2, 2])], { mode: 'linear' })[0]!;
    const axes = evalOp('Resize', [x, null, scales([2, 2])], { mode: 'linear', axes: [2, -1] })[0]!;
    expect(axes.shape).toEqual([1, 2, 8, 10]);
    expect(Array.from(toNumbers(axes))).toEqual(Array.from(toNumbers(full)));
  });
  it('keep_aspect_ratio_policy not_larger', () => {
    const y = evalOp('Resize', [rand([1, 1, 4, 8]), null, null, sizes([6, 6])], { axes: [2, 3], keep_aspect_ratio_policy: 'not_larger' })[0]!;
    expect(y.shape).toEqual([1, 1, 3, 6]);
  });
  it('infers from constant scales and from symbolic sizes dims', () => {
    const s = scales([1, 1, 2, 2]);
    const r = inferOp('Resize', [{ type: { dtype: 'f32', shape: ['N', 3, 20, 30] } }, null, { type: { dtype: 'f32', shape: [4] }, value: s }]);
    expect(r[0]!.type.shape).toEqual(['N', 3, 40, 60]);
    const r2 = inferOp('Resize', [
      { type: { dtype: 'f32', shape: ['N', 3, 20, 30] } },
      null,
      null,
      { type: { dtype: 'i64', shape: [4] }, dims: ['N', 3, 64, 64] },
    ]);
    expect(r2[0]!.type.shape).toEqual(['N', 3, 64, 64]);
    expect(() => inferOp('Resize', [{ type: { dtype: 'f32', shape: [1, 3, 20, 30] } }, null, { type: { dtype: 'f32', shape: [4] } }])).toThrow(/constant/);
  });
  it('cubic and antialias are UNSUPPORTED_FEATURE', () => {
    for (const attrs of [{ mode: 'cubic' }, { antialias: 1 }, { coordinate_transformation_mode: 'tf_crop_and_resize' }] as Record<string, string | number>[]) {
      try {
        attrsOf('Resize', attrs);
        expect.unreachable();
      } catch (e) {
        expect(isLoomError(e) && e.code).toBe('UNSUPPORTED_FEATURE');
      }
    }
  });
});
