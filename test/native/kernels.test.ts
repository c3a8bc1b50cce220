// Every KernelOp on the CPU backend against straightforward TS: eltwise programs (broadcast strides, f32
// and f64 compute, integer and bool dtypes), reductions, softmax, norms, pooling, im2col/col2im, strided
// copies (negative and zero strides), fill, gathers (with their index errors).
import { describe, expect, it } from 'vitest';
import { erf } from '../../ir/ops/activation.js';
import type { EltInstr, KernelOp, PoolGeometry, Segment } from '../../ir/contract/launch.js';
import { ArenaBuilder, info, maxRelError, randomF32 } from './helpers.js';

function kernel(b: ArenaBuilder, op: KernelOp, segments: Segment[]): void {
  b.launches.push({ kind: 'kernel', id: b.launches.length, kernel: `k${b.launches.length}`, op, segments, info: info(op.op) });
}

function contiguous(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let d = shape.length - 2; d >= 0; d--) s[d] = s[d + 1]! * shape[d + 1]!;
  return s;
}

describe('native eltwise (cpu)', () => {
  it('broadcasts through zero strides and runs a postfix program in f32', async () => {
    const b = new ArenaBuilder();
    const shape = [3, 5, 7];
    const x = randomF32(105, 1, 2);
    const row = randomF32(7, 2); // [7] broadcast over [3,5,*]
    const col = randomF32(5, 3); // [5,1] broadcast
    const sx = b.alloc('io', 'f32', 105, x);
    const srow = b.alloc('weights', 'f32', 7, row);
    const scol = b.alloc('io', 'f32', 5, col);
    const out = b.alloc('io', 'f32', 105);
    // gelu(x * row + col) clipped, then max with 0.1 * x
    const program: EltInstr[] = [
      { op: 'in', i: 0 },
      { op: 'in', i: 1 },
      { op: 'mul' },
      { op: 'in', i: 2 },
      { op: 'add' },
      { op: 'act', act: { kind: 'gelu_erf' } },
      { op: 'clip', min: -0.2, max: 1.5 },
      { op: 'const', v: 0.1 },
      { op: 'in', i: 0 },
      { op: 'mul' },
      { op: 'max' },
    ];
    kernel(b, { op: 'eltwise', program, computeF32: true }, [
      {
        tenant: 0,
        shape,
        out: out.ref,
        outDType: 'f32',
        inputs: [
          { ref: sx.ref, dtype: 'f32', strides: contiguous(shape) },
          { ref: srow.ref, dtype: 'f32', strides: [0, 0, 1] },
          { ref: scol.ref, dtype: 'f32', strides: [0, 1, 0] },
        ],
      },
    ]);
    const got = (await b.run()).floats(out);
    const want: number[] = [];
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 5; j++)
        for (let k = 0; k < 7; k++) {
          const xv = x[(i * 5 + j) * 7 + k]!;
          const v = xv * row[k]! + col[j]!;
          const g = Math.min(1.5, Math.max(-0.2, 0.5 * v * (1 + erf(v / Math.SQRT2))));
          want.push(Math.max(g, 0.1 * xv));
        }
    expect(maxRelError(got, want)).toBeLessThan(1e-6);
  });

  it('computes integer programs in f64 and writes i64/i32/bool/u8 outputs', async () => {
    const b = new ArenaBuilder();
    const a = new BigInt64Array([7n, -7n, 7n, -7n, 9007199254740000n, 0n]);
    const d = new Int32Array([2, 2, -2, -2, 1, 3]);
    const sa = b.alloc('io', 'i64', 6, a);
    const sd = b.alloc('io', 'i32', 6, d);
    const outs = {
      idiv: b.alloc('io', 'i64', 6),
      mod: b.alloc('io', 'i32', 6),
      fmod: b.alloc('io', 'i64', 6),
      lt: b.alloc('io', 'bool', 6),
      u8: b.alloc('io', 'u8', 6),
    };
    const view = [
      { ref: sa.ref, dtype: 'i64' as const, strides: [1] },
      { ref: sd.ref, dtype: 'i32' as const, strides: [1] },
    ];
    const seg = (out: typeof outs.idiv, dt: Segment['outDType']): Segment => ({ tenant: 1, shape: [6], inputs: view, out: out.ref, outDType: dt });
    kernel(b, { op: 'eltwise', computeF32: false, program: [{ op: 'in', i: 0 }, { op: 'in', i: 1 }, { op: 'idiv' }] }, [seg(outs.idiv, 'i64')]);
    kernel(b, { op: 'eltwise', computeF32: false, program: [{ op: 'in', i: 0 }, { op: 'in', i: 1 }, { op: 'mod' }] }, [seg(outs.mod, 'i32')]);
    kernel(b, { op: 'eltwise', computeF32: false, program: [{ op: 'in', i: 0 }, { op: 'in', i: 1 }, { op: 'fmod' }] }, [seg(outs.fmod, 'i64')]);
    kernel(b, { op: 'eltwise', computeF32: false, program: [{ op: 'in', i: 0 }, { op: 'in', i: 1 }, { op: 'lt' }, { op: 'not' }] }, [seg(outs.lt, 'bool')]);
    kernel(b, { op: 'eltwise', computeF32: false, program: [{ op: 'in', i: 1 }, { op: 'const', v: 250 }, { op: 'add' }] }, [seg(outs.u8, 'u8')]);
    const r = await b.run();
    expect(Array.from(r.read(outs.idiv) as BigInt64Array)).toEqual([3n, -3n, -3n, 3n, 9007199254740000n, 0n]);
    expect(r.floats(outs.mod)).toEqual([1, 1, -1, -1, 0, 0]);
    expect(Array.from(r.read(outs.fmod) as BigInt64Array)).toEqual([1n, -1n, 1n, -1n, 0n, 0n]);
    expect(r.floats(outs.lt)).toEqual([1, 0, 1, 0, 1, 0]); // not(a < d)
    expect(r.floats(outs.u8)).toEqual([252, 252, 248, 248, 251, 253]); // wraps like a C cast
  });

  it('where, comparisons, unary functions and NaN checks', async () => {
    const b = new ArenaBuilder();
    const x = new Float32Array([-2.5, -0.5, 0, 0.5, 2.5, 1.5, NaN, Infinity]);
    const cond = new Uint8Array([1, 0, 1, 0, 1, 0, 1, 0]);
    const sx = b.alloc('io', 'f32', 8, x);
    const sc = b.alloc('io', 'bool', 8, cond);
    const view = [
      { ref: sx.ref, dtype: 'f32' as const, strides: [1] },
      { ref: sc.ref, dtype: 'bool' as const, strides: [1] },
    ];
    const unaries = [
      'neg',
      'abs',
      'floor',
      'ceil',
      'round',
      'sign',
      'relu',
      'softsign',
      'softplus',
      'isnan',
      'isinf',
      'trunc',
      'sigmoid',
      'tanh',
      'erf',
      'exp',
    ] as const;
    const outs = unaries.map((u) => {
      const o = b.alloc('io', 'f32', 8);
      kernel(b, { op: 'eltwise', computeF32: true, program: [{ op: 'in', i: 0 }, { op: u }] }, [
        { tenant: 0, shape: [8], inputs: view, out: o.ref, outDType: 'f32' },
      ]);
      return o;
    });
    const w = b.alloc('io', 'f32', 8);
    kernel(b, { op: 'eltwise', computeF32: true, program: [{ op: 'in', i: 1 }, { op: 'in', i: 0 }, { op: 'const', v: -1 }, { op: 'where' }] }, [
      { tenant: 0, shape: [8], inputs: view, out: w.ref, outDType: 'f32' },
    ]);
    const r = await b.run();
    const f32 = (v: number) => Math.fround(v);
    const ref: Record<(typeof unaries)[number], (v: number) => number> = {
      neg: (v) => -v,
      abs: Math.abs,
      floor: Math.floor,
      ceil: Math.ceil,
      round: (v) => (Math.abs(v % 1) === 0.5 ? 2 * Math.round(v / 2) : Math.round(v)),
      sign: (v) => (Number.isNaN(v) ? NaN : Math.sign(v)),
      relu: (v) => (Number.isNaN(v) ? NaN : Math.max(0, v)),
      softsign: (v) => v / (1 + Math.abs(v)),
      softplus: (v) => Math.log1p(Math.exp(v)),
      isnan: (v) => (Number.isNaN(v) ? 1 : 0),
      isinf: (v) => (Math.abs(v) === Infinity ? 1 : 0),
      trunc: Math.trunc,
      sigmoid: (v) => 1 / (1 + Math.exp(-v)),
      tanh: Math.tanh,
      erf: (v) => (Number.isNaN(v) ? NaN : v === Infinity ? 1 : erf(v)),
      exp: Math.exp,
    };
    unaries.forEach((u, i) => {
      const want = Array.from(x, (v) => f32(ref[u](v)));
      expect(maxRelError(r.floats(outs[i]!), want), u).toBeLessThan(1e-6);
    });
    expect(r.floats(w)).toEqual([-2.5, -1, 0, -1, 2.5, -1, NaN, -1]);
  });
});

