// Reductions, softmax, normalizations and pooling → kernel steps over [outer, axis, inner] views.
import { fail } from '../../ir/errors.js';
import type { Node } from '../../ir/graph.js';
import type { ReduceAttrs } from '../../ir/ops/reduce-ops.js';
import type { PoolAttrs } from '../../ir/ops/pool.js';
import { resolveWindow } from '../../ir/ops/window.js';
import { normalizeAxis, numel } from '../../ir/shape.js';
import { fromNumbers, toIntList, toNumbers } from '../../ir/tensor.js';
import type { KernelOp, PoolGeometry } from '../../ir/contract/launch.js';
import type { Loc, TenantLowering } from './lower-context.js';
import { broadcastTo } from './lower-gemm.js';
import { contiguousStrides } from './steps.js';

type ReduceKind = Extract<KernelOp, { op: 'reduce' }>['reduce'];

const REDUCE: Record<string, ReduceKind> = {
  ReduceSum: 'sum',
  ReduceMean: 'mean',
  ReduceMax: 'max',
  ReduceMin: 'min',
  ReduceProd: 'prod',
  ReduceL1: 'l1',
  ReduceL2: 'l2',
  ReduceSumSquare: 'sumsq',
  ReduceLogSum: 'logsum',
  ReduceLogSumExp: 'logsumexp',
};

export function isReduceOp(op: string): boolean {
  return REDUCE[op] !== undefined || op === 'ArgMax' || op === 'ArgMin';
}

function reduceStep(cx: TenantLowering, x: Loc, axes: readonly number[], y: Loc, op: KernelOp): void {
  const shape = x.shape;
  let src = x;
  let outer: number;
  let len: number;
  let inner: number;
  const lo = axes[0] ?? 0;
  const hi = axes[axes.length - 1] ?? -1;
  if (axes.length === 0 || hi - lo + 1 === axes.length) {
    outer = numel(shape.slice(0, lo));
    len = numel(shape.slice(lo, hi + 1));
    inner = numel(shape.slice(hi + 1));
  } else {
    // reduced axes are not contiguous: move them last with a copy
    const kept = shape.map((_, i) => i).filter((i) => !axes.includes(i));
    const perm = [...kept, ...axes];
    const pshape = perm.map((p) => shape[p]!);
    const st = contiguousStrides(shape);
    src = cx.temp(`${cx.node?.name ?? 'reduce'}_t`, x.dtype, pshape);
    cx.kernel({ op: 'copy' }, [
      {
        shape: pshape,
        inputs: [{ ref: x.ref, dtype: x.dtype, strides: perm.map((p) => st[p]!) }],
        out: src.ref,
        outDType: x.dtype,
        outStrides: contiguousStrides(pshape),
      },
    ]);
    outer = numel(kept.map((k) => shape[k]!));
    len = numel(axes.map((a) => shape[a]!));
    inner = 1;
  }
  cx.kernel(op, [{ dims: [outer, len, inner], inputs: [{ ref: src.ref, dtype: src.dtype, strides: [len * inner, inner, 1] }], out: y.ref, outDType: y.dtype }]);
}

export function lowerReduce(cx: TenantLowering, n: Node): void {
  const where = cx.where();
  const x = cx.loc(n.inputs[0]!);
  const rank = x.shape.length;
  if (n.op === 'ArgMax' || n.op === 'ArgMin') {
    const a = n.attrs as { axis: number; selectLastIndex: boolean };
    const axis = normalizeAxis(a.axis, rank, where);
    const y = cx.newValue(n.outputs[0]!);
    reduceStep(cx, x, [axis], y, { op: 'reduce', reduce: n.op === 'ArgMax' ? 'argmax' : 'argmin', selectLast: a.selectLastIndex });
    return;
  }
  const a = n.attrs as ReduceAttrs;
  let axes: number[];
  const axesId = n.inputs[1] ?? null;
  if (axesId !== null) {
    const c = cx.constantOf(axesId);
    if (c === undefined) fail('UNSUPPORTED_OP', `${where}: axes computed at run time are not supported`);
    axes = toIntList(c);
  } else axes = [...(a.axes ?? [])];
  if (axes.length === 0) {
    if (a.noopWithEmptyAxes) fail('UNSUPPORTED_OP', `${where}: noop_with_empty_axes with empty axes is not supported by the planner`);
    axes = x.shape.map((_, i) => i);
  }
  axes = [...new Set(axes.map((ax) => normalizeAxis(ax, rank, where)))].sort((p, q) => p - q);
  const y = cx.newValue(n.outputs[0]!);
  reduceStep(cx, x, axes, y, { op: 'reduce', reduce: REDUCE[n.op]!, selectLast: false });
}

