// TickCodec (runtime/tick-io.ts) against the shared check and the plain byte path: a tick is accepted exactly when
// validateTenantInputs accepts each tenant (same rows; a refusal carries that check's message, a null tensor is
// named instead of a TypeError), typed slot views write the same bytes as the byte copy, output shapes are shared
// frozen arrays, and the planner's io layout keeps a fleet's result block to its outputs. No native code except
// the last test (CPU backend).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { PlannedTenant, TenantIO } from '../../ir/contract/plan.js';
import { TenantIOError, validateTenantInputs } from '../../ir/contract/tenant-io.js';
import { type DType, allocArray, byteSize } from '../../ir/dtype.js';
import type { Tensor } from '../../ir/tensor.js';
import { type StagingLayout, TickCodec, type TickInputs, loadNativeAddon, loadPlan } from '../../runtime/index.js';
import { alignUp } from '../../src/planner/steps.js';
import { compileFleet } from '../../src/fleet/compile.js';
import { writeMlpFleet } from '../../bench/common.js';
import { rng } from '../support/tensors.js';
import { ASK_SHARED_CHECK, InputTables } from '../../runtime/tick-check.js';

// Three tenants on one io arena (inputs, then outputs, each 8-byte aligned): p has a batch-axis-0 f32 input and an
// i64 input without a batch axis; q reads rows along axis 1 of an f16 input; r has two f32 inputs on axis 0.
function io(name: string, dtype: DType, shape: number[], batchAxis: number | null, offset: number): TenantIO {
  return { name, dtype, shape, batchAxis, ref: { arena: 'io', offset }, bytes: shape.reduce((a, b) => a * b, 1) * byteSize(dtype) };
}

function fixture(): { tenants: PlannedTenant[]; layout: StagingLayout } {
  let off = 0;
  const at = (dtype: DType, shape: number[]): number => {
    const o = off;
    off += alignUp(shape.reduce((a, b) => a * b, 1) * byteSize(dtype), 8);
    return o;
  };
  const ins = {
    p: [io('x', 'f32', [4, 6], 0, at('f32', [4, 6])), io('ids', 'i64', [3], null, at('i64', [3]))],
    q: [io('s', 'f16', [2, 3, 5], 1, at('f16', [2, 3, 5]))],
    r: [io('a', 'f32', [2, 3], 0, at('f32', [2, 3])), io('b', 'f32', [2, 4], 0, at('f32', [2, 4]))],
  };
  const inBytes = off;
  const outs = {
    p: [io('y', 'f32', [4, 2], 0, at('f32', [4, 2]))],
    q: [io('z', 'f32', [2, 3, 2], 1, at('f32', [2, 3, 2]))],
    r: [io('w', 'f32', [2, 1], 0, at('f32', [2, 1])), io('n', 'i32', [], null, at('i32', []))],
  };
  const maxBatch = { p: 4, q: 3, r: 2 };
  const tenants = (['p', 'q', 'r'] as const).map(
    (id): PlannedTenant => ({ id, model: `${id}.onnx`, maxBatch: maxBatch[id], sloMs: null, layers: 1, inputs: ins[id], outputs: outs[id] }),
  );
  return {
    tenants,
    layout: { inSpans: Float64Array.of(0, inBytes, 0), outSpans: Float64Array.of(inBytes, off - inBytes, 0), inBytes, outBytes: off - inBytes },
  };
}

function tensorFor(spec: TenantIO, rows: number, r: () => number): Tensor {
  const shape = [...spec.shape];
  if (spec.batchAxis !== null) shape[spec.batchAxis] = rows;
  const n = shape.reduce((a, b) => a * b, 1);
  const data = allocArray(spec.dtype, n);
  for (let i = 0; i < n; i++) {
    if (data instanceof BigInt64Array) data[i] = BigInt(Math.floor(r() * 100));
    else (data as Float32Array)[i] = spec.dtype === 'f16' ? Math.floor(r() * 0x7bff) : r();
  }
  return { dtype: spec.dtype, shape, data };
}

function request(tenant: PlannedTenant, rows: number, r: () => number): Record<string, Tensor> {
  return Object.fromEntries(tenant.inputs.map((s) => [s.name, tensorFor(s, rows, r)]));
}

