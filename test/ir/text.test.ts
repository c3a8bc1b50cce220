import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../ir/builder.js';
import type { Graph } from '../../ir/graph.js';
import { interpret } from '../../ir/interpret.js';
import { parseGraph } from '../../ir/parse.js';
import { printGraph } from '../../ir/print.js';
import { type Tensor, fromNumbers, makeTensor, toNumbers } from '../../ir/tensor.js';
import { verifyGraph } from '../../ir/verify.js';
import { f32, mlp } from './fixtures.js';

const MLP_TEXT = `graph mlp (symbols: N)
  input %x: f32[N,3]
  const %w: f32[2,3] = [1, 2, 3, -1, 0, 1]
  const %b: f32[2] = [0.5, -4]
  %h: f32[N,2] = Gemm(%x, %w, %b) {activation=null, alpha=1, beta=1, transA=false, transB=true}  # gemm1
  %y: f32[N,2] = Relu(%h)  # relu1
  output %y
`;

function parseError(text: string): string {
  try {
    parseGraph(text);
  } catch (e) {
    expect((e as { code?: string }).code, String(e)).toBe('MODEL_INVALID');
    return (e as Error).message;
  }
  throw new Error('parseGraph accepted bad text');
}

// Exercises the awkward corners: quoted names, every dtype, non-finite floats, omitted inputs,
// multi-output nodes, nested attrs, a constant too big to print inline.
function awkward(): Graph {
  const b = new GraphBuilder('odd graph');
  const x = b.addInput('onnx::Input:0', { dtype: 'f32', shape: ['batch', 6] });
  const hi = b.addConstant('/clip/max', fromNumbers('f32', [], [0.1]));
  const big = b.addConstant(
    'big',
    fromNumbers(
      'f32',
      [6, 6],
      Array.from({ length: 36 }, (_, i) => Math.fround(Math.sin(i) * 1e3)),
    ),
  );
  b.addConstant('special', fromNumbers('f32', [5], [NaN, Infinity, -Infinity, -0, 1e-40]));
  b.addConstant('halves', fromNumbers('f16', [3], [0.1, -65504, 5.96e-8]));
  b.addConstant('brains', fromNumbers('bf16', [2], [3.14159, -1e30]));
  b.addConstant('longs', makeTensor('i64', [3], new BigInt64Array([9007199254740993n, -1n, -(2n ** 63n)])));
  b.addConstant('flags', fromNumbers('bool', [2, 1], [1, 0]));
  b.addConstant('bytes', fromNumbers('u8', [2], [0, 255]));
  b.addConstant('f64s', fromNumbers('f64', [2], [0.1, 1 / 3]));
  const [c] = b.addNode('Clip', 'clip with space', [x, null, hi], {}, ['clipped']);
  const [m] = b.addNode('Gemm', '', [c!, big], { alpha: 0.5, beta: 1, transA: false, transB: false, activation: { kind: 'leaky_relu', alpha: 0.01 } }, ['m']);
  const parts = b.addNode('Split', 'split', [m!], { axis: 1, numOutputs: 2 }, ['p0', 'p 1']);
  b.setOutputs([parts[1]!, parts[0]!]);
  return b.build(['batch']);
}

describe('printGraph', () => {
  it('prints the documented form', () => {
    expect(printGraph(mlp())).toBe(MLP_TEXT);
  });

  it('is stable across prints and rebuilds', () => {
    const g = awkward();
    expect(printGraph(g)).toBe(printGraph(g));
    expect(printGraph(awkward(), { fullConstants: true })).toBe(printGraph(g, { fullConstants: true }));
  });

  it('elides large constants unless asked for full data', () => {
    const short = printGraph(awkward());
    expect(short).toMatch(/const %big: f32\[6,6\] = <36 values, sha [0-9a-f]{8}>/);
    expect(short).toContain('const %/clip/max: f32[] = [0.1]');
    expect(short).toContain('input %onnx::Input:0: f32[batch,6]');
    expect(short).toContain('= Clip(%onnx::Input:0, _, %/clip/max)  # "clip with space"');
    expect(short).toContain('const %halves: f16[3] = [0.1, -65500, 6e-8]');
    expect(short).toContain('%p0: f32[batch,3], %"p 1": f32[batch,3] = Split(%m) {axis=1, numOutputs=2}');
    expect(short).toContain('activation={alpha: 0.01, kind: leaky_relu}');
    expect(short).toContain('const %special: f32[5] = [nan, inf, -inf, -0, 1e-40]');
    expect(short).toContain('const %longs: i64[3] = [9007199254740993, -1, -9223372036854775808]');
    expect(short).toContain('const %flags: bool[2,1] = [true, false]');
    const full = printGraph(awkward(), { fullConstants: true });
    expect(full).toMatch(/const %big: f32\[6,6\] = hex"[0-9a-f]{288}"/);
  });
});

