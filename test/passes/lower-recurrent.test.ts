import { describe, expect, it } from 'vitest';
import type { Graph } from '../../ir/graph.js';
import { interpret } from '../../ir/interpret.js';
import { unloweredRecurrent } from '../../ir/passes/lower-recurrent.js';
import type { Dim } from '../../ir/shape.js';
import { type Tensor, fromNumbers } from '../../ir/tensor.js';
import { generateModel } from '../../models/index.js';
import { importModelBytes, importModelFile } from '../../src/onnx/import.js';
import { type AttrValue, type IOSpec, type NodeSpec, encodeModel } from '../../src/onnx/write.js';
import { LOWERING_PASSES, canonicalize, lowerForPlanner } from '../../ir/passes/index.js';
import { makeFeeds, relativeError, runOrt } from '../oracle/harness.js';
import { nodesOf, randomF32, seeded } from './helpers.js';

const TOL = 1e-4;
const RECURRENT = ['LSTM', 'GRU', 'RNN'];

function lower(g: Graph): Graph {
  return lowerForPlanner(canonicalize(g, { verify: true }), { verify: true });
}

// Lowers the model and checks every output against onnxruntime at each batch size.
// `oracle` is an equivalent model for onnxruntime when it cannot run `bytes` itself.
async function checkLowered(bytes: Uint8Array, batches: readonly number[], oracle: Uint8Array = bytes, seed = 5): Promise<Graph> {
  const g = importModelBytes(bytes);
  const low = lower(g);
  expect(low.nodes.filter((n) => RECURRENT.includes(n.op)).map((n) => n.name)).toEqual([]);
  for (const batch of batches) {
    const feeds = makeFeeds(g, { batch, seed });
    const want = await runOrt(oracle, feeds);
    const got = interpret(low, feeds);
    expect(Object.keys(want).length).toBeGreaterThan(0);
    for (const [name, w] of Object.entries(want)) {
      expect(got[name], `output ${name}`).toBeDefined();
      expect(relativeError(got[name]!, w), `output ${name} at batch ${batch}`).toBeLessThanOrEqual(TOL);
    }
  }
  return low;
}

type Cell = 'LSTM' | 'GRU' | 'RNN';
interface RnnSpec {
  readonly cell: Cell;
  readonly direction?: 'forward' | 'reverse' | 'bidirectional';
  readonly seq?: number;
  readonly batch?: Dim;
  readonly input?: number;
  readonly hidden?: number;
  readonly bias?: boolean;
  readonly initialH?: 'input' | 'zeros' | 'none';
  readonly initialC?: boolean; // LSTM: initial_c as a graph input
  readonly clip?: number;
  readonly peepholes?: boolean;
  readonly linearBeforeReset?: 0 | 1;
  readonly layout?: 0 | 1;
  readonly seqLens?: readonly number[];
  readonly inputForget?: boolean;
  readonly seed?: number;
}

const GATES: Record<Cell, number> = { LSTM: 4, GRU: 3, RNN: 1 };

