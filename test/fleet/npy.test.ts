import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DType } from '../../ir/dtype.js';
import { fromNumbers } from '../../ir/tensor.js';
import { decodeNpy, encodeNpy, readNpy, writeNpy } from '../../runtime/npy.js';
import { expectLoomError } from '../support/errors.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'loom-npy-'));

// What numpy 2.x `np.save` writes: magic, version 1.0, header length 118 (little-endian u16), the header
// dict padded with spaces (numpy also reserves room to grow shape[0]) to a 64-byte boundary, then '\n'.
function numpyFile(dict: string, dataHex: string): Uint8Array {
  const headerLen = 118;
  const header = dict + ' '.repeat(headerLen - 1 - dict.length) + '\n';
  return Uint8Array.from([
    0x93,
    ...Buffer.from('NUMPY'),
    1,
    0,
    headerLen & 0xff,
    headerLen >> 8,
    ...Buffer.from(header, 'latin1'),
    ...Buffer.from(dataHex, 'hex'),
  ]);
}

describe('npy', () => {
  it('writes the same bytes as numpy for known arrays', () => {
    // np.save('a.npy', np.arange(6, dtype='<f4').reshape(2, 3) * 0.5)
    const f32 = numpyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", '000000000000003f0000803f0000c03f0000004000002040');
    expect(Buffer.from(encodeNpy(fromNumbers('f32', [2, 3], [0, 0.5, 1, 1.5, 2, 2.5])))).toEqual(Buffer.from(f32));
    // np.save('b.npy', np.array([[True, False], [False, True]]))
    const bool = numpyFile("{'descr': '|b1', 'fortran_order': False, 'shape': (2, 2), }", '01000001');
    expect(Buffer.from(encodeNpy(fromNumbers('bool', [2, 2], [1, 0, 0, 1])))).toEqual(Buffer.from(bool));
    // np.save('c.npy', np.array([-1, 2**40, 3], dtype='<i8'))
    const i64 = numpyFile("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", 'ffffffffffffffff00000000000100000300000000000000');
    expect(Buffer.from(encodeNpy(fromNumbers('i64', [3], [-1, 2 ** 40, 3])))).toEqual(Buffer.from(i64));
    const back = decodeNpy(i64);
    expect(back.dtype).toBe('i64');
    expect(Array.from(back.data as BigInt64Array)).toEqual([-1n, 2n ** 40n, 3n]);
    expect(encodeNpy(fromNumbers('f32', [2, 3], [0, 0, 0, 0, 0, 0])).length).toBe(128 + 24); // data follows a 128-byte header
  });

  it('round-trips every supported dtype, including scalars and empty arrays', () => {
    const cases: Array<[DType, number[], number[]]> = [
      ['f32', [2, 2], [1.5, -2, 3.25, 1e-30]],
      ['f64', [3], [Math.PI, -1e300, 0]],
      ['f16', [2, 1], [0.5, -65504]],
      ['i64', [], [-123456789012]],
      ['i32', [1, 3], [-2147483648, 0, 2147483647]],
      ['i8', [3], [-128, 0, 127]],
      ['u8', [3], [0, 128, 255]],
      ['bool', [4], [1, 0, 1, 1]],
      ['f32', [0, 5], []],
    ];
    for (const [dtype, shape, values] of cases) {
      const t = fromNumbers(dtype, shape, values);
      const file = path.join(tmp, `rt-${dtype}-${shape.join('x')}.npy`);
      writeNpy(file, t);
      const back = readNpy(file);
      expect(back.dtype).toBe(dtype);
      expect(back.shape).toEqual(shape);
      expect(Buffer.from(back.data.buffer, back.data.byteOffset, back.data.byteLength)).toEqual(
        Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength),
      );
      expect(readFileSync(file).length % 64).toBe(t.data.byteLength % 64); // data starts on a 64-byte boundary
    }
  });

  it('reads format 2.0 headers', () => {
    const v1 = encodeNpy(fromNumbers('i32', [2], [7, -7]));
    const hlen = v1[8]! | (v1[9]! << 8);
    const v2 = new Uint8Array(v1.length + 2);
    v2.set(v1.subarray(0, 8));
    v2[6] = 2;
    new DataView(v2.buffer).setUint32(8, hlen, true);
    v2.set(v1.subarray(10), 12);
    const t = decodeNpy(v2, 'v2.npy');
    expect(t.shape).toEqual([2]);
    expect(Array.from(t.data as Int32Array)).toEqual([7, -7]);
  });

  it('rejects truncated files, naming the file and the bytes expected', () => {
    const full = encodeNpy(fromNumbers('f32', [4, 8], new Array(32).fill(1)));
    const file = path.join(tmp, 'truncated.npy');
    writeFileSync(file, full.subarray(0, full.length - 10));
    expectLoomError(() => readNpy(file), 'IO', 'truncated.npy', 'truncated', '128 data bytes', '118');
    writeFileSync(file, full.subarray(0, 40));
    expectLoomError(() => readNpy(file), 'IO', 'truncated.npy', 'truncated', 'header');
  });

  it('rejects fortran order, unknown dtypes, big-endian data and non-npy files', () => {
    const fortran = numpyFile("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", '00'.repeat(24));
    expectLoomError(() => decodeNpy(fortran, 'f.npy'), 'UNSUPPORTED_FEATURE', 'f.npy', 'fortran_order');
    const complex = numpyFile("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", '00'.repeat(8));
    expectLoomError(() => decodeNpy(complex, 'c.npy'), 'UNSUPPORTED_FEATURE', 'c.npy', "'<c8'", '<f4');
    const big = numpyFile("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", '00'.repeat(4));
    expectLoomError(() => decodeNpy(big, 'be.npy'), 'UNSUPPORTED_FEATURE', 'big-endian');
    expectLoomError(() => decodeNpy(Buffer.from('not numpy at all'), 'x.npy'), 'IO', 'x.npy', 'magic');
    expectLoomError(() => readNpy(path.join(tmp, 'missing.npy')), 'IO', 'missing.npy');
    expectLoomError(() => encodeNpy(fromNumbers('bf16', [1], [1]), 'out'), 'UNSUPPORTED_FEATURE', 'bf16');
  });
});