describe('native reduce / softmax / norms (cpu)', () => {
  const outer = 3,
    axis = 6,
    inner = 4;
  const x = randomF32(outer * axis * inner, 11, 2);
  const at = (o: number, a: number, i: number) => x[(o * axis + a) * inner + i]!;
  const kinds = ['sum', 'mean', 'max', 'min', 'prod', 'l1', 'l2', 'sumsq', 'logsumexp', 'argmax', 'argmin'] as const;

  it('every reduction over the middle axis', async () => {
    const b = new ArenaBuilder();
    const sx = b.alloc('io', 'f32', x.length, x);
    const outs = kinds.map((k) => {
      const arg = k === 'argmax' || k === 'argmin';
      const o = b.alloc('io', arg ? 'i64' : 'f32', outer * inner);
      kernel(b, { op: 'reduce', reduce: k, selectLast: false }, [
        {
          tenant: 2,
          dims: [outer, axis, inner],
          inputs: [{ ref: sx.ref, dtype: 'f32', strides: [axis * inner, inner, 1] }],
          out: o.ref,
          outDType: arg ? 'i64' : 'f32',
        },
      ]);
      return o;
    });
    const r = await b.run();
    kinds.forEach((k, ki) => {
      const want: number[] = [];
      for (let o = 0; o < outer; o++)
        for (let i = 0; i < inner; i++) {
          const v = Array.from({ length: axis }, (_, a) => at(o, a, i));
          const sum = v.reduce((s, e) => s + e, 0);
          const m = Math.max(...v);
          want.push(
            {
              sum,
              mean: sum / axis,
              max: m,
              min: Math.min(...v),
              prod: v.reduce((s, e) => s * e, 1),
              l1: v.reduce((s, e) => s + Math.abs(e), 0),
              l2: Math.sqrt(v.reduce((s, e) => s + e * e, 0)),
              sumsq: v.reduce((s, e) => s + e * e, 0),
              logsumexp: m + Math.log(v.reduce((s, e) => s + Math.exp(e - m), 0)),
              argmax: v.indexOf(m),
              argmin: v.indexOf(Math.min(...v)),
            }[k],
          );
        }
      expect(maxRelError(r.floats(outs[ki]!), want), k).toBeLessThan(1e-6);
    });
  });

  it('argmax with selectLast picks the last of equal maxima', async () => {
    const b = new ArenaBuilder();
    const sx = b.alloc('io', 'f32', 5, new Float32Array([1, 3, 2, 3, 0]));
    const first = b.alloc('io', 'i64', 1);
    const last = b.alloc('io', 'i64', 1);
    for (const [o, sel] of [
      [first, false],
      [last, true],
    ] as const) {
      kernel(b, { op: 'reduce', reduce: 'argmax', selectLast: sel }, [
        { tenant: 0, dims: [1, 5, 1], inputs: [{ ref: sx.ref, dtype: 'f32', strides: [] }], out: o.ref, outDType: 'i64' },
      ]);
    }
    const r = await b.run();
    expect(r.floats(first)).toEqual([1]);
    expect(r.floats(last)).toEqual([3]);
  });

  it('softmax and log-softmax along a strided axis', async () => {
    const b = new ArenaBuilder();
    const sx = b.alloc('io', 'f32', x.length, x);
    const sm = b.alloc('io', 'f32', x.length);
    const lsm = b.alloc('io', 'f32', x.length);
    for (const [o, log] of [
      [sm, false],
      [lsm, true],
    ] as const) {
      kernel(b, { op: 'softmax', log }, [
        { tenant: 0, dims: [outer, axis, inner], inputs: [{ ref: sx.ref, dtype: 'f32', strides: [axis * inner, inner, 1] }], out: o.ref, outDType: 'f32' },
      ]);
    }
    const r = await b.run();
    const want: number[] = new Array(x.length);
    const wantLog: number[] = new Array(x.length);
    for (let o = 0; o < outer; o++)
      for (let i = 0; i < inner; i++) {
        const v = Array.from({ length: axis }, (_, a) => at(o, a, i));
        const m = Math.max(...v);
        const s = v.reduce((acc, e) => acc + Math.exp(e - m), 0);
        v.forEach((e, a) => {
          want[(o * axis + a) * inner + i] = Math.exp(e - m) / s;
          wantLog[(o * axis + a) * inner + i] = e - m - Math.log(s);
        });
      }
    expect(maxRelError(r.floats(sm), want)).toBeLessThan(1e-6);
    expect(maxRelError(r.floats(lsm), wantLog)).toBeLessThan(1e-6);
  });

  it('layernorm with and without scale/bias, groupnorm per channel', async () => {
    const b = new ArenaBuilder();
    const rows = 5,
      cols = 12;
    const lx = randomF32(rows * cols, 21, 3);
    const scale = randomF32(cols, 22);
    const bias = randomF32(cols, 23);
    const sx = b.alloc('io', 'f32', lx.length, lx);
    const ss = b.alloc('weights', 'f32', cols, scale);
    const sb = b.alloc('weights', 'f32', cols, bias);
    const full = b.alloc('io', 'f32', lx.length);
    const bare = b.alloc('io', 'f32', lx.length);
    kernel(b, { op: 'layernorm', epsilon: 1e-5 }, [
      {
        tenant: 0,
        dims: [rows, cols],
        inputs: [
          { ref: sx.ref, dtype: 'f32', strides: [] },
          { ref: ss.ref, dtype: 'f32', strides: [] },
          { ref: sb.ref, dtype: 'f32', strides: [] },
        ],
        out: full.ref,
        outDType: 'f32',
      },
      { tenant: 1, dims: [rows, cols], inputs: [{ ref: sx.ref, dtype: 'f32', strides: [] }], out: bare.ref, outDType: 'f32' },
    ]);
    // groupnorm: n=2, groups=3, cpg=2, spatial=4 (channels = 6)
    const gx = randomF32(2 * 6 * 4, 24, 2);
    const gs = randomF32(6, 25);
    const gb = randomF32(6, 26);
    const sgx = b.alloc('io', 'f32', gx.length, gx);
    const sgs = b.alloc('weights', 'f32', 6, gs);
    const sgb = b.alloc('weights', 'f32', 6, gb);
    const gout = b.alloc('io', 'f32', gx.length);
    kernel(b, { op: 'groupnorm', epsilon: 1e-3 }, [
      {
        tenant: 3,
        dims: [2, 3, 2, 4],
        inputs: [
          { ref: sgx.ref, dtype: 'f32', strides: [] },
          { ref: sgs.ref, dtype: 'f32', strides: [] },
          { ref: sgb.ref, dtype: 'f32', strides: [] },
        ],
        out: gout.ref,
        outDType: 'f32',
      },
    ]);
    const r = await b.run();
    const norm = (v: number[], eps: number) => {
      const m = v.reduce((s, e) => s + e, 0) / v.length;
      const varc = v.reduce((s, e) => s + (e - m) ** 2, 0) / v.length;
      return v.map((e) => (e - m) / Math.sqrt(varc + eps));
    };
    const wantFull: number[] = [];
    const wantBare: number[] = [];
    for (let i = 0; i < rows; i++) {
      const n = norm(Array.from(lx.subarray(i * cols, (i + 1) * cols)), 1e-5);
      n.forEach((e, c) => {
        wantFull.push(e * scale[c]! + bias[c]!);
        wantBare.push(e);
      });
    }
    expect(maxRelError(r.floats(full), wantFull)).toBeLessThan(1e-5);
    expect(maxRelError(r.floats(bare), wantBare)).toBeLessThan(1e-5);
    const wantG: number[] = [];
    for (let n = 0; n < 2; n++)
      for (let g = 0; g < 3; g++) {
        const base = (n * 3 + g) * 8;
        norm(Array.from(gx.subarray(base, base + 8)), 1e-3).forEach((e, j) => {
          const ch = g * 2 + Math.floor(j / 4);
          wantG.push(e * gs[ch]! + gb[ch]!);
        });
      }
    expect(maxRelError(r.floats(gout), wantG)).toBeLessThan(1e-5);
  });
});