// One recurrent node with every output exposed; weights are initializers, states graph inputs.
// onnxruntime's CPU kernels reject layout 1: `forOrt` spells that as layout 0 between Transposes.
function rnnModel(s: RnnSpec, forOrt = false): Uint8Array {
  const rand = seeded(s.seed ?? 11);
  const S = s.seq ?? 4;
  const N = s.batch ?? 'N';
  const I = s.input ?? 5;
  const H = s.hidden ?? 6;
  const dirs = s.direction === 'bidirectional' ? 2 : 1;
  const G = GATES[s.cell] * H;
  const layout1 = s.layout === 1;
  const state: Dim[] = layout1 ? [N, dirs, H] : [dirs, N, H];
  const inputs: IOSpec[] = [{ name: 'X', dtype: 'f32', shape: layout1 ? [N, S, I] : [S, N, I] }];
  const inits: Record<string, Tensor> = {
    W: randomF32(rand, [dirs, G, I], -0.8, 0.8),
    R: randomF32(rand, [dirs, G, H], -0.8, 0.8),
  };
  const nodeInputs = ['X', 'W', 'R', '', '', ''];
  if (s.bias !== false) {
    inits.B = randomF32(rand, [dirs, 2 * G], -0.5, 0.5);
    nodeInputs[3] = 'B';
  }
  if (s.seqLens) {
    inits.L = fromNumbers('i32', [s.seqLens.length], s.seqLens);
    nodeInputs[4] = 'L';
  }
  if (s.initialH === 'input') {
    inputs.push({ name: 'h0', dtype: 'f32', shape: state });
    nodeInputs[5] = 'h0';
  } else if (s.initialH === 'zeros') {
    if (typeof N !== 'number') throw new Error('zero initializer needs a static batch');
    inits.h0 = fromNumbers('f32', state as number[], new Array<number>(dirs * N * H).fill(0));
    nodeInputs[5] = 'h0';
  }
  if (s.cell === 'LSTM') {
    nodeInputs.push('', '');
    if (s.initialC) {
      inputs.push({ name: 'c0', dtype: 'f32', shape: state });
      nodeInputs[6] = 'c0';
    }
    if (s.peepholes) {
      inits.P = randomF32(rand, [dirs, 3 * H], -0.8, 0.8);
      nodeInputs[7] = 'P';
    }
  }
  while (nodeInputs[nodeInputs.length - 1] === '') nodeInputs.pop();
  const attrs: Record<string, AttrValue> = { hidden_size: H };
  if (s.direction) attrs.direction = s.direction;
  if (s.clip !== undefined) attrs.clip = { float: s.clip };
  if (s.linearBeforeReset !== undefined) attrs.linear_before_reset = s.linearBeforeReset;
  if (s.layout !== undefined) attrs.layout = s.layout;
  if (s.inputForget) attrs.input_forget = 1;
  const outNames = s.cell === 'LSTM' ? ['Y', 'Y_h', 'Y_c'] : ['Y', 'Y_h'];
  const yShape: Dim[] = layout1 ? [N, S, dirs, H] : [S, dirs, N, H];
  const nodes: NodeSpec[] = [];
  let cellOuts = outNames;
  if (layout1 && forOrt) {
    attrs.layout = 0;
    for (const k of [0, 5, 6]) {
      const v = nodeInputs[k];
      if (v === undefined || v === '') continue;
      nodes.push({ op: 'Transpose', inputs: [v], outputs: [`${v}_tm`], attrs: { perm: [1, 0, 2] } });
      nodeInputs[k] = `${v}_tm`;
    }
    cellOuts = outNames.map((o) => `${o}_tm`);
    outNames.forEach((o, i) => nodes.push({ op: 'Transpose', inputs: [cellOuts[i]!], outputs: [o], attrs: { perm: i === 0 ? [2, 0, 1, 3] : [1, 0, 2] } }));
  }
  nodes.unshift({ op: s.cell, name: `cell_${s.cell}`, inputs: nodeInputs, outputs: cellOuts, attrs });
  return encodeModel({
    inputs,
    outputs: outNames.map((name, i) => ({ name, dtype: 'f32', shape: i === 0 ? yShape : state })),
    nodes: forOrt ? topo(nodes) : nodes,
    initializers: inits,
  });
}

// Input Transposes first, then the cell, then output Transposes.
function topo(nodes: readonly NodeSpec[]): NodeSpec[] {
  const cell = nodes[0]!;
  const rest = nodes.slice(1);
  return [...rest.filter((n) => !n.inputs[0]!.endsWith('_tm')), cell, ...rest.filter((n) => n.inputs[0]!.endsWith('_tm'))];
}

function matmuls(g: Graph): number {
  return nodesOf(g, 'MatMul').length;
}

