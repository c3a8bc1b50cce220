// Squeeze-and-excite blocks (MobileNetV3, EfficientNet, SE-ResNet): x → GlobalAveragePool (or a ReduceMean that
// keeps [N, C, 1, ...]: timm's `x.mean((2, 3), keepdim=True)`) → Conv 1×1 (+ bias, act1) → Conv 1×1 (+ bias,
// act2) → Mul with x, lowered as ONE generated squeeze_excite kernel instead of a
// reduce, two one-row GEMMs and a scale. Those four launches are tiny and sit on a deep net's critical path one
// after another: 40 of a MobileNetV3-Small's 81 launches, at ~4.5 µs each on an H100 (2026-12-06), almost all
// of it launch latency. The kernel runs one block per image (FORMAT.md "squeeze_excite").
import type { Node, NodeOf, ValueId } from '../../ir/graph.js';
import { SE_MAX_CHANNELS, SE_MAX_HIDDEN } from '../../ir/contract/launch.js';
import { canonicalActivation } from '../../ir/ops/activation.js';
import { numel } from '../../ir/shape.js';
import type { Loc, TenantLowering } from './lower-context.js';

// One block per image reads the image's c·spatial values twice and writes them once: past this many, the
// separate launches (which spread an image over many blocks) are the faster form.
export const SE_MAX_IMAGE_ELEMS = 1 << 16;

export interface ExciteMatch {
  readonly x: ValueId;
  readonly pool: Node;
  readonly fc1: NodeOf<'Conv'>;
  readonly fc2: NodeOf<'Conv'>;
  readonly mul: Node;
}

// The block starting at `n` (a GlobalAveragePool or a spatial ReduceMean), or null. Every intermediate value must have exactly one use
// (no graph output, no other reader): only then may the kernel skip materializing them.
export function matchSqueezeExcite(cx: TenantLowering, n: Node): ExciteMatch | null {
  if ((n.op !== 'GlobalAveragePool' && n.op !== 'ReduceMean') || n.outputs.length !== 1) return null;
  const x = n.inputs[0];
  if (x == null || cx.dtypeOf(x) !== 'f32') return null;
  const xs = cx.shapeOf(x);
  if (xs.length < 3 || !xs.every((d) => Number.isInteger(d) && d > 0)) return null;
  const [images, channels] = [xs[0]!, xs[1]!];
  // a ReduceMean whose output keeps [N, C] and 1s elsewhere averages each (image, channel) over its spatial values
  const pooled = cx.shapeOf(n.outputs[0]!);
  if (pooled.length !== xs.length || pooled[0] !== images || pooled[1] !== channels || pooled.slice(2).some((d) => d !== 1)) return null;
  const spatial = numel(xs.slice(2));
  if (channels > SE_MAX_CHANNELS || channels * spatial > SE_MAX_IMAGE_ELEMS) return null;
  const only = (v: ValueId): Node | undefined => cx.graphIndex.soleConsumer(v);
  const fc1 = pointwiseFc(cx, only(n.outputs[0]!), n.outputs[0]!, images, channels);
  if (fc1 === null || fc1.width > SE_MAX_HIDDEN) return null;
  const fc2 = pointwiseFc(cx, only(fc1.node.outputs[0]!), fc1.node.outputs[0]!, images, fc1.width);
  if (fc2 === null || fc2.width !== channels) return null;
  const gate = fc2.node.outputs[0]!;
  const mul = only(gate);
  if (mul === undefined || mul.op !== 'Mul' || mul.inputs.length !== 2 || mul.outputs.length !== 1) return null;
  if (!(mul.inputs[0] === gate && mul.inputs[1] === x) && !(mul.inputs[1] === gate && mul.inputs[0] === x)) return null;
  const ys = cx.shapeOf(mul.outputs[0]!);
  if (cx.dtypeOf(mul.outputs[0]!) !== 'f32' || ys.length !== xs.length || ys.some((d, i) => d !== xs[i])) return null;
  return { x, pool: n, fc1: fc1.node, fc2: fc2.node, mul };
}

// A Conv over `input` [images, inC, 1, ...] with a constant [out, inC, 1, ...] weight and a constant [out] bias,
// group 1, giving [images, out, 1, ...]: a dense layer on the pooled vector. Its width is `out`.
function pointwiseFc(cx: TenantLowering, n: Node | undefined, input: ValueId, images: number, inC: number): { node: NodeOf<'Conv'>; width: number } | null {
  if (n === undefined || n.op !== 'Conv' || n.inputs[0] !== input || n.outputs.length !== 1) return null;
  const conv = n as NodeOf<'Conv'>;
  if (conv.attrs.group !== 1) return null;
  // constants by their types alone: their bytes may still be on disk (ir/deferred.ts), and stay there
  const [wId, bId] = [conv.inputs[1], conv.inputs[2]];
  if (wId == null || bId == null || !cx.g.constants.has(wId) || !cx.g.constants.has(bId)) return null;
  if (cx.dtypeOf(wId) !== 'f32' || cx.dtypeOf(bId) !== 'f32') return null;
  const [w, b] = [cx.shapeOf(wId), cx.shapeOf(bId)];
  const out = w[0]!;
  if (w[1] !== inC || w.slice(2).some((d) => d !== 1) || b.length !== 1 || b[0] !== out) return null;
  const ys = cx.shapeOf(conv.outputs[0]!);
  if (ys[0] !== images || ys[1] !== out || ys.slice(2).some((d) => d !== 1)) return null;
  return { node: conv, width: out };
}

// The block as one kernel step writing the Mul's output.
export function lowerSqueezeExcite(cx: TenantLowering, m: ExciteMatch): void {
  const X = cx.loc(m.x);
  cx.node = m.mul;
  const Y = cx.newValue(m.mul.outputs[0]!);
  const [images, channels] = [X.shape[0]!, X.shape[1]!];
  const hidden = cx.shapeOf(m.fc1.outputs[0]!)[1]!;
  const view = (l: Loc) => ({ ref: l.ref, dtype: l.dtype, strides: [] });
  const operand = (v: ValueId | null | undefined) => view(cx.loc(v!));
  cx.kernel({ op: 'squeeze_excite', act1: canonicalActivation(m.fc1.attrs.activation), act2: canonicalActivation(m.fc2.attrs.activation) }, [
    {
      dims: [images, channels, numel(X.shape.slice(2)), hidden],
      inputs: [view(X), operand(m.fc1.inputs[1]), operand(m.fc1.inputs[2]), operand(m.fc2.inputs[1]), operand(m.fc2.inputs[2])],
      out: Y.ref,
      outDType: Y.dtype,
    },
  ]);
}