// One way to spoil a request; some leave it valid (a same-size row change on every input, an extra own key on a tensor).
const MUTATIONS: Array<(req: Record<string, unknown>, tenant: PlannedTenant, r: () => number) => void> = [
  (req) => delete req[Object.keys(req)[0]!],
  (req) => (req.extra = req[Object.keys(req)[0]!]),
  (req) => (req[Object.keys(req)[0]!] = null),
  (req) => (req[Object.keys(req)[0]!] = 5),
  (req, t) => {
    const k = t.inputs[0]!.name;
    req[k] = { ...(req[k] as Tensor), dtype: 'f64' };
  },
  (req, t) => {
    const k = t.inputs[0]!.name;
    const x = req[k] as Tensor;
    req[k] = { ...x, data: new Float64Array(x.data.length) };
  },
  (req, t) => {
    const k = t.inputs[0]!.name;
    const x = req[k] as Tensor;
    req[k] = { ...x, data: new DataView(x.data.buffer) };
  },
  (req, t) => {
    const k = t.inputs[0]!.name;
    const x = req[k] as Tensor;
    req[k] = { ...x, data: Array.from(x.data as Float32Array) };
  },
  (req, t, r) => {
    const k = t.inputs[t.inputs.length - 1]!.name;
    const x = req[k] as Tensor;
    const shape = [...x.shape];
    shape[Math.floor(r() * shape.length)]! += r() < 0.5 ? 1 : -1;
    req[k] = { ...x, shape };
  },
  (req, t) => {
    const k = t.inputs[0]!.name;
    const x = req[k] as Tensor;
    req[k] = { ...x, shape: x.shape.map((d, i) => (i === 0 ? d + 0.5 : d)) };
  },
  (req, t) => {
    const k = t.inputs[0]!.name;
    const x = req[k] as Tensor;
    req[k] = { ...x, shape: x.shape.map(String) };
  },
  (req, t) => {
    const k = t.inputs[0]!.name;
    const x = req[k] as Tensor;
    req[k] = { ...x, shape: [...x.shape, 1] };
  },
  (req, t) => {
    const k = t.inputs[0]!.name;
    const x = req[k] as Tensor;
    req[k] = { ...x, data: (x.data as Float32Array).subarray(1) };
  },
  (req, t) => {
    const k = t.inputs[0]!.name;
    req[k] = { ...(req[k] as Tensor), shape: 'abc' };
  },
  (req, t, r) => {
    // consistent shape and data, but rows outside 1..maxBatch (0, or one too many)
    const spec = t.inputs.find((s) => s.batchAxis !== null)!;
    req[spec.name] = tensorFor(spec, r() < 0.5 ? 0 : spec.shape[spec.batchAxis!]! + 1, r);
  },
  (req) => Object.defineProperty(req, 'hidden', { value: 1, enumerable: false }),
  (req) => Object.setPrototypeOf(req, { inherited: 1 }),
];

