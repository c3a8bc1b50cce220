import { fail, isLoomError } from '../errors.js';
import type { Graph, Node, ValueId } from '../graph.js';
import type { InferArg, InferResult } from '../op.js';
import { type AttrsOf, opDef } from '../ops/index.js';
import { type Dim, isStatic, numel, shapeToString, shapesEqual } from '../shape.js';
import { type Tensor, fromNumbers } from '../tensor.js';
import { isInteger } from '../dtype.js';
import { type ReplayContext, replayGraph } from './rewrite.js';

// Ops whose result is not a function of their inputs: never folded.
const NONDETERMINISTIC: ReadonlySet<string> = new Set(['RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Multinomial', 'Bernoulli']);

// Folding weight transforms (Transpose, Cast, scaling of a weight) is the point, so the cap is generous;
// results that grow past their inputs (ConstantOfShape, Expand, Tile) are kept as ops beyond a small size,
// where materializing them would only bloat the plan.
export const FOLD_MAX_ELEMENTS = 64 * 1024 * 1024;
export const FOLD_MAX_GROWN_ELEMENTS = 1024 * 1024;

// Evaluates every node whose inputs are all constants, and turns every integer output whose contents
// shape inference knows exactly (Shape of a static tensor, Gather of a static dim, ...) into a constant,
// so shape sub-graphs collapse. A Reshape/Expand target that is known except for the batch symbol
// becomes a constant using ONNX's "copy this dim" encodings.
export function constantFold(g: Graph): Graph {
  return replayGraph(g, (n, ctx) => {
    if (NONDETERMINISTIC.has(n.op)) return false;
    const inputs = n.inputs.map((v) => ctx.mapOpt(v));
    const where = `node '${n.name}' (${n.op})`;
    const def = opDef(n.op);
    const args = inputs.map((v) => (v === null ? null : ctx.b.inferArg(v)));
    const results = def.infer(n.attrs as never, args, where, n.outputs.length);

    if (args.every((a) => a === null || a.value !== undefined) && foldable(args, results)) {
      const values = tryEvaluate(n, inputs, results, ctx, where);
      if (values !== undefined) {
        n.outputs.forEach((o, k) => ctx.alias(o, ctx.b.addConstant(ctx.old.value(o).name, values[k]!)));
        return true;
      }
    }

    const known = results.map(knownContents);
    if (known.every((t) => t !== undefined)) {
      n.outputs.forEach((o, k) => ctx.alias(o, ctx.b.addConstant(ctx.old.value(o).name, known[k]!)));
      return true;
    }

    ctx.emit(n, { inputs: staticTarget(n, inputs, ctx) ?? inputs });
    // a multi-output node with some outputs known: their users read constants, the node stays for the rest
    known.forEach((t, k) => {
      if (t !== undefined) ctx.alias(n.outputs[k]!, ctx.b.addConstant(`${ctx.old.value(n.outputs[k]!).name}_c`, t));
    });
    return true;
  });
}

function foldable(args: ReadonlyArray<InferArg | null>, results: readonly InferResult[]): boolean {
  let inputElems = 0;
  for (const a of args) if (a?.value !== undefined) inputElems += a.value.data.length;
  for (const r of results) {
    if (!isStatic(r.type.shape)) return false;
    const n = numel(r.type.shape);
    if (n > FOLD_MAX_ELEMENTS) return false;
    if (n > FOLD_MAX_GROWN_ELEMENTS && n > inputElems) return false;
  }
  return true;
}