export function lowerGlobalPool(cx: TenantLowering, n: Node): void {
  const x = cx.loc(n.inputs[0]!);
  const y = cx.newValue(n.outputs[0]!);
  const axes = x.shape.map((_, i) => i).slice(2);
  reduceStep(cx, x, axes, y, { op: 'reduce', reduce: n.op === 'GlobalMaxPool' ? 'max' : 'mean', selectLast: false });
}

export function lowerSoftmax(cx: TenantLowering, n: Extract<Node, { op: 'Softmax' | 'LogSoftmax' }>): void {
  const x = cx.loc(n.inputs[0]!);
  const a = n.attrs;
  const axis = normalizeAxis(a.axis, x.shape.length, cx.where());
  const outer = numel(x.shape.slice(0, axis));
  const len = a.legacy2d ? numel(x.shape.slice(axis)) : x.shape[axis]!;
  const inner = a.legacy2d ? 1 : numel(x.shape.slice(axis + 1));
  const y = cx.newValue(n.outputs[0]!);
  cx.kernel({ op: 'softmax', log: n.op === 'LogSoftmax' }, [
    { dims: [outer, len, inner], inputs: [{ ref: x.ref, dtype: x.dtype, strides: [len * inner, inner, 1] }], out: y.ref, outDType: y.dtype },
  ]);
}

// A per-column parameter as [cols] (constants broadcast at compile time).
function paramVector(cx: TenantLowering, id: NonNullable<Node['inputs'][number]>, full: readonly number[], cols: number, name: string): Loc {
  const l = cx.loc(id);
  if (numel(l.shape) === cols) return l;
  const c = cx.constantOf(id);
  if (c === undefined) fail('UNSUPPORTED_OP', `${cx.where()}: a broadcast ${name} computed at run time is not supported`);
  return cx.weight(`${cx.node?.name}_${name}`, fromNumbers(c.dtype, [cols], toNumbers(broadcastTo(c, full))));
}

export function lowerLayerNorm(cx: TenantLowering, n: Extract<Node, { op: 'LayerNormalization' }>): void {
  for (const o of n.outputs.slice(1)) if (cx.used(o)) fail('UNSUPPORTED_OP', `${cx.where()}: LayerNormalization's Mean/InvStdDev outputs are not supported`);
  const x = cx.loc(n.inputs[0]!);
  const axis = normalizeAxis(n.attrs.axis, x.shape.length, cx.where());
  const rows = numel(x.shape.slice(0, axis));
  const cols = numel(x.shape.slice(axis));
  const full = x.shape.slice(axis);
  const inputs = [{ ref: x.ref, dtype: x.dtype, strides: [cols, 1] }];
  const scale = paramVector(cx, n.inputs[1]!, full, cols, 'scale');
  inputs.push({ ref: scale.ref, dtype: scale.dtype, strides: [1] });
  if (n.inputs[2] != null) {
    const bias = paramVector(cx, n.inputs[2], full, cols, 'bias');
    inputs.push({ ref: bias.ref, dtype: bias.dtype, strides: [1] });
  }
  const y = cx.newValue(n.outputs[0]!);
  cx.kernel({ op: 'layernorm', epsilon: n.attrs.epsilon }, [{ dims: [rows, cols], inputs, out: y.ref, outDType: y.dtype }]);
}

