// Every IR op and how the planner lowers it to steps, or why it never reaches the planner. The table is typed
// over OpName, so an op added to ir/ops without an entry here is a compile error, not a run-time surprise.
import { fail } from '../../ir/errors.js';
import type { Node, NodeOf, ValueId } from '../../ir/graph.js';
import type { OpName } from '../../ir/ops/index.js';
import type { TenantLowering } from './lower-context.js';
import { type Expr, lowerEltwise } from './lower-eltwise.js';
import { lowerConv, lowerConvTranspose, lowerGemm, lowerMatMul } from './lower-gemm.js';
import { lowerConcat, lowerConstantOfShape, lowerGather, lowerIndexMap, lowerView } from './lower-layout.js';
import { lowerGlobalPool, lowerGroupNorm, lowerLayerNorm, lowerPool, lowerReduce, lowerSoftmax } from './lower-norm.js';

export type NodeLowering<K extends OpName> = (cx: TenantLowering, n: NodeOf<K>, pending: Map<ValueId, Expr>, fuseInto: boolean) => void;
type AnyNodeLowering = (cx: TenantLowering, n: Node, pending: Map<ValueId, Expr>, fuseInto: boolean) => void;

// An op the planner does not lower, with the reason a user sees if one reaches it anyway.
interface NotLowered {
  readonly notLowered: string;
}

const notLowered = (why: string): NotLowered => ({ notLowered: why });

const eltwise: AnyNodeLowering = lowerEltwise;
const view: AnyNodeLowering = (cx, n) => lowerView(cx, n);
const indexMap: AnyNodeLowering = (cx, n) => lowerIndexMap(cx, n);
const reduce: AnyNodeLowering = (cx, n) => lowerReduce(cx, n);
const FOLDED = notLowered('shape arithmetic is folded to constants by the canonicalizing passes; a non-constant one cannot be planned');
const RECURRENT = notLowered(
  'recurrent ops with constant weights are unrolled by the lower-recurrent pass; this one was not (non-constant weights or sequence lengths)',
);

export const LOWERINGS: { readonly [K in OpName]: NodeLowering<K> | NotLowered } = {
  // elementwise: fused into multi-tenant elementwise programs
  Relu: eltwise,
  Sigmoid: eltwise,
  Tanh: eltwise,
  Exp: eltwise,
  Log: eltwise,
  Sqrt: eltwise,
  Reciprocal: eltwise,
  Neg: eltwise,
  Abs: eltwise,
  Sign: eltwise,
  Floor: eltwise,
  Ceil: eltwise,
  Round: eltwise,
  Erf: eltwise,
  Sin: eltwise,
  Cos: eltwise,
  Not: eltwise,
  Softplus: eltwise,
  Softsign: eltwise,
  Mish: eltwise,
  HardSwish: eltwise,
  Selu: eltwise,
  Elu: eltwise,
  Celu: eltwise,
  LeakyRelu: eltwise,
  ThresholdedRelu: eltwise,
  HardSigmoid: eltwise,
  Gelu: eltwise,
  IsNaN: eltwise,
  IsInf: eltwise,
  Clip: eltwise,
  Add: eltwise,
  Sub: eltwise,
  Mul: eltwise,
  Div: eltwise,
  Mod: eltwise,
  Max: eltwise,
  Min: eltwise,
  Sum: eltwise,
  Mean: eltwise,
  Equal: eltwise,
  Less: eltwise,
  Greater: eltwise,
  LessOrEqual: eltwise,
  GreaterOrEqual: eltwise,
  And: eltwise,
  Or: eltwise,
  Xor: eltwise,
  Pow: eltwise,
  PRelu: eltwise,
  Where: eltwise,
  Cast: eltwise,
  CastLike: eltwise,
  BatchNormalization: eltwise,
  // views: no launch, a new shape over the same bytes
  Reshape: view,
  Flatten: view,
  Squeeze: view,
  Unsqueeze: view,
  Identity: view,
  Dropout: view,
  // index maps: a copy through a compile-time gather table
  Transpose: indexMap,
  Slice: indexMap,
  Expand: indexMap,
  Tile: indexMap,
  Pad: indexMap,
  DepthToSpace: indexMap,
  SpaceToDepth: indexMap,
  Trilu: indexMap,
  GatherElements: indexMap,
  GatherND: indexMap,
  Resize: indexMap,
  Split: indexMap,
  // reductions
  ReduceMean: reduce,
  ReduceSum: reduce,
  ReduceMax: reduce,
  ReduceMin: reduce,
  ReduceProd: reduce,
  ReduceL1: reduce,
  ReduceL2: reduce,
  ReduceSumSquare: reduce,
  ReduceLogSumExp: reduce,
  ReduceLogSum: reduce,
  ArgMax: reduce,
  ArgMin: reduce,
  // GEMMs
  Gemm: (cx, n) => lowerGemm(cx, n),
  MatMul: (cx, n) => lowerMatMul(cx, n),
  Conv: (cx, n) => lowerConv(cx, n),
  ConvTranspose: (cx, n) => lowerConvTranspose(cx, n),
  // normalizations and pools
  Softmax: (cx, n) => lowerSoftmax(cx, n),
  LogSoftmax: (cx, n) => lowerSoftmax(cx, n),
  LayerNormalization: (cx, n) => lowerLayerNorm(cx, n),
  InstanceNormalization: (cx, n) => lowerGroupNorm(cx, n),
  GroupNormalization: (cx, n) => lowerGroupNorm(cx, n),
  MaxPool: (cx, n) => lowerPool(cx, n),
  AveragePool: (cx, n) => lowerPool(cx, n),
  GlobalAveragePool: (cx, n) => lowerGlobalPool(cx, n),
  GlobalMaxPool: (cx, n) => lowerGlobalPool(cx, n),
  // layout
  Concat: (cx, n) => lowerConcat(cx, n),
  Gather: (cx, n) => lowerGather(cx, n),
  ConstantOfShape: (cx, n) => lowerConstantOfShape(cx, n),
  // never planned
  LpNormalization: notLowered('LpNormalization has no planner lowering yet'),
  LSTM: RECURRENT,
  GRU: RECURRENT,
  RNN: RECURRENT,
  Shape: FOLDED,
  Size: FOLDED,
  Range: FOLDED,
  ScatterND: notLowered('ScatterND with runtime updates has no planner lowering yet'),
};

export function lowerNodeByOp(cx: TenantLowering, n: Node, pending: Map<ValueId, Expr>, fuseInto: boolean): void {
  const entry = LOWERINGS[n.op as OpName];
  if (entry === undefined || 'notLowered' in entry) {
    const why = entry === undefined ? 'unknown op' : entry.notLowered;
    return fail('UNSUPPORTED_OP', `${cx.where()}: the planner cannot lower ${n.op} (tenant '${cx.tenantId}', node '${n.name}', op ${n.op}): ${why}`);
  }
  return (entry as AnyNodeLowering)(cx, n, pending, fuseInto);
}
