// importModelFile views initializers in the file's own buffer (sliding misaligned payloads over their field
// header); the values must be exactly what importModelBytes copies out, whatever the payload's alignment.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Tensor } from '../../ir/tensor.js';
import { importModelBytes, importModelFile } from '../../src/onnx/import.js';
import { type ModelSpec, encodeModel } from '../../src/onnx/write.js';
import { randomTensor, valueNamed } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'loom-raw-views-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// Names of growing length move each payload's offset by one byte, so every alignment mod 8 occurs.
const NAMES = ['a', 'bb', 'ccc', 'dddd', 'eeeee', 'ffffff', 'ggggggg', 'hhhhhhhh'];

function spec(dtype: 'f32' | 'f16' | 'i64' | 'bool'): { spec: ModelSpec; inits: Record<string, Tensor> } {
  const inits: Record<string, Tensor> = {};
  NAMES.forEach((n, i) => (inits[n] = randomTensor([3 + i, 40], 30 + i, dtype)));
  const sum = NAMES.slice(1).reduce(
    (acc, n, i) => {
      const out = i === NAMES.length - 2 ? 'z' : `s${i}`;
      return [
        ...acc,
        { op: 'Concat', name: `cat${i}`, inputs: [acc.length ? acc[acc.length - 1]!.outputs[0]! : NAMES[0]!, n], outputs: [out], attrs: { axis: 0 } },
      ];
    },
    [] as { op: string; name: string; inputs: string[]; outputs: string[]; attrs: Record<string, number> }[],
  );
  const rows = NAMES.reduce((a, _, i) => a + 3 + i, 0);
  return { spec: { inputs: [], outputs: [{ name: 'z', dtype, shape: [rows, 40] }], nodes: sum as ModelSpec['nodes'], initializers: inits }, inits };
}

describe('initializers viewed in the model file', () => {
  for (const dtype of ['f32', 'f16', 'i64', 'bool'] as const) {
    it(`${dtype}: same values as a copy at every payload alignment`, () => {
      const { spec: s, inits } = spec(dtype);
      const bytes = encodeModel(s);
      const file = join(tmp, `${dtype}.onnx`);
      writeFileSync(file, bytes);
      const viewed = importModelFile(file);
      const copied = importModelBytes(bytes);
      let views = 0;
      for (const n of NAMES) {
        const v = viewed.constants.get(valueNamed(viewed, n))!;
        const c = copied.constants.get(valueNamed(copied, n))!;
        expect(Array.from(v.data as ArrayLike<unknown>), n).toEqual(Array.from(inits[n]!.data as ArrayLike<unknown>));
        expect(Array.from(c.data as ArrayLike<unknown>), n).toEqual(Array.from(inits[n]!.data as ArrayLike<unknown>));
        if (v.data.buffer.byteLength > v.data.byteLength) views++;
        expect(c.data.buffer.byteLength, `${n}: importModelBytes must copy (it does not own the bytes)`).toBe(c.data.byteLength);
      }
      // f32/f16 payloads are always viewed (a slide of at most 3 bytes fits the field header); bool is checked, so copied
      expect(views).toBe(dtype === 'bool' ? 0 : dtype === 'i64' ? views : NAMES.length);
    });
  }
});