describe('parseGraph', () => {
  it('round-trips the full text byte for byte', () => {
    for (const g of [mlp(), awkward()]) {
      const text = printGraph(g, { fullConstants: true });
      const back = parseGraph(text);
      verifyGraph(back);
      expect(printGraph(back, { fullConstants: true })).toBe(text);
    }
  });

  it('round-trips large constants as blobs, checking their dtype and shape', () => {
    const g = awkward();
    const blobs: Tensor[] = [];
    const text = printGraph(g, { blobs });
    expect(text).toMatch(/const %big: f32\[6,6\] = blob 0$/m);
    expect(blobs.length).toBeGreaterThan(0);
    const back = parseGraph(text, { blobs });
    expect(printGraph(back, { fullConstants: true })).toBe(printGraph(g, { fullConstants: true }));
    expect(() => parseGraph(text)).toThrow(/refers to blob 0, but no blobs were given/);
    expect(() => parseGraph(text, { blobs: [] })).toThrow(/blob 0 is not one of the 0 blobs given/);
    const wrong = [makeTensor('f32', [36]), ...blobs.slice(1)];
    expect(() => parseGraph(text, { blobs: wrong })).toThrow(/%big is declared f32\[6,6\] but blob 0 is f32\[36\]/);
  });

  it('keeps constants exact and the graph computing the same values', () => {
    const g = awkward();
    const back = parseGraph(printGraph(g, { fullConstants: true }));
    const byName = (gr: Graph, n: string) => gr.constants.get([...gr.values.values()].find((v) => v.name === n)!.id)!;
    for (const n of ['big', 'special', 'halves', 'brains', 'longs', 'flags', 'bytes', 'f64s']) {
      expect(Buffer.from(byName(back, n).data.buffer).equals(Buffer.from(byName(g, n).data.buffer)), n).toBe(true);
    }
    const input = { 'onnx::Input:0': f32([2, 6], [1, -2, 3, 0.05, 0.2, -0.3, 4, 5, 6, 7, 8, 9]) };
    const want = interpret(g, input);
    const got = interpret(back, input);
    expect(Object.keys(got)).toEqual(['p 1', 'p0']);
    for (const k of Object.keys(want)) expect(Array.from(toNumbers(got[k]!))).toEqual(Array.from(toNumbers(want[k]!)));
  });

  it('reads hand-written text without node names', () => {
    const g = parseGraph(`
# a comment line
graph tiny (symbols: N)
  input %a: f32[N,2]
  const %k: f32[2] = [10, 20]
  %s: f32[N,2] = Add(%a, %k)
  output %s
`);
    const out = interpret(g, { a: f32([1, 2], [1, 2]) });
    expect(Array.from(toNumbers(out.s!))).toEqual([11, 22]);
  });

  it('reports errors with line and column', () => {
    const lines = MLP_TEXT.split('\n');
    const edit = (i: number, line: string) => lines.map((l, k) => (k === i ? line : l)).join('\n');
    expect(parseError(edit(5, '  %y: f32[N,2] = Relux(%h)'))).toMatch(/^line 6:18: unknown op 'Relux'/);
    expect(parseError(edit(5, '  %y: f32[N,2] = Relu(%hh)'))).toMatch(/^line 6:23: value %hh is used before it is defined/);
    expect(parseError(edit(5, '  %y: f32[N,3] = Relu(%h)'))).toMatch(/^line 6:3: %y is declared f32\[N,3\] but Relu's shape rule gives f32\[N,2\]/);
    expect(parseError(edit(5, '  %h: f32[N,2] = Relu(%h)'))).toMatch(/^line 6:3: value %h is defined twice/);
    expect(parseError(edit(1, '  input %x: f33[N,3]'))).toMatch(/^line 2:13: unknown dtype 'f33'/);
    expect(parseError(edit(1, '  input %x: f32[M,3]'))).toMatch(/^line 2:13: symbol 'M' is not declared/);
    expect(parseError(edit(3, '  const %b: f32[2] = [0.5]'))).toMatch(/^line 4:.*f32\[2\] needs 2 values, got 1/);
    expect(parseError(edit(4, '  %h: f32[N,2] = Gemm(%x, %w, %b) {alpha=1 beta=1}'))).toMatch(/^line 5:\d+: expected ',' or '}'/);
    expect(parseError(edit(4, '  %h: f32[N,2] = Gemm(%x, %w, %b) {activation=null, alpha=1, beta=1, transA=false, transB=false}'))).toMatch(
      /^line 5:18: node 'Gemm_0' \(Gemm\): inner dimensions differ/,
    );
    expect(parseError(printGraph(awkward()))).toMatch(/^line 4:.*constant %big was left out when printing/);
    expect(parseError('input %x: f32[2]')).toMatch(/^line 1:1: expected 'graph NAME'/);
  });
});
