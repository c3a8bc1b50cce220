// Data movement → views, copies and gathers. Ops that move elements by compile-time positions (Transpose,
// Slice, Expand, Tile, Pad, DepthToSpace, GatherElements/GatherND with constant indices, Resize nearest, ...)
// are evaluated once on an "iota" tensor (element i holds i + 1): the result says where every output
// element comes from. An affine map becomes a strided copy (or a free view); anything else a gather_table.
import type { DType } from '../../ir/dtype.js';
import { fail } from '../../ir/errors.js';
import type { Node } from '../../ir/graph.js';
import { opDef } from '../../ir/ops/index.js';
import { checkComputedTensor } from '../../ir/limits.js';
import { normalizeAxis, numel, shapeToString } from '../../ir/shape.js';
import { type Tensor, fromNumbers, makeTensor, toNumbers } from '../../ir/tensor.js';
import type { Loc, TenantLowering } from './lower-context.js';
import type { DraftSegment } from './steps.js';
import { contiguousStrides } from './steps.js';

export const VIEW_OPS = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Dropout']);
export const INDEX_MAP_OPS = new Set([
  'Transpose',
  'Slice',
  'Expand',
  'Tile',
  'Pad',
  'DepthToSpace',
  'SpaceToDepth',
  'Trilu',
  'GatherElements',
  'GatherND',
  'Resize',
  'Split',
]);

export function lowerView(cx: TenantLowering, n: Node): void {
  if (n.op === 'Dropout' && n.outputs.length > 1 && cx.used(n.outputs[1]!)) {
    fail('UNSUPPORTED_OP', `${cx.where()}: Dropout's mask output is not supported`);
  }
  const x = cx.loc(n.inputs[0]!);
  const v = n.outputs[0]!;
  cx.setLoc(v, cx.view(x, cx.shapeOf(v)));
}

// Evaluates the node with its runtime data input (input 0) replaced by an iota tensor; returns per output
// the source element index of every output element (-1: no source, the value is 0).
function indexMaps(cx: TenantLowering, n: Node): Int32Array[] {
  const where = cx.where();
  const data = n.inputs[0]!;
  const dt = cx.dtypeOf(data);
  const shape = cx.shapeOf(data);
  const count = numel(shape);
  let iotaType: DType;
  if (dt === 'f32' || dt === 'f64') iotaType = dt;
  else if (dt === 'i64' || dt === 'i32') iotaType = dt;
  else if (dt === 'f16' || dt === 'bf16' || dt === 'bool' || dt === 'u8' || dt === 'i8') iotaType = 'f32';
  else iotaType = 'f32';
  if (iotaType === 'f32' && count + 1 >= 1 << 24) fail('UNSUPPORTED_FEATURE', `${where}: tensor of ${count} elements is too large to plan as an index map`);
  // the result is computed here, element by element (f64, then an int32 table): estimate it first
  n.outputs.forEach((o, k) =>
    checkComputedTensor(cx.limits, `${where}: index map of output ${k} '${cx.g.values.get(o)!.name}' ${shapeToString(cx.shapeOf(o))}`, cx.shapeOf(o), 'f64'),
  );
  const iota = new Float64Array(count);
  for (let i = 0; i < count; i++) iota[i] = i + 1;
  const inputs: Array<Tensor | null> = n.inputs.map((v, i) => {
    if (v === null) return null;
    if (i === 0) return fromNumbers(iotaType, shape, iota);
    const c = cx.constantOf(v);
    if (c === undefined) fail('UNSUPPORTED_OP', `${where}: input ${i} must be a compile-time constant for the planner`);
    // Pad's constant value: 0 so padded positions read "no source"
    if (n.op === 'Pad' && i === 2) return fromNumbers(iotaType, c.shape, new Float64Array(c.data.length));
    return c.dtype === dt && dt !== iotaType ? fromNumbers(iotaType, c.shape, toNumbers(c)) : c;
  });
  const outs = opDef(n.op).evaluate(n.attrs as never, inputs, where, n.outputs.length);
  return outs.map((t) => {
    const v = toNumbers(t);
    const table = new Int32Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const s = v[i]! - 1;
      if (!Number.isInteger(s)) fail('UNSUPPORTED_OP', `${where}: output is not a rearrangement of the input (interpolating Resize is not supported yet)`);
      table[i] = s;
    }
    return table;
  });
}

