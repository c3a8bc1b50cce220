import type { DType } from '../../ir/dtype.js';
import { fail } from '../../ir/errors.js';
import type { ValueId } from '../../ir/graph.js';
import type { RawAttr } from '../../ir/op.js';
import { normalizeAxis } from '../../ir/shape.js';
import { type Tensor, type TensorType, fromNumbers, toNumbers } from '../../ir/tensor.js';
import { i64Tensor } from './tensor.js';

// Older-opset attribute forms → the modern input forms the IR ops implement (the IR follows the newest
// opset). Each rewrite moves attribute values into new constant inputs and drops the attribute.
//
// | op                              | opsets  | old form                          | becomes                                     |
// |---------------------------------|---------|-----------------------------------|---------------------------------------------|
// | Slice                           | < 10    | starts, ends, axes attrs          | inputs starts, ends, axes (i64)             |
// | Squeeze, Unsqueeze              | < 13    | axes attr                         | input axes (i64)                            |
// | Split                           | < 13    | split attr                        | input split (i64)                           |
// | Split                           | >= 18   | num_outputs attr                  | input split (i64) when the dim is known,    |
// |                                 |         |                                   | else the equal split of the 13 form         |
// | ReduceSum                       | < 13    | axes attr                         | input axes (i64)                            |
// | ReduceMean/Max/Min/Prod/L1/L2/  | < 18    | axes attr                         | input axes (i64)                            |
// |   SumSquare/LogSum/LogSumExp    |         |                                   |                                             |
// | Clip                            | < 11    | min, max attrs                    | inputs min, max (scalars of X's dtype)      |
// | Pad                             | < 11    | pads, value attrs                 | inputs pads (i64), constant_value           |
// | Dropout                         | < 12    | ratio, is_test attrs              | input ratio (f32 scalar)                    |
// | TopK                            | < 10    | k attr                            | input K (i64 [1])                           |
// | Upsample                        | 9       | op Upsample(X, scales), mode      | Resize(X, -, scales), see below             |
// | Resize                          | 10      | Resize(X, scales), mode           | Resize(X, -, scales), see below             |
// | BatchNormalization              | any     | spatial, is_test, consumed_inputs | dropped (spatial=0 is refused)              |
// | Scatter                         | < 11    | op Scatter                        | ScatterElements (same semantics)            |
//
// Upsample and Resize-10 map output to input coordinates as x / scale ("asymmetric"). onnxruntime rounds
// nearest with its "simple" rule there: floor when upsampling, ceil when downsampling; that becomes
// nearest_mode floor/ceil, and a mix of up- and downsampled axes is refused rather than approximated.

export interface NodeForm {
  readonly op: string;
  readonly inputs: ReadonlyArray<ValueId | null>;
  readonly attrs: ReadonlyMap<string, RawAttr>;
  readonly opset: number; // the opset whose form this is; handed to the op's attribute reader
  readonly outputs: number; // how many outputs the node has
}

export interface LegacyContext {
  readonly where: string; // "node 'x' (Op)"
  readonly name: string; // node name, the base of added constants' names
  typeOf(id: ValueId): TensorType;
  constantOf(id: ValueId): Tensor | undefined;
  addConstant(name: string, t: Tensor): ValueId;
}

// The op a node becomes, for checking support before anything is built.
export function modernOpName(op: string): string {
  if (op === 'Upsample') return 'Resize';
  if (op === 'Scatter') return 'ScatterElements';
  return op;
}

const REDUCE_OPS = new Set([
  'ReduceMean',
  'ReduceMax',
  'ReduceMin',
  'ReduceProd',
  'ReduceL1',
  'ReduceL2',
  'ReduceSumSquare',
  'ReduceLogSum',
  'ReduceLogSumExp',
]);

export function normalizeLegacy(node: NodeForm, ctx: LegacyContext): NodeForm {
  const { op, opset } = node;
  switch (op) {
    case 'Slice':
      return opset < 10 ? sliceFromAttrs(node, ctx) : node;
    case 'Squeeze':
    case 'Unsqueeze':
      return opset < 13 ? axesToInput(node, ctx, 13, op === 'Unsqueeze') : node;
    case 'ReduceSum':
      return opset < 13 ? axesToInput(node, ctx, 13, false) : node;
    case 'Split':
      if (opset < 13) return splitFromAttr(node, ctx);
      return opset >= 18 && node.attrs.has('num_outputs') ? splitFromNumOutputs(node, ctx) : node;
    case 'Clip':
      return opset < 11 ? clipFromAttrs(node, ctx) : node;
    case 'Pad':
      return opset < 11 ? padFromAttrs(node, ctx) : node;
    case 'Dropout':
      return opset < 12 ? dropoutFromAttrs(node, ctx) : node;
    case 'TopK':
      return opset < 10 ? topKFromAttr(node, ctx) : node;
    case 'Upsample':
      return resizeFromScales(node, ctx);
    case 'Resize':
      return opset < 11 ? resizeFromScales(node, ctx) : node;
    case 'BatchNormalization':
      return batchNormWithoutOldAttrs(node, ctx);
    case 'Scatter':
      return { ...node, op: 'ScatterElements', opset: Math.max(opset, 11) };
    default:
      return REDUCE_OPS.has(op) && opset < 18 ? axesToInput(node, ctx, 18, false) : node;
  }
}