describe('native pooling and image layout (cpu)', () => {
  const geom: PoolGeometry = {
    n: 2,
    c: 3,
    h: 7,
    w: 6,
    oh: 4,
    ow: 3,
    kh: 3,
    kw: 2,
    sh: 2,
    sw: 2,
    padTop: 1,
    padLeft: 0,
    padBottom: 1,
    padRight: 1,
    dh: 1,
    dw: 2,
  };
  const x = randomF32(2 * 3 * 7 * 6, 31, 2);
  const px = (n: number, c: number, y: number, xx: number) => x[((n * 3 + c) * 7 + y) * 6 + xx]!;

  it('max and average pools (with and without counting padding)', async () => {
    const b = new ArenaBuilder();
    const sx = b.alloc('io', 'f32', x.length, x);
    const outs = (['max', 'avg', 'avgpad'] as const).map((mode) => {
      const o = b.alloc('io', 'f32', 2 * 3 * 4 * 3);
      kernel(b, { op: 'pool', mode: mode === 'max' ? 'max' : 'avg', countIncludePad: mode === 'avgpad' }, [
        { tenant: 0, geom, inputs: [{ ref: sx.ref, dtype: 'f32', strides: [] }], out: o.ref, outDType: 'f32' },
      ]);
      return o;
    });
    const r = await b.run();
    const g = geom;
    const want = { max: [] as number[], avg: [] as number[], avgpad: [] as number[] };
    for (let n = 0; n < g.n; n++)
      for (let c = 0; c < g.c; c++)
        for (let oy = 0; oy < g.oh; oy++)
          for (let ox = 0; ox < g.ow; ox++) {
            let m = -Infinity,
              s = 0,
              cnt = 0,
              padded = 0;
            for (let ky = 0; ky < g.kh; ky++)
              for (let kx = 0; kx < g.kw; kx++) {
                const y = oy * g.sh - g.padTop + ky * g.dh;
                const xx = ox * g.sw - g.padLeft + kx * g.dw;
                if (y >= -g.padTop && y < g.h + g.padBottom && xx >= -g.padLeft && xx < g.w + g.padRight) padded++;
                if (y < 0 || y >= g.h || xx < 0 || xx >= g.w) continue;
                m = Math.max(m, px(n, c, y, xx));
                s += px(n, c, y, xx);
                cnt++;
              }
            want.max.push(m);
            want.avg.push(s / cnt);
            want.avgpad.push(s / padded);
          }
    expect(maxRelError(r.floats(outs[0]!), want.max)).toBe(0);
    expect(maxRelError(r.floats(outs[1]!), want.avg)).toBeLessThan(1e-6);
    expect(maxRelError(r.floats(outs[2]!), want.avgpad)).toBeLessThan(1e-6);
  });

  it('im2col lays out the windows; col2im sums them back (ConvTranspose as a gather)', async () => {
    const b = new ArenaBuilder();
    const g = { ...geom, n: 1 };
    const sx = b.alloc('io', 'f32', 3 * 7 * 6, x.subarray(0, 3 * 7 * 6));
    const cols = b.alloc('io', 'f32', 3 * g.kh * g.kw * g.oh * g.ow);
    kernel(b, { op: 'im2col' }, [{ tenant: 0, geom: g, inputs: [{ ref: sx.ref, dtype: 'f32', strides: [42, 6, 1] }], out: cols.ref, outDType: 'f32' }]);
    // col2im of a ConvTranspose: input h x w = 4 x 3 (oh/ow of the forward conv), output 7 x 6
    const tg: PoolGeometry = { ...g, h: 4, w: 3, oh: 7, ow: 6 };
    const tcols = randomF32(3 * g.kh * g.kw * 4 * 3, 32);
    const stc = b.alloc('io', 'f32', tcols.length, tcols);
    const tbias = new Float32Array([0.5, -1, 2]);
    const stb = b.alloc('weights', 'f32', 3, tbias);
    const timg = b.alloc('io', 'f32', 3 * 7 * 6);
    kernel(b, { op: 'col2im' }, [
      {
        tenant: 0,
        geom: tg,
        inputs: [
          { ref: stc.ref, dtype: 'f32', strides: [] },
          { ref: stb.ref, dtype: 'f32', strides: [] },
        ],
        out: timg.ref,
        outDType: 'f32',
      },
    ]);
    const r = await b.run();
    const want: number[] = [];
    for (let c = 0; c < 3; c++)
      for (let ky = 0; ky < g.kh; ky++)
        for (let kx = 0; kx < g.kw; kx++)
          for (let oy = 0; oy < g.oh; oy++)
            for (let ox = 0; ox < g.ow; ox++) {
              const y = oy * g.sh - g.padTop + ky * g.dh;
              const xx = ox * g.sw - g.padLeft + kx * g.dw;
              want.push(y < 0 || y >= g.h || xx < 0 || xx >= g.w ? 0 : px(0, c, y, xx));
            }
    expect(r.floats(cols)).toEqual(want);
    // scatter form of ConvTranspose: out[c, iy*sh - padTop + ky*dh, ix*sw - padLeft + kx*dw] += cols[(c,ky,kx), (iy,ix)]
    const img = new Float64Array(3 * 7 * 6);
    for (let c = 0; c < 3; c++) img.fill(tbias[c]!, c * 42, (c + 1) * 42);
    for (let c = 0; c < 3; c++)
      for (let ky = 0; ky < g.kh; ky++)
        for (let kx = 0; kx < g.kw; kx++)
          for (let iy = 0; iy < 4; iy++)
            for (let ix = 0; ix < 3; ix++) {
              const y = iy * g.sh - g.padTop + ky * g.dh;
              const xx = ix * g.sw - g.padLeft + kx * g.dw;
              if (y < 0 || y >= 7 || xx < 0 || xx >= 6) continue;
              img[c * 42 + y * 6 + xx] += tcols[((c * g.kh + ky) * g.kw + kx) * 12 + iy * 3 + ix]!;
            }
    expect(maxRelError(r.floats(timg), Array.from(img))).toBeLessThan(1e-6);
  });
});

