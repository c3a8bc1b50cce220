import type { Graph } from '../graph.js';
import { constantFold } from './constant-fold.js';
import { eliminateDeadCode } from './dead-code.js';
import { foldBatchNorm } from './fold-batchnorm.js';
import { fuseEpilogue } from './fuse-epilogue.js';
import { lowerRecurrent } from './lower-recurrent.js';
import { verifyGraph } from '../verify.js';

// Every canonicalizing pass, in the order it runs. Each is a pure Graph -> Graph function.
export interface Pass {
  readonly name: string;
  readonly run: (g: Graph) => Graph;
  readonly description: string;
}

export const CANONICAL_PASSES: readonly Pass[] = [
  {
    name: 'constant-fold',
    run: constantFold,
    description: 'evaluate nodes with constant inputs; turn statically known shape values into constants',
  },
  {
    // before the fusions: a dead or Identity consumer would hide a producer's only real use
    name: 'clean-after-fold',
    run: eliminateDeadCode,
    description: 'drop what folding left dead (shape sub-graphs) and Identity/inference Dropout',
  },
  {
    name: 'fold-batchnorm',
    run: foldBatchNorm,
    description: 'fold inference BatchNormalization into the Conv/Gemm/MatMul weights and bias before it',
  },
  {
    name: 'fuse-epilogue',
    run: fuseEpilogue,
    description: 'attach a following bias Add and activation to MatMul/Gemm/Conv as its epilogue',
  },
  {
    name: 'eliminate-dead-code',
    run: eliminateDeadCode,
    description: 'drop nodes and constants no output needs, and Identity/inference Dropout',
  },
];

export interface CanonicalizeOptions {
  readonly verify?: boolean; // run the IR verifier after every pass (tests do)
  readonly onPass?: (name: string, g: Graph) => void; // sees the graph after each pass (for --emit / dumps)
}

export function canonicalize(g: Graph, opts: CanonicalizeOptions = {}): Graph {
  let cur = g;
  for (const pass of CANONICAL_PASSES) {
    cur = pass.run(cur);
    if (opts.verify) verifyGraph(cur);
    opts.onPass?.(pass.name, cur);
  }
  return cur;
}

// Lowerings the planner wants after canonicalization: ops it cannot batch become GEMMs + elementwise.
export const LOWERING_PASSES: readonly Pass[] = [
  {
    name: 'lower-recurrent',
    run: lowerRecurrent,
    description: 'unroll LSTM/GRU/RNN with constant weights into one input GEMM per direction, a recurrent GEMM per step and gate math',
  },
];

const LOWERING_CLEANUP: Pass = {
  name: 'eliminate-dead-code-after-lowering',
  run: eliminateDeadCode,
  description: 'drop what the lowerings left unused',
};

// Every pass lowerForPlanner runs (and reports to onPass), cleanup included.
export const LOWERING_PASS_NAMES: readonly string[] = [...LOWERING_PASSES, LOWERING_CLEANUP].map((p) => p.name);

export function lowerForPlanner(g: Graph, opts: CanonicalizeOptions = {}): Graph {
  let cur = g;
  for (const pass of [...LOWERING_PASSES, LOWERING_CLEANUP]) {
    cur = pass.run(cur);
    if (opts.verify) verifyGraph(cur);
    opts.onPass?.(pass.name, cur);
  }
  return cur;
}