describe('TickCodec.check: what the shared tenant-I/O check says, tenant by tenant', () => {
  it('600 seeded requests, each spoiled by up to two mutations: same rows or the same message', () => {
    const { tenants, layout } = fixture();
    const codec = new TickCodec(tenants, layout);
    const r = rng(12);
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 600; i++) {
      const tenant = tenants[i % tenants.length]!;
      const rows = 1 + Math.floor(r() * tenant.maxBatch);
      const req: Record<string, unknown> = request(tenant, rows, r);
      const muts = Math.floor(r() * 3);
      for (let m = 0; m < muts; m++) {
        try {
          MUTATIONS[Math.floor(r() * MUTATIONS.length)]!(req, tenant, r);
        } catch {
          // a mutation that needs what an earlier one removed does nothing
        }
      }
      let want: { rows: number | null } | { message: string };
      try {
        want = { rows: validateTenantInputs(tenant, req as Record<string, Tensor>) };
      } catch (e) {
        want = { message: e instanceof TenantIOError ? e.message : `not a TenantIOError: ${String(e)}` };
      }
      const inputs = { [tenant.id]: req } as unknown as TickInputs;
      if ('rows' in want) {
        const checked = codec.check(inputs);
        expect(checked.count).toBe(1);
        expect(checked.rows[0]).toBe(want.rows ?? tenant.maxBatch);
        accepted++;
      } else if (want.message.startsWith('not a TenantIOError')) {
        // the shared check reads a null tensor's fields and throws a TypeError; runTick names the input instead
        expect(() => codec.check(inputs)).toThrow(
          expect.objectContaining({
            code: 'EVAL',
            message: expect.stringMatching(/^tenant '\w' input '\w+': expected a tensor \{ dtype, shape, data \}, got null$/),
          }),
        );
        refused++;
      } else {
        expect(() => codec.check(inputs)).toThrow(expect.objectContaining({ code: 'EVAL', message: want.message }));
        refused++;
      }
    }
    expect(accepted).toBeGreaterThan(100);
    expect(refused).toBeGreaterThan(100);
  });

  it('the quick accept (InputTables) accepts only requests the shared check accepts, with its rows, and every unspoiled one', () => {
    const { tenants } = fixture();
    const tables = new InputTables(tenants);
    const r = rng(21);
    // beyond MUTATIONS: inputs whose rows disagree, and a table input found only on the prototype
    const extra: Array<(req: Record<string, unknown>, tenant: PlannedTenant, r: () => number) => void> = [
      (req, t, r) => {
        const specs = t.inputs.filter((s) => s.batchAxis !== null);
        const spec = specs[specs.length - 1]!;
        const rows = (req[spec.name] as Tensor).shape[spec.batchAxis!]!;
        req[spec.name] = tensorFor(spec, rows === 1 ? 2 : rows - 1, r);
      },
      (req, t) => {
        const k = t.inputs[0]!.name;
        const x = req[k];
        delete req[k];
        Object.setPrototypeOf(req, { [k]: x });
      },
    ];
    let quick = 0;
    let unspoiled = 0;
    for (let i = 0; i < 1500; i++) {
      const t = i % tenants.length;
      const tenant = tenants[t]!;
      const req: Record<string, unknown> = request(tenant, 1 + Math.floor(r() * tenant.maxBatch), r);
      const muts = Math.floor(r() * 3);
      for (let m = 0; m < muts; m++) {
        const all = [...MUTATIONS, ...extra];
        try {
          all[Math.floor(r() * all.length)]!(req, tenant, r);
        } catch {
          // a mutation that needs what an earlier one removed does nothing
        }
      }
      const got = tables.quickRows(t, req);
      if (muts === 0) {
        expect(got).not.toBe(ASK_SHARED_CHECK);
        unspoiled++;
      }
      if (got === ASK_SHARED_CHECK) continue;
      quick++;
      let want: number | null | string;
      try {
        want = validateTenantInputs(tenant, req as Record<string, Tensor>);
      } catch (e) {
        want = `refused: ${e instanceof Error ? e.message : String(e)}`;
      }
      expect(want).toBe(got === 0 ? null : got);
    }
    expect(unspoiled).toBeGreaterThan(300);
    expect(quick).toBeGreaterThan(unspoiled);
    expect(tables.quickRows(0, null)).toBe(ASK_SHARED_CHECK);
    expect(tables.quickRows(0, 'x')).toBe(ASK_SHARED_CHECK);
  });

  it('a tenant entry that is not an object names the tenant; one bad tenant fails the tick before any byte is written', () => {
    const { tenants, layout } = fixture();
    const codec = new TickCodec(tenants, layout);
    expect(() => codec.check({ p: null } as unknown as TickInputs)).toThrow(
      expect.objectContaining({ code: 'EVAL', message: "tenant 'p': expected an object of input name → Tensor, got null" }),
    );
    const r = rng(3);
    const bad = { p: request(tenants[0]!, 2, r), q: { s: { dtype: 'f16', shape: [2, 4, 5], data: new Uint16Array(40) } } };
    expect(() => codec.check(bad as unknown as TickInputs)).toThrow(/tenant 'q' input 's': shape \[2,4,5\], expected f16\[2,1\.\.3,5\]/);
  });
});

