// Residual adds (ResNet blocks, MobileNetV2/V3's inverted residuals, a transformer's skip connections): a GEMM
// node (Conv, Gemm, MatMul) whose output's only use is Add(y, r), maybe followed by an activation, is lowered
// as the GEMM with r added in its epilogue, C = act(A·B + bias + r) (launch.ts GemmProblem.residual), instead of
// the GEMM and an elementwise launch. On a batch-1 fleet those adds are tiny launches on the critical path
// (7 per MobileNetV3-Small, 8 per ResNet-18), each mostly launch latency; at large batches the add re-read C
// and the residual and wrote C again, where the epilogue reads only the residual.
import type { Node, NodeOf, ValueId } from '../../ir/graph.js';
import type { Activation } from '../../ir/ops/activation.js';
import { hasActivation, matchActivation } from '../../ir/passes/match.js';
import { isDepthwise, lowerConv, lowerGemm, lowerMatMul } from './lower-gemm.js';
import type { TenantLowering } from './lower-context.js';

export interface ResidualMatch {
  readonly gemm: Node; // the Conv, Gemm or MatMul
  readonly add: Node;
  readonly residual: ValueId; // the Add's other operand
  readonly activation: Activation | null; // an activation after the Add, else null
  readonly fused: readonly Node[]; // the Add and the activation's nodes: lowered with the GEMM
  readonly out: ValueId; // what the GEMM now writes: the activation's output, else the Add's
  // The residual's producer, to lower before the GEMM when it comes later in node order (a ResNet block's
  // downsample conv, whose input is ready): then the block's last conv takes the add, and the downsample conv
  // still runs beside the block's first conv instead of after its last one. Null: the residual is ready.
  readonly early: Node | null;
}

const GEMM_OPS: ReadonlySet<string> = new Set(['Conv', 'Gemm', 'MatMul']);

// The residual block ending at GEMM node `n`, or null. `ready(v)`: v already has a location of its own (not a
// pending elementwise expression), so the GEMM can read it when it runs; else r's producer must be a GEMM node
// whose inputs are all ready (lowered first: ResidualMatch.early). The GEMM's output and the Add's must each
// have one use; r must be an f32 activation of exactly the GEMM output's shape (no broadcast: the epilogue reads
// it with C's layout), and neither a constant (a bias, not a residual) nor the GEMM output.
export function matchResidual(cx: TenantLowering, n: Node, ready: (v: ValueId) => boolean): ResidualMatch | null {
  if (!GEMM_OPS.has(n.op) || n.outputs.length !== 1 || hasActivation(n)) return null;
  if (n.op === 'Conv' && isDepthwise(cx, n)) return null; // a generated kernel, not a GEMM
  const y = n.outputs[0]!;
  const index = cx.graphIndex;
  const only = (v: ValueId): Node | undefined => index.soleConsumer(v);
  const add = only(y);
  if (add === undefined || add.op !== 'Add' || add.inputs.length !== 2 || add.outputs.length !== 1) return null;
  const r = add.inputs[0] === y ? add.inputs[1] : add.inputs[1] === y ? add.inputs[0] : null;
  if (r == null || r === y || cx.g.constants.has(r)) return null;
  let early: Node | null = null;
  if (!ready(r)) {
    const p = index.producer(r);
    if (p === undefined || !GEMM_OPS.has(p.op) || p.outputs.length !== 1) return null;
    if (!p.inputs.every((v) => v == null || cx.g.constants.has(v) || ready(v))) return null;
    early = p;
  }
  const sum = add.outputs[0]!;
  const same = (v: ValueId): boolean => {
    const [s, ys] = [cx.shapeOf(v), cx.shapeOf(y)];
    return cx.dtypeOf(v) === 'f32' && s.length === ys.length && s.every((d, i) => d === ys[i]);
  };
  if (!same(y) || !same(r) || !same(sum)) return null;
  const act = only(sum) === undefined ? undefined : matchActivation(index, sum);
  if (act !== undefined && !same(act.out)) return null;
  return {
    gemm: n,
    add,
    residual: r,
    activation: act?.activation ?? null,
    fused: [add, ...(act?.nodes ?? [])],
    out: act?.out ?? sum,
    early,
  };
}

// The match's GEMM node lowered to write m.out: the residual added in its epilogue, m.activation after it.
export function lowerResidual(cx: TenantLowering, m: ResidualMatch): void {
  const n = { ...m.gemm, outputs: [m.out], attrs: { ...(m.gemm.attrs as object), activation: m.activation } } as Node;
  cx.withResidual(cx.loc(m.residual), m.out, () => {
    if (n.op === 'Conv') lowerConv(cx, n as NodeOf<'Conv'>);
    else if (n.op === 'Gemm') lowerGemm(cx, n as NodeOf<'Gemm'>);
    else lowerMatMul(cx, n as NodeOf<'MatMul'>);
  });
}
