// The one tenant-I/O validator (ir/contract/tenant-io.ts) that `loom run`, runTick, `loom serve` and the
// generated client share: every mistake's code, field path and message, on plain objects.
import { describe, expect, it } from 'vitest';
import { TenantIOError, type TenantIOSpec, checkInputNames, describeTenantIO, firstNonFinite, validateTenantInputs } from '../../ir/contract/tenant-io.js';
import { makeTensor } from '../../ir/tensor.js';

// ids [1..3, 4] and mask [1..3, 4] (rows on axis 0), a state [2, 1..3, 5] (rows on axis 1), a fixed scale [1].
const enc: TenantIOSpec = {
  id: 'enc',
  inputs: [
    { name: 'ids', dtype: 'i64', shape: [3, 4], batchAxis: 0 },
    { name: 'mask', dtype: 'i64', shape: [3, 4], batchAxis: 0 },
    { name: 'state', dtype: 'f32', shape: [2, 3, 5], batchAxis: 1 },
    { name: 'scale', dtype: 'f16', shape: [1], batchAxis: null },
  ],
};

const good = (rows: number) => ({
  ids: makeTensor('i64', [rows, 4]),
  mask: makeTensor('i64', [rows, 4]),
  state: makeTensor('f32', [2, rows, 5]),
  scale: makeTensor('f16', [1]),
});

function refusal(f: () => unknown): TenantIOError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(TenantIOError);
    return e as TenantIOError;
  }
  throw new Error('expected a TenantIOError');
}