function without(attrs: ReadonlyMap<string, RawAttr>, ...names: string[]): Map<string, RawAttr> {
  const m = new Map(attrs);
  for (const n of names) m.delete(n);
  return m;
}

function intsAttr(node: NodeForm, ctx: LegacyContext, name: string, required: boolean): readonly number[] | undefined {
  const a = node.attrs.get(name);
  if (a === undefined) {
    if (required) fail('MODEL_INVALID', `${ctx.where}: required attribute '${name}' is missing (opset ${node.opset})`);
    return undefined;
  }
  if (a.kind === 'ints') return a.value;
  if (a.kind === 'int') return [a.value];
  fail('MODEL_INVALID', `${ctx.where}: attribute '${name}' should be ints, got ${a.kind}`);
}

function floatAttr(node: NodeForm, ctx: LegacyContext, name: string): number | undefined {
  const a = node.attrs.get(name);
  if (a === undefined) return undefined;
  if (a.kind === 'float' || a.kind === 'int') return a.value;
  fail('MODEL_INVALID', `${ctx.where}: attribute '${name}' should be float, got ${a.kind}`);
}

function scalar(dtype: DType, v: number): Tensor {
  return fromNumbers(dtype, [], [v]);
}

function input(node: NodeForm, i: number): ValueId | null {
  return node.inputs[i] ?? null;
}

function requireX(node: NodeForm, ctx: LegacyContext): ValueId {
  const x = input(node, 0);
  if (x === null) fail('MODEL_INVALID', `${ctx.where}: input 0 is required`);
  return x;
}

function sliceFromAttrs(node: NodeForm, ctx: LegacyContext): NodeForm {
  const starts = intsAttr(node, ctx, 'starts', true)!;
  const ends = intsAttr(node, ctx, 'ends', true)!;
  const axes = intsAttr(node, ctx, 'axes', false);
  const ins: (ValueId | null)[] = [
    input(node, 0),
    ctx.addConstant(`${ctx.name}_starts`, i64Tensor(starts)),
    ctx.addConstant(`${ctx.name}_ends`, i64Tensor(ends)),
  ];
  if (axes) ins.push(ctx.addConstant(`${ctx.name}_axes`, i64Tensor(axes)));
  return { ...node, op: 'Slice', inputs: ins, attrs: without(node.attrs, 'starts', 'ends', 'axes'), opset: 10 };
}

function axesToInput(node: NodeForm, ctx: LegacyContext, formOpset: number, required: boolean): NodeForm {
  const axes = intsAttr(node, ctx, 'axes', required);
  const ins = [input(node, 0)];
  if (axes) ins.push(ctx.addConstant(`${ctx.name}_axes`, i64Tensor(axes)));
  return { ...node, op: node.op, inputs: ins, attrs: without(node.attrs, 'axes'), opset: Math.max(node.opset, formOpset) };
}

function splitFromAttr(node: NodeForm, ctx: LegacyContext): NodeForm {
  const split = intsAttr(node, ctx, 'split', false);
  const ins = [input(node, 0)];
  if (split && split.length > 0) ins.push(ctx.addConstant(`${ctx.name}_split`, i64Tensor(split)));
  return { ...node, op: 'Split', inputs: ins, attrs: without(node.attrs, 'split'), opset: 13 };
}

// Split-18 num_outputs: chunks of ceil(dim / n), the last one smaller.
function splitFromNumOutputs(node: NodeForm, ctx: LegacyContext): NodeForm {
  const n = intsAttr(node, ctx, 'num_outputs', true)![0]!;
  if (n !== node.outputs) fail('MODEL_INVALID', `${ctx.where}: num_outputs is ${n} but the node has ${node.outputs} outputs`);
  if (input(node, 1) !== null) fail('MODEL_INVALID', `${ctx.where}: has both a split input and num_outputs`);
  const x = ctx.typeOf(requireX(node, ctx));
  const axisAttr = node.attrs.get('axis');
  const axis = normalizeAxis(axisAttr?.kind === 'int' ? axisAttr.value : 0, x.shape.length, ctx.where);
  const dim = x.shape[axis]!;
  const attrs = without(node.attrs, 'num_outputs');
  if (typeof dim !== 'number') return { ...node, attrs, opset: 13 }; // equal split; uneven is an error there
  const chunk = Math.ceil(dim / n);
  const last = dim - chunk * (n - 1);
  if (last < 0) fail('SHAPE', `${ctx.where}: cannot split dim ${axis} of size ${dim} into ${n} outputs`);
  const sizes = Array.from({ length: n }, (_, i) => (i === n - 1 ? last : chunk));
  return { ...node, op: 'Split', inputs: [input(node, 0), ctx.addConstant(`${ctx.name}_split`, i64Tensor(sizes))], attrs, opset: 13 };
}

