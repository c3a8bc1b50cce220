// ir/files.ts: the one way Loom reads a file named by its user. Regular files only (a FIFO, a device, a
// directory is refused before any read, never waited on), a size limit checked on the open descriptor before
// reading, and JSON whose nesting would overflow the stack refused as a typed error.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH, openRegularFile, parseJsonText, readRegularFile, readTextFile } from '../../ir/files.js';
import { expectLoomError } from '../support/errors.js';
import { makeFifo } from '../support/fifo.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'loom-files-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('reading files named by the user', () => {
  it('reads a regular file whole, and a range of it', () => {
    const f = path.join(tmp, 'a.bin');
    writeFileSync(f, Buffer.from('hello world'));
    expect(Buffer.from(readRegularFile(f, { what: 'test file', maxBytes: 100 })).toString()).toBe('hello world');
    expect(readTextFile(f, { what: 'test file', maxBytes: 100 })).toBe('hello world');
    const h = openRegularFile(f, { what: 'test file', maxBytes: 100 });
    try {
      expect(h.size).toBe(11);
      expect(Buffer.from(h.read(6, 5)).toString()).toBe('world');
    } finally {
      h.close();
    }
  });

  it('refuses a FIFO at once instead of waiting for a writer', () => {
    const f = path.join(tmp, 'pipe');
    makeFifo(f);
    const t0 = Date.now();
    expectLoomError(() => readRegularFile(f, { what: 'test file', maxBytes: 100 }), 'IO', 'test file', f, 'FIFO', 'not a regular file');
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('refuses a device (/dev/zero) and a directory, with the given error code', () => {
    expectLoomError(() => readRegularFile('/dev/zero', { what: 'input', maxBytes: 100 }), 'IO', '/dev/zero', 'character device', 'not a regular file');
    const d = path.join(tmp, 'dir');
    mkdirSync(d);
    expectLoomError(() => readRegularFile(d, { what: 'manifest', maxBytes: 100, code: 'MANIFEST' }), 'MANIFEST', 'directory', 'not a regular file');
  });

  it('refuses a file over the limit before reading it', () => {
    const f = path.join(tmp, 'big.bin');
    writeFileSync(f, Buffer.alloc(1000));
    expectLoomError(() => readRegularFile(f, { what: 'test file', maxBytes: 999 }), 'IO', 'test file', '1000 bytes', 'limit', '999');
  });

  it('a missing file is an IO error naming it', () => {
    expectLoomError(() => readRegularFile(path.join(tmp, 'nope'), { what: 'test file', maxBytes: 10 }), 'IO', 'test file', 'nope');
  });

  it('a read past the end of the file is refused', () => {
    const f = path.join(tmp, 'short.bin');
    writeFileSync(f, Buffer.alloc(10));
    const h = openRegularFile(f, { what: 'test file', maxBytes: 100 });
    try {
      expectLoomError(() => h.read(8, 4), 'IO', 'past the end');
    } finally {
      h.close();
    }
  });
});

describe('JSON from the user', () => {
  it('parses ordinary JSON, with a reviver', () => {
    expect(parseJsonText('{"a": [1, {"b": "[[["}]}', { what: 'x' })).toEqual({ a: [1, { b: '[[[' }] });
    expect(parseJsonText('[1, 2]', { what: 'x', reviver: (_k, v) => (typeof v === 'number' ? v * 2 : v) })).toEqual([2, 4]);
  });

  it('refuses 100k nested brackets as a typed error, quickly', () => {
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const t0 = Date.now();
    expectLoomError(
      () => parseJsonText(deep, { what: "manifest 'm.json'", code: 'MANIFEST' }),
      'MANIFEST',
      "manifest 'm.json'",
      'nested',
      String(MAX_JSON_DEPTH),
    );
    expectLoomError(
      () => parseJsonText(`{"a":${'{"a":'.repeat(50_000)}1${'}'.repeat(50_001)}`, { what: 'plan.json', code: 'PLAN_INVALID' }),
      'PLAN_INVALID',
      'nested',
    );
    expect(Date.now() - t0).toBeLessThan(2000);
    // brackets inside strings do not count
    expect(parseJsonText(JSON.stringify({ s: '['.repeat(10_000) }), { what: 'x' })).toEqual({ s: '['.repeat(10_000) });
  });

  it('invalid JSON is a typed error naming the file', () => {
    expectLoomError(() => parseJsonText('{"a": [', { what: "bench file 'b.json'", code: 'USAGE' }), 'USAGE', "bench file 'b.json'", 'not valid JSON');
  });
});
