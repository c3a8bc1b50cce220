// .npy inputs are bounded: a regular file only, a header of at most NPY_MAX_HEADER_BYTES (real ones are
// under 1 KB; the format allows 4 GiB), and the data size the header's shape implies checked against the
// file before anything is read or allocated.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fromNumbers } from '../../ir/tensor.js';
import { NPY_MAX_HEADER_BYTES, decodeNpy, encodeNpy, readNpy } from '../../runtime/npy.js';
import { expectLoomError } from '../support/errors.js';
import { makeFifo } from '../support/fifo.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'loom-npy-limits-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// A version-2 .npy whose header is `headerLen` bytes: the dict, then spaces, then '\n'.
function npyV2(dict: string, headerLen: number, data: Uint8Array = new Uint8Array()): Buffer {
  const pre = Buffer.alloc(12);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0]).copy(pre);
  pre.writeUInt32LE(headerLen, 8);
  const header = Buffer.alloc(headerLen, 0x20);
  header.write(dict);
  header[headerLen - 1] = 0x0a;
  return Buffer.concat([pre, header, data]);
}

describe('.npy limits', () => {
  it('still reads what numpy writes', () => {
    const f = path.join(tmp, 'ok.npy');
    writeFileSync(f, encodeNpy(fromNumbers('f32', [2, 2], [1, 2, 3, 4])));
    const t = readNpy(f);
    expect(t.shape).toEqual([2, 2]);
    expect(Array.from(t.data as Float32Array)).toEqual([1, 2, 3, 4]);
  });

  it('a header over the cap is refused before it is read (the probe: 50 MB)', () => {
    const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }";
    const f = path.join(tmp, 'bighead.npy');
    writeFileSync(f, npyV2(dict, 50 << 20, new Uint8Array(4)));
    expectLoomError(() => readNpy(f), 'IO', 'bighead.npy', 'header', String(50 << 20), String(NPY_MAX_HEADER_BYTES));
    // the in-memory decoder keeps the same cap
    expectLoomError(() => decodeNpy(npyV2(dict, NPY_MAX_HEADER_BYTES + 64, new Uint8Array(4)), 'x.npy'), 'IO', 'header');
    // a header length past the end of a short file is still "truncated", not a huge read
    const short = Buffer.alloc(12);
    Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0]).copy(short);
    short.writeUInt32LE(0xffffffff, 8);
    writeFileSync(path.join(tmp, 'lies.npy'), short);
    expectLoomError(() => readNpy(path.join(tmp, 'lies.npy')), 'IO', 'lies.npy', 'header');
  });

  it("the shape's data size is checked against the file before reading", () => {
    const f = path.join(tmp, 'hugeshape.npy');
    writeFileSync(f, npyV2("{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000,), }", 128, new Uint8Array(16)));
    expectLoomError(() => readNpy(f), 'IO', 'hugeshape.npy', '400000000000', 'the file has 16');
    const g = path.join(tmp, 'limit.npy');
    writeFileSync(g, encodeNpy(fromNumbers('f32', [4, 4], new Array(16).fill(1))));
    expectLoomError(() => readNpy(g, { maxDataBytes: 32 }), 'IO', 'limit.npy', '64', '32');
  });

  it('a FIFO or a device is refused at once', () => {
    const fifo = path.join(tmp, 'x.npy');
    makeFifo(fifo);
    const t0 = Date.now();
    expectLoomError(() => readNpy(fifo), 'IO', 'x.npy', 'FIFO', 'not a regular file');
    expect(Date.now() - t0).toBeLessThan(2000);
    expectLoomError(() => readNpy('/dev/zero'), 'IO', '/dev/zero', 'not a regular file');
  });
});