describe('native copy / fill / gather (cpu)', () => {
  it('copies through negative, zero and permuting strides, any element size, and casts', async () => {
    const b = new ArenaBuilder();
    const src = new BigInt64Array(Array.from({ length: 24 }, (_, i) => BigInt(i * 1000 + 1)));
    const s = b.alloc('io', 'i64', 24, src);
    // view [4, 3, 2] of the source [2, 3, 4] transposed (2,1,0) with the first axis reversed
    const flipped = b.alloc('io', 'i64', 24);
    kernel(b, { op: 'copy' }, [
      {
        tenant: 0,
        shape: [4, 3, 2],
        inputs: [{ ref: { arena: 'io', offset: s.ref.offset + 3 * 8 }, dtype: 'i64', strides: [-1, 4, 12] }],
        out: flipped.ref,
        outDType: 'i64',
      },
    ]);
    // broadcast a row with a zero stride, written through outStrides (columns of a 3x2 matrix)
    const bcast = b.alloc('io', 'i64', 6);
    kernel(b, { op: 'copy' }, [
      { tenant: 0, shape: [2, 3], inputs: [{ ref: s.ref, dtype: 'i64', strides: [0, 1] }], out: bcast.ref, outDType: 'i64', outStrides: [1, 2] },
    ]);
    const f = new Float32Array([1.5, -2.5, 3.25]);
    const sf = b.alloc('io', 'f32', 3, f);
    const cast = b.alloc('io', 'i32', 3);
    kernel(b, { op: 'copy' }, [
      { tenant: 0, shape: [3], inputs: [{ ref: { arena: 'io', offset: sf.ref.offset + 8 }, dtype: 'f32', strides: [-1] }], out: cast.ref, outDType: 'i32' },
    ]);
    const r = await b.run();
    const want: bigint[] = [];
    for (let i = 0; i < 4; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 2; k++) want.push(src[3 - i + 4 * j + 12 * k]!);
    expect(Array.from(r.read(flipped) as BigInt64Array)).toEqual(want);
    expect(Array.from(r.read(bcast) as BigInt64Array)).toEqual([1n, 1n, 1001n, 1001n, 2001n, 2001n]);
    expect(r.floats(cast)).toEqual([3, -2, 1]);
  });

  it('fills every dtype', async () => {
    const b = new ArenaBuilder();
    const a = b.alloc('io', 'f32', 5);
    const c = b.alloc('io', 'i64', 3);
    const d = b.alloc('io', 'bool', 4);
    kernel(b, { op: 'fill', value: -Infinity }, [{ tenant: 0, count: 5, inputs: [], out: a.ref, outDType: 'f32' }]);
    kernel(b, { op: 'fill', value: 42 }, [
      { tenant: 0, count: 3, inputs: [], out: c.ref, outDType: 'i64' },
      { tenant: 1, count: 4, inputs: [], out: d.ref, outDType: 'bool' },
    ]);
    const r = await b.run();
    expect(r.floats(a)).toEqual(new Array(5).fill(-Infinity));
    expect(Array.from(r.read(c) as BigInt64Array)).toEqual([42n, 42n, 42n]);
    expect(r.floats(d)).toEqual([1, 1, 1, 1]);
  });

  it('gathers rows with i64 and i32 indices (negative wrap) and tables with -1 holes', async () => {
    const b = new ArenaBuilder();
    // data [outer=2, axis=5, inner=3]
    const data = randomF32(30, 41);
    const sd = b.alloc('weights', 'f32', 30, data);
    const i64 = b.alloc('io', 'i64', 4, new BigInt64Array([0n, 4n, -1n, 2n]));
    const i32 = b.alloc('io', 'i32', 2, new Int32Array([-5, 3]));
    const o1 = b.alloc('io', 'f32', 2 * 4 * 3);
    const o2 = b.alloc('io', 'f32', 2 * 2 * 3);
    kernel(b, { op: 'gather' }, [
      {
        tenant: 0,
        dims: [2, 5, 3, 4],
        inputs: [
          { ref: sd.ref, dtype: 'f32', strides: [] },
          { ref: i64.ref, dtype: 'i64', strides: [] },
        ],
        out: o1.ref,
        outDType: 'f32',
      },
      {
        tenant: 1,
        dims: [2, 5, 3, 2],
        inputs: [
          { ref: sd.ref, dtype: 'f32', strides: [] },
          { ref: i32.ref, dtype: 'i32', strides: [] },
        ],
        out: o2.ref,
        outDType: 'f32',
      },
    ]);
    const table = b.alloc('weights', 'i32', 4, new Int32Array([5, -1, 0, 29]));
    const o3 = b.alloc('io', 'f32', 4);
    kernel(b, { op: 'gather_table' }, [
      {
        tenant: 2,
        count: 4,
        inputs: [
          { ref: sd.ref, dtype: 'f32', strides: [] },
          { ref: table.ref, dtype: 'i32', strides: [] },
        ],
        out: o3.ref,
        outDType: 'f32',
      },
    ]);
    const r = await b.run();
    const g = (idx: number[]) => {
      const out: number[] = [];
      for (let o = 0; o < 2; o++) for (const k of idx) for (let i = 0; i < 3; i++) out.push(data[(o * 5 + ((k + 5) % 5)) * 3 + i]!);
      return out;
    };
    expect(r.floats(o1)).toEqual(g([0, 4, -1, 2]));
    expect(r.floats(o2)).toEqual(g([-5, 3]));
    expect(r.floats(o3)).toEqual([data[5]!, 0, data[0]!, data[29]!]);
  });

  it('an out-of-range gather index fails the tick with an EVAL error naming tenant and launch', async () => {
    const b = new ArenaBuilder();
    const sd = b.alloc('weights', 'f32', 10, randomF32(10, 1));
    const idx = b.alloc('io', 'i64', 1, new BigInt64Array([5n]));
    const o = b.alloc('io', 'f32', 2);
    kernel(b, { op: 'gather' }, [
      {
        tenant: 3,
        dims: [1, 5, 2, 1],
        inputs: [
          { ref: sd.ref, dtype: 'f32', strides: [] },
          { ref: idx.ref, dtype: 'i64', strides: [] },
        ],
        out: o.ref,
        outDType: 'f32',
      },
    ]);
    await expect(b.run()).rejects.toMatchObject({
      code: 'EVAL',
      message: expect.stringMatching(/tenant 't3'.*launch 0.*gather index 5 .*out of range.*length 5/),
    });
    // the same launch with tenant 3 absent from the tick does not read its indices
    await expect(b.run({ active: [0] })).resolves.toBeDefined();
  });
});