function clipFromAttrs(node: NodeForm, ctx: LegacyContext): NodeForm {
  const x = requireX(node, ctx);
  const dtype = ctx.typeOf(x).dtype;
  const min = floatAttr(node, ctx, 'min');
  const max = floatAttr(node, ctx, 'max');
  const ins = [
    x,
    min === undefined ? null : ctx.addConstant(`${ctx.name}_min`, scalar(dtype, min)),
    max === undefined ? null : ctx.addConstant(`${ctx.name}_max`, scalar(dtype, max)),
  ];
  return { ...node, op: 'Clip', inputs: ins, attrs: without(node.attrs, 'min', 'max'), opset: 11 };
}

function padFromAttrs(node: NodeForm, ctx: LegacyContext): NodeForm {
  const x = requireX(node, ctx);
  const pads = intsAttr(node, ctx, 'pads', false) ?? intsAttr(node, ctx, 'paddings', true)!;
  const value = floatAttr(node, ctx, 'value') ?? 0;
  const ins: (ValueId | null)[] = [x, ctx.addConstant(`${ctx.name}_pads`, i64Tensor(pads))];
  if (value !== 0) ins.push(ctx.addConstant(`${ctx.name}_value`, scalar(ctx.typeOf(x).dtype, value)));
  return { ...node, op: 'Pad', inputs: ins, attrs: without(node.attrs, 'pads', 'paddings', 'value'), opset: 11 };
}

function dropoutFromAttrs(node: NodeForm, ctx: LegacyContext): NodeForm {
  const ratio = floatAttr(node, ctx, 'ratio');
  const ins = [input(node, 0)];
  if (ratio !== undefined) ins.push(ctx.addConstant(`${ctx.name}_ratio`, scalar('f32', ratio)));
  return { ...node, op: 'Dropout', inputs: ins, attrs: without(node.attrs, 'ratio', 'is_test'), opset: 12 };
}

function topKFromAttr(node: NodeForm, ctx: LegacyContext): NodeForm {
  const k = intsAttr(node, ctx, 'k', true)!;
  const ins = [input(node, 0), ctx.addConstant(`${ctx.name}_k`, i64Tensor(k, [1]))];
  return { ...node, op: 'TopK', inputs: ins, attrs: without(node.attrs, 'k'), opset: 10 };
}

function resizeFromScales(node: NodeForm, ctx: LegacyContext): NodeForm {
  const x = requireX(node, ctx);
  const scalesId = input(node, 1);
  if (scalesId === null) fail('MODEL_INVALID', `${ctx.where}: input 1 (scales) is required`);
  const modeAttr = node.attrs.get('mode');
  const raw = modeAttr?.kind === 'string' ? modeAttr.value : 'nearest';
  const mode = raw === 'bilinear' ? 'linear' : raw;
  if (mode !== 'nearest' && mode !== 'linear') {
    fail('UNSUPPORTED_FEATURE', `${ctx.where}: attribute mode: '${raw}' is not supported (nearest, linear)`);
  }
  const attrs = new Map<string, RawAttr>([
    ['mode', { kind: 'string', value: mode }],
    ['coordinate_transformation_mode', { kind: 'string', value: 'asymmetric' }],
  ]);
  const scales = ctx.constantOf(scalesId);
  if (node.op === 'Upsample' && scales && toNumbers(scales).some((v) => !(v >= 1))) {
    fail('MODEL_INVALID', `${ctx.where}: Upsample scales must be >= 1, got [${Array.from(toNumbers(scales)).join(', ')}]`);
  }
  if (mode === 'nearest') attrs.set('nearest_mode', { kind: 'string', value: nearestRounding(scales, ctx) });
  return { ...node, op: 'Resize', inputs: [x, null, scalesId], attrs, opset: 11 };
}

function nearestRounding(scales: Tensor | undefined, ctx: LegacyContext): string {
  if (scales === undefined) {
    fail(
      'UNSUPPORTED_FEATURE',
      `${ctx.where}: nearest resizing with scales computed at run time is not supported in this opset (the rounding depends on the scales)`,
    );
  }
  const s = Array.from(toNumbers(scales));
  const up = s.some((v) => v > 1);
  const down = s.some((v) => v < 1);
  if (up && down)
    fail(
      'UNSUPPORTED_FEATURE',
      `${ctx.where}: nearest resizing that upsamples some axes and downsamples others (scales [${s.join(', ')}]) is not supported in this opset`,
    );
  return down ? 'ceil' : 'floor';
}

function batchNormWithoutOldAttrs(node: NodeForm, ctx: LegacyContext): NodeForm {
  const spatial = node.attrs.get('spatial');
  if (spatial?.kind === 'int' && spatial.value === 0) {
    fail('UNSUPPORTED_FEATURE', `${ctx.where}: attribute spatial: 0 (per-activation statistics) is not supported`);
  }
  if (!node.attrs.has('spatial') && !node.attrs.has('is_test') && !node.attrs.has('consumed_inputs')) return node;
  return { ...node, attrs: without(node.attrs, 'spatial', 'is_test', 'consumed_inputs') };
}
