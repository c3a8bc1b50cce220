// Non-finite values and out-of-range numbers in the JSON protocol: NaN and ±Infinity outputs come back as
// the strings "NaN", "Infinity", "-Infinity" (JSON has no literal for them; null would lose which one it
// was), float inputs accept the same strings, and a JSON number an input's datatype cannot hold (beyond
// FP32's or FP16's finite range, a fraction or out-of-range value for an INT type) is a 400 naming the model,
// the input and the element.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlannedTenant } from '../../ir/contract/plan.js';
import type { DType } from '../../ir/dtype.js';
import type { Tensor } from '../../ir/tensor.js';
import { type LoadedPlan, type TickInputs, loadPlan } from '../../runtime/index.js';
import { type LoomServer, createServer, decodeInferRequest } from '../../runtime/serve/index.js';
import { compileTestFleet, oipBody, requestInputs } from './fleet.js';

let loaded: LoadedPlan;
let server: LoomServer;
let url = '';
const seen: TickInputs[] = [];

beforeAll(async () => {
  loaded = await loadPlan(await compileTestFleet(), { backend: 'cpu' });
  // the real plan, whose mlp-a answers get NaN, +Inf and -Inf in their first three elements
  const runner = {
    plan: loaded.plan,
    backend: 'cpu',
    async runTick(inputs: TickInputs) {
      seen.push(inputs);
      const out = await loaded.runTick(inputs);
      const a = out['mlp-a'] as Record<string, Tensor> | undefined;
      if (a) for (const t of Object.values(a)) (t.data as Float32Array).set([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
      return out;
    },
  };
  server = createServer({ runner, logger: false });
  url = await server.listen(0, '127.0.0.1');
});
afterAll(async () => {
  await server?.shutdown();
  loaded?.close();
});

async function infer(model: string, body: string) {
  const r = await fetch(`${url}/v2/models/${model}/infer`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  const text = await r.text();
  return { status: r.status, text, body: JSON.parse(text) as { error?: string; outputs?: { name: string; data: unknown[] }[] } };
}

function row(values: readonly unknown[]): string {
  return JSON.stringify({ inputs: [{ name: 'input', shape: [1, 32], datatype: 'FP32', data: values }] });
}

describe('non-finite outputs', () => {
  it('come back as "NaN", "Infinity", "-Infinity" in JSON data, the rest as numbers', async () => {
    const r = await infer('mlp-a', oipBody(requestInputs(loaded.plan, 'mlp-a', 2, 1)));
    expect(r.status, r.text).toBe(200);
    const data = r.body.outputs![0]!.data;
    expect(data.slice(0, 3)).toEqual(['NaN', 'Infinity', '-Infinity']);
    expect(data.slice(3).every((v) => typeof v === 'number' && Number.isFinite(v))).toBe(true);
  });
});

describe('float inputs', () => {
  it('accept "NaN", "Infinity", "-Infinity" (the model sees them)', async () => {
    const values: unknown[] = Array(32).fill(0.5);
    values[4] = 'NaN';
    values[5] = 'Infinity';
    values[6] = '-Infinity';
    seen.length = 0;
    const r = await infer('mlp-b', row(values));
    expect(r.status, r.text).toBe(200);
    const x = seen.flatMap((t) => (t['mlp-b'] ? [t['mlp-b'].input!.data as Float32Array] : []))[0]!;
    expect([...x.subarray(4, 7)]).toEqual([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
  });

  it('refuse any other string', async () => {
    const values: unknown[] = Array(32).fill(0.5);
    values[9] = 'inf';
    const r = await infer('mlp-b', row(values));
    expect(r.status).toBe(400);
    expect(r.body.error).toContain("inputs[0] ('input').data[9]");
  });

  it('refuse a number beyond FP32 with a 400 naming model, input and element', async () => {
    for (const big of ['1e39', '-3.5e38', '1e400']) {
      const data = Array.from({ length: 32 }, (_, i) => (i === 7 ? big : '0.5')).join(',');
      const r = await infer('mlp-b', `{"inputs":[{"name":"input","shape":[1,32],"datatype":"FP32","data":[${data}]}]}`);
      expect(r.status, big).toBe(400);
      expect(r.body.error).toMatch(/model 'mlp-b'.*inputs\[0\] \('input'\)\.data\[7\].*FP32/);
      expect(r.body.error).toContain('3.4028234663852886e+38');
    }
    // the largest finite FP32 and values that round to it are fine
    const ok = Array.from({ length: 32 }, (_, i) => (i === 7 ? '3.4028235e38' : '0.5')).join(',');
    expect((await infer('mlp-b', `{"inputs":[{"name":"input","shape":[1,32],"datatype":"FP32","data":[${ok}]}]}`)).status).toBe(200);
  });
});

// A tenant with one input of the given datatype, for the decoder alone.
function tenantWith(dtype: DType): PlannedTenant {
  const io = { name: 'x', dtype, shape: [1, 4], batchAxis: 0, ref: { arena: 'io', offset: 0 }, bytes: 0 };
  return { id: 't', model: 'm', maxBatch: 1, sloMs: null, layers: 1, inputs: [io], outputs: [io] } as unknown as PlannedTenant;
}

// data: the JSON text of the values (so that numbers JSON.stringify cannot write, like 1e400, get through)
function decode(datatype: string, dtype: DType, data: unknown[] | string) {
  const text = typeof data === 'string' ? data : JSON.stringify(data);
  const body = Buffer.from(`{"inputs":[{"name":"x","shape":[1,4],"datatype":"${datatype}","data":${text}}]}`);
  return decodeInferRequest(tenantWith(dtype), body, undefined).inputs.x!;
}

describe('the decoder, per datatype', () => {
  it('FP16: beyond 65504 (rounding past 65520) is refused; "Infinity" is taken', () => {
    expect(() => decode('FP16', 'f16', [1, 70000, 0, 0])).toThrow(/model 't'.*data\[1\].*FP16/);
    expect(() => decode('FP16', 'f16', [1, 65520, 0, 0])).toThrow(/data\[1\]/);
    expect(decode('FP16', 'f16', [65504, 'Infinity', '-Infinity', 'NaN']).data).toEqual(new Uint16Array([0x7bff, 0x7c00, 0xfc00, 0x7e00]));
  });

  it('BF16 and FP64: beyond their range is refused', () => {
    expect(() => decode('BF16', 'bf16', [0, 0, 3.5e38, 0])).toThrow(/data\[2\].*BF16/);
    expect(() => decode('FP64', 'f64', '[0,0,0,1e400]')).toThrow(/data\[3\].*FP64/);
    expect([...(decode('FP64', 'f64', [1e300, 'NaN', 0, 0]).data as Float64Array)]).toEqual([1e300, Number.NaN, 0, 0]);
  });

  it('INT types: fractions and out-of-range values are refused; strings are not numbers', () => {
    expect(() => decode('INT32', 'i32', [0, 1.5, 0, 0])).toThrow(/data\[1\].*INT32/);
    expect(() => decode('INT32', 'i32', [0, 0, 2 ** 31, 0])).toThrow(/data\[2\].*INT32/);
    expect(() => decode('UINT8', 'u8', [0, 0, 0, -1])).toThrow(/data\[3\].*UINT8/);
    expect(() => decode('INT8', 'i8', ['NaN', 0, 0, 0])).toThrow(/data\[0\]/);
  });
});