export function lowerGroupNorm(cx: TenantLowering, n: Extract<Node, { op: 'InstanceNormalization' | 'GroupNormalization' }>): void {
  const x = cx.loc(n.inputs[0]!);
  const [N, C] = [x.shape[0]!, x.shape[1]!];
  const spatial = numel(x.shape.slice(2));
  let groups = C;
  let scale = cx.loc(n.inputs[1]!);
  let bias = cx.loc(n.inputs[2]!);
  if (n.op === 'GroupNormalization') {
    groups = n.attrs.numGroups;
    if (!n.attrs.perChannel) {
      // opset 18: one scale per group, repeated over the group's channels
      const per = C / groups;
      const rep = (l: Loc, id: NonNullable<Node['inputs'][number]>, name: string): Loc => {
        const c = cx.constantOf(id);
        if (c === undefined) fail('UNSUPPORTED_OP', `${cx.where()}: per-group ${name} computed at run time is not supported`);
        const v = toNumbers(c);
        const out = new Float64Array(C);
        for (let ch = 0; ch < C; ch++) out[ch] = v[Math.floor(ch / per)]!;
        return cx.weight(`${n.name}_${name}`, fromNumbers(l.dtype, [C], out));
      };
      scale = rep(scale, n.inputs[1]!, 'scale');
      bias = rep(bias, n.inputs[2]!, 'bias');
    }
  }
  const y = cx.newValue(n.outputs[0]!);
  cx.kernel({ op: 'groupnorm', epsilon: n.attrs.epsilon }, [
    {
      dims: [N, groups, C / groups, spatial],
      inputs: [
        { ref: x.ref, dtype: x.dtype, strides: [C * spatial, (C / groups) * spatial, spatial, 1] },
        { ref: scale.ref, dtype: scale.dtype, strides: [1] },
        { ref: bias.ref, dtype: bias.dtype, strides: [1] },
      ],
      out: y.ref,
      outDType: y.dtype,
    },
  ]);
}

export function lowerPool(cx: TenantLowering, n: Extract<Node, { op: 'MaxPool' | 'AveragePool' }>): void {
  const where = cx.where();
  if (n.outputs.length > 1 && cx.used(n.outputs[1]!)) fail('UNSUPPORTED_OP', `${where}: MaxPool's Indices output is not supported`);
  const a: PoolAttrs = n.attrs;
  const x = cx.loc(n.inputs[0]!);
  const rank = x.shape.length - 2;
  if (rank < 1 || rank > 2) fail('UNSUPPORTED_OP', `${where}: only 1-D and 2-D pooling is supported`);
  const win = resolveWindow(a, x.shape.slice(2), a.kernelShape, a.ceilMode, where);
  const two = (v: readonly (number | string)[], d: number): [number, number] => (rank === 1 ? [d, v[0] as number] : [v[0] as number, v[1] as number]);
  const [h, w] = two(x.shape.slice(2), 1);
  const [kh, kw] = two(win.kernel, 1);
  const [sh, sw] = two(win.strides, 1);
  const [dh, dw] = two(win.dilations, 1);
  const [pt, pl] = two(win.padsBegin, 0);
  const [pb, pr] = two(win.padsEnd, 0);
  const [oh, ow] = two(win.outSpatial, 1);
  const countIncludePad = n.op === 'AveragePool' ? n.attrs.countIncludePad : false;
  const geom: PoolGeometry = { n: x.shape[0]!, c: x.shape[1]!, h, w, oh, ow, kh, kw, sh, sw, padTop: pt, padLeft: pl, padBottom: pb, padRight: pr, dh, dw };
  const y = cx.newValue(n.outputs[0]!);
  cx.kernel({ op: 'pool', mode: n.op === 'MaxPool' ? 'max' : 'avg', countIncludePad }, [
    { geom, inputs: [{ ref: x.ref, dtype: x.dtype, strides: contiguousStrides(x.shape) }], out: y.ref, outDType: y.dtype },
  ]);
}