// The affine form of an index map: table[i] = base + Σ idx_d * strides[d], or undefined.
function affineOf(table: Int32Array, shape: readonly number[]): { base: number; strides: number[] } | undefined {
  const n = table.length;
  if (n === 0) return { base: 0, strides: shape.map(() => 0) };
  const cs = contiguousStrides(shape);
  const base = table[0]!;
  if (base < 0) return undefined;
  const strides = shape.map((d, i) => (d > 1 ? table[cs[i]!]! - base : 0));
  const r = shape.length;
  const idx = new Array<number>(r).fill(0);
  let off = base;
  for (let i = 0; i < n; i++) {
    if (table[i] !== off || off < 0) return undefined;
    for (let d = r - 1; d >= 0; d--) {
      idx[d]!++;
      off += strides[d]!;
      if (idx[d]! < shape[d]!) break;
      off -= strides[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
  return { base, strides };
}

export function lowerIndexMap(cx: TenantLowering, n: Node): void {
  if (n.op === 'Resize' && (n.attrs as { mode: string }).mode !== 'nearest') {
    fail('UNSUPPORTED_OP', `${cx.where()}: Resize mode '${(n.attrs as { mode: string }).mode}' is not supported by the planner yet`);
  }
  const x = cx.loc(n.inputs[0]!);
  const tables = indexMaps(cx, n);
  const padValue = n.op === 'Pad' && n.inputs[2] != null ? (toNumbers(cx.constantOf(n.inputs[2])!)[0] ?? 0) : 0;
  const copies: DraftSegment[] = [];
  n.outputs.forEach((o, k) => {
    const shape = cx.shapeOf(o);
    const table = tables[k]!;
    const aff = padValue === 0 ? affineOf(table, shape) : undefined;
    if (aff) {
      const cs = contiguousStrides(shape);
      if (shape.every((d, i) => d <= 1 || aff.strides[i] === cs[i])) {
        cx.setLoc(o, cx.view(x, shape, aff.base)); // a contiguous window: free
        return;
      }
      const y = cx.newValue(o);
      copies.push({
        shape,
        inputs: [{ ref: cx.view(x, [], aff.base).ref, dtype: x.dtype, strides: aff.strides }],
        out: y.ref,
        outDType: x.dtype,
        outStrides: cs,
      });
      return;
    }
    const y = cx.newValue(o);
    const t = cx.weight(`${n.name}_table${k}`, makeTensor('i32', [table.length], table));
    cx.kernel({ op: 'gather_table' }, [
      {
        count: table.length,
        inputs: [
          { ref: x.ref, dtype: x.dtype, strides: [1] },
          { ref: t.ref, dtype: 'i32', strides: [1] },
        ],
        out: y.ref,
        outDType: x.dtype,
      },
    ]);
    if (padValue !== 0) {
      // padded positions read 0 from the table; add the pad value there
      const mask = new Float64Array(table.length);
      for (let i = 0; i < table.length; i++) mask[i] = table[i]! < 0 ? padValue : 0;
      const m = cx.weight(`${n.name}_pad`, fromNumbers(x.dtype, [table.length], mask));
      const z = cx.temp(`${n.name}_padded`, x.dtype, shape);
      cx.kernel({ op: 'eltwise', program: [{ op: 'in', i: 0 }, { op: 'in', i: 1 }, { op: 'add' }], computeF32: x.dtype === 'f32' }, [
        {
          shape: [table.length],
          inputs: [
            { ref: y.ref, dtype: x.dtype, strides: [1] },
            { ref: m.ref, dtype: x.dtype, strides: [1] },
          ],
          out: z.ref,
          outDType: x.dtype,
        },
      ]);
      cx.setLoc(o, z);
    }
  });
  cx.kernel({ op: 'copy' }, copies);
}

export function lowerConcat(cx: TenantLowering, n: Extract<Node, { op: 'Concat' }>): void {
  const v = n.outputs[0]!;
  const shape = cx.shapeOf(v);
  const axis = normalizeAxis(n.attrs.axis, shape.length, cx.where());
  const y = cx.newValue(v);
  const cs = contiguousStrides(shape);
  const segs: DraftSegment[] = [];
  let off = 0;
  for (const i of n.inputs) {
    const x = cx.loc(i!);
    if (numel(x.shape) > 0) {
      segs.push({
        shape: x.shape,
        inputs: [{ ref: x.ref, dtype: x.dtype, strides: contiguousStrides(x.shape) }],
        out: cx.view(y, [], off * cs[axis]!).ref,
        outDType: x.dtype,
        outStrides: cs,
      });
    }
    off += x.shape[axis]!;
  }
  cx.kernel({ op: 'copy' }, segs);
}

export function lowerGather(cx: TenantLowering, n: Extract<Node, { op: 'Gather' }>): void {
  const data = cx.loc(n.inputs[0]!);
  const idxId = n.inputs[1]!;
  const idx = cx.loc(idxId);
  const axis = normalizeAxis(n.attrs.axis, data.shape.length, cx.where());
  const y = cx.newValue(n.outputs[0]!);
  const outer = numel(data.shape.slice(0, axis));
  const inner = numel(data.shape.slice(axis + 1));
  const nIdx = numel(idx.shape);
  if (idx.dtype !== 'i64' && idx.dtype !== 'i32') fail('UNSUPPORTED_FEATURE', `${cx.where()}: indices must be i64 or i32`);
  cx.kernel({ op: 'gather' }, [
    {
      dims: [outer, data.shape[axis]!, inner, nIdx],
      inputs: [
        { ref: data.ref, dtype: data.dtype, strides: [1] },
        { ref: idx.ref, dtype: idx.dtype, strides: [1] },
      ],
      out: y.ref,
      outDType: data.dtype,
    },
  ]);
}

export function lowerConstantOfShape(cx: TenantLowering, n: Node): void {
  const v = n.outputs[0]!;
  const x = (n.attrs as { value: number }).value;
  const y = cx.newValue(v);
  cx.kernel({ op: 'fill', value: x }, [{ count: numel(y.shape), inputs: [], out: y.ref, outDType: y.dtype }]);
}

// A graph output that is not computed straight into its io slot: copied there.
export function copyInto(cx: TenantLowering, from: Loc, to: Loc): void {
  const shape = from.shape.length ? [numel(from.shape)] : [1];
  cx.kernel({ op: 'copy' }, [{ shape, inputs: [{ ref: from.ref, dtype: from.dtype, strides: [1] }], out: to.ref, outDType: to.dtype, outStrides: [1] }]);
}