describe('validateTenantInputs', () => {
  it('returns the row count, or null when no input has a batch axis', () => {
    expect(validateTenantInputs(enc, good(1))).toBe(1);
    expect(validateTenantInputs(enc, good(3))).toBe(3);
    expect(validateTenantInputs({ id: 'c', inputs: [{ name: 'x', dtype: 'f32', shape: [2], batchAxis: null }] }, { x: makeTensor('f32', [2]) })).toBeNull();
  });

  it('describes what an input accepts', () => {
    expect(enc.inputs.map(describeTenantIO)).toEqual(['i64[1..3,4]', 'i64[1..3,4]', 'f32[2,1..3,5]', 'f16[1]']);
  });

  it('every mistake has a code, a field path and a message naming the tenant and the input', () => {
    const cases: Array<[Record<string, unknown>, string, string, RegExp]> = [
      [
        { ...good(1), idz: good(1).ids },
        'unknown-input',
        "inputs ('idz')",
        /^tenant 'enc' has no input 'idz' \(its inputs: ids i64\[1\.\.3,4\], mask i64\[1\.\.3,4\], state f32\[2,1\.\.3,5\], scale f16\[1\]\)$/,
      ],
      [{ ...good(1), mask: undefined }, 'missing-input', "inputs[1] ('mask')", /^tenant 'enc' is missing input 'mask' \(i64\[1\.\.3,4\]\)$/],
      [
        { ...good(1), state: makeTensor('f64', [2, 1, 5]) },
        'dtype',
        "inputs[2] ('state').dtype",
        /^tenant 'enc' input 'state': dtype f64, expected f32\[2,1\.\.3,5\]$/,
      ],
      [
        { ...good(1), ids: { dtype: 'i64', shape: [1, 4], data: new Float64Array(4) } },
        'array-type',
        "inputs[0] ('ids').data",
        /^tenant 'enc' input 'ids': Float64Array, expected BigInt64Array \(i64\)$/,
      ],
      [{ ...good(1), ids: { dtype: 'i64', shape: [1, 4], data: [1, 2, 3, 4] } }, 'array-type', "inputs[0] ('ids').data", /: Array, expected BigInt64Array/],
      [
        { ...good(1), ids: makeTensor('i64', [4, 4]) },
        'shape',
        "inputs[0] ('ids').shape",
        /^tenant 'enc' input 'ids': shape \[4,4\], expected i64\[1\.\.3,4\]$/,
      ],
      [{ ...good(1), ids: makeTensor('i64', [0, 4]) }, 'shape', "inputs[0] ('ids').shape", /shape \[0,4\]/],
      [{ ...good(1), state: makeTensor('f32', [2, 5]) }, 'shape', "inputs[2] ('state').shape", /shape \[2,5\], expected f32\[2,1\.\.3,5\]/],
      [{ ...good(1), scale: makeTensor('f16', [2]) }, 'shape', "inputs[3] ('scale').shape", /shape \[2\], expected f16\[1\]/],
      [
        { ...good(1), ids: { dtype: 'i64', shape: [1, 4], data: new BigInt64Array(5) } },
        'element-count',
        "inputs[0] ('ids').data",
        /: 5 elements for shape \[1,4\] \(4 expected\)$/,
      ],
      [
        { ...good(2), state: makeTensor('f32', [2, 1, 5]) },
        'rows-disagree',
        "inputs[2] ('state').shape",
        /^tenant 'enc' input 'state': 1 row on axis 1, but input 'ids' has 2; a request's inputs must carry the same rows$/,
      ],
    ];
    for (const [inputs, code, path, message] of cases) {
      const e = refusal(() => validateTenantInputs(enc, inputs as never));
      expect({ code: e.code, path: e.path, tenant: e.tenant }, message.source).toEqual({ code, path, tenant: 'enc' });
      expect(e.message).toMatch(message);
    }
  });

  it('names the tenant as the caller does, and where an input came from', () => {
    const opts = { noun: 'model', sourceOf: (n: string) => (n === 'ids' ? 'ids.npy' : undefined) };
    expect(refusal(() => validateTenantInputs(enc, { ...good(1), ids: makeTensor('i64', [1, 5]) }, opts)).message).toBe(
      "model 'enc' input 'ids' (from 'ids.npy'): shape [1,5], expected i64[1..3,4]",
    );
    expect(refusal(() => validateTenantInputs(enc, { ...good(1), mask: makeTensor('i64', [1, 5]) }, opts)).message).toMatch(/^model 'enc' input 'mask': shape/);
  });

  it('refuses NaN and Inf only when asked, naming the first bad element (f16/bf16 as raw bits)', () => {
    const nan = { ...good(2), state: makeTensor('f32', [2, 2, 5]) };
    (nan.state.data as Float32Array)[7] = Number.NaN;
    expect(validateTenantInputs(enc, nan)).toBe(2);
    const e = refusal(() => validateTenantInputs(enc, nan, { checkFinite: true, noun: 'model' }));
    expect([e.code, e.path, e.message]).toEqual([
      'not-finite',
      "inputs[2] ('state').data[7]",
      "model 'enc' input 'state': element 7 is not finite (NaN, row-major index); this model refuses NaN and Inf",
    ]);
    expect(firstNonFinite(makeTensor('f16', [3], new Uint16Array([0x3c00, 0xfc00, 0x7e00])))).toBe(1);
    expect(firstNonFinite(makeTensor('bf16', [2], new Uint16Array([0x3f80, 0x7fc0])))).toBe(1);
    expect(firstNonFinite(makeTensor('i64', [1]))).toBe(-1);
    const inf = { ...good(1), scale: makeTensor('f16', [1], new Uint16Array([0xfc00])) };
    expect(refusal(() => validateTenantInputs(enc, inf, { checkFinite: true })).message).toMatch(/element 0 is not finite \(-Infinity/);
  });

  it('a request that lists its inputs may not repeat one', () => {
    expect(() => checkInputNames(enc, ['ids', 'mask'])).not.toThrow();
    const e = refusal(() => checkInputNames(enc, ['ids', 'mask', 'ids']));
    expect([e.code, e.path, e.message]).toEqual(['duplicate-input', "inputs ('ids')", "tenant 'enc' input 'ids' is given twice"]);
  });
});