describe('lower-recurrent', () => {
  it('is listed as a lowering pass, apart from the canonical ones', () => {
    expect(LOWERING_PASSES.map((p) => p.name)).toEqual(['lower-recurrent']);
  });

  describe('zoo models', () => {
    for (const kind of ['lstm', 'gru'] as const) {
      for (const layers of [1, 2]) {
        it(`${kind} with ${layers} layer(s), symbolic and fixed batch`, async () => {
          const sym = generateModel(kind, { seed: 3, hidden: 64, inputSize: 24, seqLen: 5, layers });
          const low = await checkLowered(sym.bytes, [1, 3]);
          // one input GEMM per layer; steps 1..4 each one recurrent GEMM (step 0 starts from zeros)
          expect(matmuls(low)).toBe(layers * 5);
          const fixed = generateModel(kind, { seed: 4, hidden: 64, inputSize: 24, seqLen: 5, layers, batch: 2 });
          await checkLowered(fixed.bytes, [2]);
        });
      }
    }
  });

  describe('PyTorch exports', () => {
    for (const [file, dirs] of [
      ['torch_lstm', 1],
      ['torch_gru_bidir', 2],
    ] as const) {
      it(file, async () => {
        const path = new URL(`../../models/torch/onnx/${file}.onnx`, import.meta.url).pathname;
        const { readFileSync } = await import('node:fs');
        const bytes = new Uint8Array(readFileSync(path));
        expect(importModelFile(path).nodes.some((n) => RECURRENT.includes(n.op))).toBe(true);
        const low = await checkLowered(bytes, [1, 3]);
        // seq 7; torch passes ConstantOfShape(0) as the initial state, which needs no step-0 GEMM
        expect(matmuls(low)).toBe(dirs * 7);
      });
    }
  });

  describe('hand-built nodes against onnxruntime', () => {
    const cases: Array<[string, RnnSpec]> = [
      ['LSTM forward, no state', { cell: 'LSTM' }],
      ['LSTM reverse with initial h and c', { cell: 'LSTM', direction: 'reverse', initialH: 'input', initialC: true }],
      ['LSTM bidirectional with states and peepholes', { cell: 'LSTM', direction: 'bidirectional', initialH: 'input', initialC: true, peepholes: true }],
      ['LSTM peepholes without state', { cell: 'LSTM', direction: 'bidirectional', peepholes: true }],
      ['LSTM clip', { cell: 'LSTM', direction: 'bidirectional', clip: 0.4, initialH: 'input', initialC: true, input: 7 }],
      ['LSTM clip with peepholes', { cell: 'LSTM', clip: 0.5, peepholes: true, initialC: true }],
      ['LSTM only initial_c', { cell: 'LSTM', initialC: true }],
      ['LSTM no bias, seq 1', { cell: 'LSTM', bias: false, seq: 1, initialH: 'input' }],
      ['LSTM layout 1', { cell: 'LSTM', layout: 1, direction: 'bidirectional', initialH: 'input', initialC: true }],
      ['LSTM sequence_lens all full', { cell: 'LSTM', batch: 3, seqLens: [4, 4, 4] }],
      ['LSTM zero initializer state, fixed batch', { cell: 'LSTM', batch: 2, initialH: 'zeros' }],
      ['GRU lbr=0 forward', { cell: 'GRU', linearBeforeReset: 0 }],
      ['GRU lbr=0 bidirectional with state', { cell: 'GRU', linearBeforeReset: 0, direction: 'bidirectional', initialH: 'input' }],
      ['GRU lbr=1 reverse with state', { cell: 'GRU', linearBeforeReset: 1, direction: 'reverse', initialH: 'input' }],
      ['GRU lbr=1 bidirectional, no state', { cell: 'GRU', linearBeforeReset: 1, direction: 'bidirectional' }],
      ['GRU lbr=1 clip', { cell: 'GRU', linearBeforeReset: 1, clip: 0.3, initialH: 'input' }],
      ['GRU lbr=0 clip', { cell: 'GRU', linearBeforeReset: 0, clip: 0.3, direction: 'reverse' }],
      ['GRU lbr=1 no bias', { cell: 'GRU', linearBeforeReset: 1, bias: false, initialH: 'input' }],
      ['GRU layout 1', { cell: 'GRU', linearBeforeReset: 1, layout: 1, direction: 'bidirectional', initialH: 'input' }],
      ['RNN forward', { cell: 'RNN' }],
      ['RNN reverse with state and clip', { cell: 'RNN', direction: 'reverse', initialH: 'input', clip: 0.6 }],
      ['RNN bidirectional with state', { cell: 'RNN', direction: 'bidirectional', initialH: 'input' }],
      ['RNN layout 1', { cell: 'RNN', layout: 1, initialH: 'input' }],
    ];
    for (const [title, spec] of cases) {
      it(title, async () => {
        const batch = typeof spec.batch === 'number' ? [spec.batch] : [1, 3];
        await checkLowered(rnnModel(spec), batch, rnnModel(spec, true));
        if (spec.batch === undefined) {
          const fixed = { ...spec, batch: 2, seed: 12 };
          await checkLowered(rnnModel(fixed), [2], rnnModel(fixed, true));
        }
      });
    }
  });

  describe('structure', () => {
    it('has one input GEMM plus one recurrent GEMM per step and direction', () => {
      const S = 5;
      for (const cell of ['LSTM', 'GRU', 'RNN'] as const) {
        for (const direction of ['forward', 'bidirectional'] as const) {
          const dirs = direction === 'bidirectional' ? 2 : 1;
          const low = lower(importModelBytes(rnnModel({ cell, direction, seq: S, initialH: 'input', linearBeforeReset: 1 })));
          expect(matmuls(low), `${cell} ${direction}`).toBe(dirs * (1 + S));
          // the input GEMM runs over all S*N rows with the folded bias as its epilogue
          const first = nodesOf(low, 'MatMul')[0]!;
          expect(low.values.get(first.inputs[0]!)!.type.shape).toEqual(['N*5', 5]);
          expect(first.inputs[2]).toBeDefined();
          const noState = lower(importModelBytes(rnnModel({ cell, direction, seq: S, linearBeforeReset: 1 })));
          expect(matmuls(noState), `${cell} ${direction} without state`).toBe(dirs * S);
        }
      }
      // linear_before_reset=0 multiplies r⊙h by R_h: a second GEMM per step
      const gru0 = lower(importModelBytes(rnnModel({ cell: 'GRU', seq: S, initialH: 'input', linearBeforeReset: 0 })));
      expect(matmuls(gru0)).toBe(1 + 2 * S);
    });

    it('keeps the recurrent GEMM weights transposed and constant', () => {
      const low = lower(importModelBytes(rnnModel({ cell: 'LSTM', seq: 2, initialH: 'input', hidden: 6, input: 5 })));
      const shapes = nodesOf(low, 'MatMul').map((n) => low.constants.get(n.inputs[1]!)?.shape);
      expect(shapes).toEqual([
        [5, 24],
        [6, 24],
        [6, 24],
      ]);
    });
  });

  describe('what stays un-lowered', () => {
    it('ragged sequence_lens', async () => {
      const bytes = rnnModel({ cell: 'LSTM', batch: 3, seqLens: [4, 2, 3] });
      const canon = canonicalize(importModelBytes(bytes), { verify: true });
      const low = lowerForPlanner(canon, { verify: true });
      expect(nodesOf(low, 'LSTM')).toHaveLength(1);
      expect(unloweredRecurrent(low)).toEqual([{ node: 'cell_LSTM', op: 'LSTM', reason: expect.stringMatching(/sequence_lens/) }]);
    });

    it('input_forget', () => {
      const low = lower(importModelBytes(rnnModel({ cell: 'LSTM', inputForget: true })));
      expect(nodesOf(low, 'LSTM')).toHaveLength(1);
      expect(unloweredRecurrent(low)[0]!.reason).toMatch(/input_forget/);
    });

    it('weights computed at run time', () => {
      const bytes = encodeModel({
        inputs: [
          { name: 'X', dtype: 'f32', shape: [3, 'N', 4] },
          { name: 'W', dtype: 'f32', shape: [1, 2, 4] },
        ],
        outputs: [{ name: 'Y_h', dtype: 'f32', shape: [1, 'N', 2] }],
        nodes: [{ op: 'RNN', inputs: ['X', 'W', 'R'], outputs: ['', 'Y_h'], attrs: { hidden_size: 2 } }],
        initializers: { R: randomF32(seeded(1), [1, 2, 2]) },
      });
      const low = lower(importModelBytes(bytes));
      expect(nodesOf(low, 'RNN')).toHaveLength(1);
      expect(unloweredRecurrent(low)[0]!.reason).toMatch(/input W/);
    });
  });
});