function tryEvaluate(n: Node, inputs: ReadonlyArray<ValueId | null>, results: readonly InferResult[], ctx: ReplayContext, where: string): Tensor[] | undefined {
  const tensors = inputs.map((v) => (v === null ? null : ctx.constantOf(v)!));
  let out: Tensor[];
  try {
    out = opDef(n.op).evaluate(n.attrs as never, tensors, where, n.outputs.length);
  } catch (e) {
    // A form the reference evaluator lacks stays an op for the backends; real errors surface.
    if (isLoomError(e) && e.code === 'UNSUPPORTED_FEATURE') return undefined;
    throw e;
  }
  n.outputs.forEach((o, k) => {
    const want = ctx.old.value(o).type;
    const got = out[k];
    if (got === undefined || got.dtype !== want.dtype || !shapesEqual(got.shape, results[k]!.type.shape)) {
      fail(
        'VERIFY',
        `${where}: folding output ${k} gave ${got ? `${got.dtype}${shapeToString(got.shape)}` : 'nothing'}, its shape rule says ${want.dtype}${shapeToString(results[k]!.type.shape)}`,
      );
    }
  });
  return out;
}

// The exact contents of an integer output, when inference knows every element as a number.
function knownContents(r: InferResult): Tensor | undefined {
  const { dims, type } = r;
  if (dims === undefined || !isInteger(type.dtype) || !isStatic(type.shape)) return undefined;
  if (type.shape.length > 1 || numel(type.shape) !== dims.length) return undefined;
  if (!dims.every((d): d is number => typeof d === 'number')) return undefined;
  return fromNumbers(type.dtype, type.shape, dims);
}

// Reshape/Expand whose target is computed at run time but known up to one symbolic dim that the
// data input carries at the matching position: encode that dim as "copy" (Reshape 0, Expand 1), so
// the target is a constant and the shape sub-graph feeding it dies. The output type must not change.
function staticTarget(n: Node, inputs: ReadonlyArray<ValueId | null>, ctx: ReplayContext): Array<ValueId | null> | undefined {
  if (n.op !== 'Reshape' && n.op !== 'Expand') return undefined;
  const data = inputs[0];
  const shape = inputs[1];
  if (data == null || shape == null || ctx.constantOf(shape) !== undefined) return undefined;
  const dims = ctx.dimsOf(shape);
  const shapeType = ctx.b.value(shape).type;
  if (dims === undefined || shapeType.shape.length !== 1 || shapeType.shape[0] !== dims.length) return undefined;
  const inShape = ctx.b.value(data).type.shape;
  const target = n.op === 'Reshape' ? reshapeTarget(dims, inShape, n.attrs as AttrsOf<'Reshape'>) : expandTarget(dims, inShape);
  if (target === undefined) return undefined;
  const where = `node '${n.name}' (${n.op})`;
  const c = ctx.b.addConstant(`${n.name}_shape`, fromNumbers(shapeType.dtype, [target.length], target));
  const before = opDef(n.op).infer(n.attrs as never, [ctx.b.inferArg(data), ctx.b.inferArg(shape)], where, 1)[0]!;
  const after = opDef(n.op).infer(n.attrs as never, [ctx.b.inferArg(data), ctx.b.inferArg(c)], where, 1)[0]!;
  if (!shapesEqual(before.type.shape, after.type.shape)) return undefined;
  return [data, c];
}

function reshapeTarget(dims: readonly Dim[], inShape: readonly Dim[], attrs: AttrsOf<'Reshape'>): number[] | undefined {
  const allowZero = (attrs as { allowzero?: number | boolean }).allowzero;
  const out: number[] = [];
  let symbolic = 0;
  for (let i = 0; i < dims.length; i++) {
    const d = dims[i]!;
    if (typeof d === 'number') {
      out.push(d);
      continue;
    }
    symbolic++;
    if (!allowZero && inShape[i] === d) out.push(0);
    else out.push(-1);
  }
  if (symbolic === 0 || out.filter((d) => d === -1).length > 1) return undefined;
  return out;
}

function expandTarget(dims: readonly Dim[], inShape: readonly Dim[]): number[] | undefined {
  const off = dims.length - inShape.length;
  const out: number[] = [];
  for (let i = 0; i < dims.length; i++) {
    const d = dims[i]!;
    if (typeof d === 'number') out.push(d);
    else if (i - off >= 0 && inShape[i - off] === d) out.push(1);
    else return undefined;
  }
  return out;
}