describe('TickCodec.write and unpack', () => {
  it('typed slot views write the same bytes as the byte copy, full and partial batches, and leave the mask and rows for clear', () => {
    const { tenants, layout } = fixture();
    const codec = new TickCodec(tenants, layout);
    const r = rng(7);
    const a = new Uint8Array(layout.inBytes).fill(0xee);
    const b = new Uint8Array(layout.inBytes).fill(0xee);
    const views = codec.slotViews(a);
    expect(views.every((v) => v !== null)).toBe(true);
    for (let i = 0; i < 30; i++) {
      const inputs: Record<string, Record<string, Tensor>> = {};
      for (const t of tenants) if (r() < 0.7) inputs[t.id] = request(t, 1 + Math.floor(r() * t.maxBatch), r);
      const checked = codec.check(inputs);
      const ma = new Uint8Array(3);
      const ra = new Int32Array(3);
      const wa = codec.write(checked, a, ma, ra, views);
      const wb = codec.write(checked, b, new Uint8Array(3), new Int32Array(3));
      expect(Array.from(a)).toEqual(Array.from(b));
      expect(Array.from(ma)).toEqual(tenants.map((t) => (inputs[t.id] ? 1 : 0)));
      expect(Array.from(ra)).toEqual(
        tenants.map((t) => (inputs[t.id] ? (t.id === 'q' ? inputs.q!.s!.shape[1]! : inputs[t.id]![t.inputs[0]!.name]!.shape[0]!) : 0)),
      );
      expect(Array.from(wa.tenantRows)).toEqual(Array.from(wb.tenantRows));
      codec.clear(wa);
      expect(Array.from(ma)).toEqual([0, 0, 0]);
      expect(Array.from(ra)).toEqual([0, 0, 0]);
    }
  });

  it('a slot whose offset does not fit its element size gets no view and is copied as bytes', () => {
    const { tenants, layout } = fixture();
    const codec = new TickCodec(tenants, layout);
    const backing = new Uint8Array(layout.inBytes + 1);
    const odd = backing.subarray(1);
    const views = codec.slotViews(odd);
    expect(views.filter((v) => v === null).length).toBeGreaterThan(0);
    const inputs = { p: request(tenants[0]!, 4, rng(1)) };
    const plain = new Uint8Array(layout.inBytes);
    codec.write(codec.check(inputs), odd, new Uint8Array(3), new Int32Array(3), views);
    codec.write(codec.check(inputs), plain, new Uint8Array(3), new Int32Array(3));
    expect(Array.from(odd)).toEqual(Array.from(plain));
  });

  it('outputs: views of the result at full batch, cut to the rows carried (compacted on an inner axis); shapes frozen and shared across ticks', () => {
    const { tenants, layout } = fixture();
    const codec = new TickCodec(tenants, layout);
    const r = rng(9);
    const result = new ArrayBuffer(layout.outBytes);
    new Float32Array(result).forEach((_, i, a) => (a[i] = i));
    const tick = (rows: Record<string, number>) => {
      const inputs = Object.fromEntries(Object.entries(rows).map(([id, n]) => [id, request(tenants.find((t) => t.id === id)!, n, r)]));
      const w = codec.write(codec.check(inputs), new Uint8Array(layout.inBytes), new Uint8Array(3), new Int32Array(3));
      return codec.unpack(w, result);
    };
    const full = tick({ r: 2, p: 4 });
    expect(Object.keys(full)).toEqual(['r', 'p']); // the order the tenants were given
    const y = full.p!.y!;
    expect(y.shape).toEqual([4, 2]);
    expect(Object.isFrozen(y.shape)).toBe(true);
    expect(y.data.buffer).toBe(result);
    expect(full.r!.n!.shape).toEqual([]);
    expect(tick({ p: 4 }).p!.y!.shape).toBe(y.shape); // shared, not rebuilt
    const part = tick({ p: 3, q: 2 });
    expect(part.p!.y!.shape).toEqual([3, 2]);
    expect(Array.from(part.p!.y!.data as Float32Array)).toEqual(Array.from((y.data as Float32Array).subarray(0, 6)));
    expect(tick({ p: 3 }).p!.y!.shape).toBe(part.p!.y!.shape);
    // q's z [2, 3, 2] at 2 of 3 rows on axis 1: each outer block keeps its first 2 rows, in a new array
    const z = part.q!.z!;
    expect(z.shape).toEqual([2, 2, 2]);
    expect(z.data.buffer).not.toBe(result);
    const zAt = tenants[1]!.outputs[0]!.ref.offset - layout.inBytes;
    const zAll = new Float32Array(result, zAt, 12);
    expect(Array.from(z.data as Float32Array)).toEqual([...zAll.subarray(0, 4), ...zAll.subarray(6, 10)]);
  });
});

describe('io layout of a compiled fleet', () => {
  it("inputs, then outputs: the staging result block holds only the tenants' outputs", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'loom-io-layout-'));
    try {
      await compileFleet(writeMlpFleet(dir, [64, 16, 10], 6), path.join(dir, 'plan'), { nvcc: 'off' });
      const loaded = await loadPlan(path.join(dir, 'plan'), { backend: 'cpu', threads: 1 });
      try {
        const ins = loaded.plan.tenants.flatMap((t) => t.inputs);
        const outs = loaded.plan.tenants.flatMap((t) => t.outputs);
        expect(Math.max(...ins.map((s) => s.ref.offset + s.bytes))).toBeLessThanOrEqual(Math.min(...outs.map((s) => s.ref.offset)));
        const staging = loadNativeAddon().staging((loaded as unknown as { handle: Parameters<ReturnType<typeof loadNativeAddon>['staging']>[0] }).handle);
        expect(staging.outBytes).toBeLessThanOrEqual(outs.reduce((a, s) => a + alignUp(s.bytes), 0));
        expect(staging.inBytes).toBeLessThanOrEqual(ins.reduce((a, s) => a + alignUp(s.bytes), 0));
      } finally {
        loaded.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
