import { GraphBuilder } from './builder.js';
import { fail, isLoomError } from './errors.js';
import type { Graph, ValueId } from './graph.js';
import { type AttrsOf, type OpName, isOpName } from './ops/index.js';
import { type Dim, isStatic, shapeToString, shapesEqual, splitSymbolic } from './shape.js';
import type { Tensor, TensorType } from './tensor.js';
import { Scanner, formatType, tensorFromElements, tensorFromHex } from './text-format.js';

// Reads the text form written by ir/print.ts back into a Graph. The graph is rebuilt through
// GraphBuilder, so every node's output types are re-inferred and must equal the printed ones.
// Every error is MODEL_INVALID and starts with "line L:C:".

export interface ParseOptions {
  readonly blobs?: readonly Tensor[]; // the data of `blob <index>` constants (PrintOptions.blobs)
}

export function parseGraph(text: string, opts: ParseOptions = {}): Graph {
  const lines = text.split(/\r?\n/);
  let b: GraphBuilder | undefined;
  let symbols: string[] = [];
  const defined = new Map<string, ValueId>();
  const nodeNames = new Set<string>();
  const outputs: ValueId[] = [];

  for (let i = 0; i < lines.length; i++) {
    const s: Scanner = new Scanner(lines[i]!, i + 1);
    if (s.atEnd() || s.peek() === '#') continue;
    if (b === undefined) {
      const at = s.pos;
      if (s.ident('graph') !== 'graph') s.error("expected 'graph NAME' as the first line", at);
      const name = s.name('a graph name');
      if (s.accept('(')) {
        s.expect('symbols');
        s.expect(':');
        symbols = [];
        do symbols.push(String(s.dim()));
        while (s.accept(','));
        s.expect(')', "',' or ')'");
      }
      endOfLine(s);
      b = new GraphBuilder(name);
      continue;
    }
    const builder = b;

    const declare = (): { name: string; type: TensorType; at: number } => {
      s.skipWs();
      const at = s.pos;
      const name = s.valueRef();
      if (defined.has(name)) s.error(`value %${name} is defined twice`, at);
      s.expect(':');
      s.skipWs();
      const typeAt = s.pos;
      const type = s.type();
      for (const d of type.shape) {
        if (typeof d === 'string' && !symbols.includes(splitSymbolic(d).sym)) s.error(`symbol '${d}' is not declared in the graph header`, typeAt);
      }
      return { name, type, at };
    };
    const use = (): ValueId => {
      s.skipWs();
      const at = s.pos;
      const name = s.valueRef();
      return defined.get(name) ?? s.error(`value %${name} is used before it is defined`, at);
    };

    if (s.peek() === '%') {
      parseNode(s, builder, declare, use, defined, nodeNames);
      continue;
    }
    const at = s.pos;
    const kw = s.ident('input, const, output or %value');
    switch (kw) {
      case 'input': {
        const d = declare();
        defined.set(d.name, builder.addInput(d.name, d.type));
        break;
      }
      case 'const': {
        const d = declare();
        s.expect('=');
        const shape = d.type.shape;
        if (!isStatic(shape)) s.error(`constant %${d.name} has a symbolic shape ${shapeToString(shape)}`, d.at);
        const where = `line ${s.line}:${s.pos + 1}: constant %${d.name}`;
        let t;
        if (s.accept('[')) {
          const elems: string[] = [];
          if (!s.accept(']')) {
            do elems.push(s.peek() === 't' || s.peek() === 'f' ? s.ident('a value') : s.numberToken());
            while (s.accept(','));
            s.expect(']', "',' or ']'");
          }
          t = tensorFromElements(d.type.dtype, shape, elems, where);
        } else if (s.startsWith('hex"')) {
          t = tensorFromHex(d.type.dtype, shape, s.hexString(), where);
        } else if (s.accept('blob')) {
          t = blobConstant(s, d.type, opts.blobs, `constant %${d.name}`);
        } else if (s.peek() === '<') {
          s.error(`the data of constant %${d.name} was left out when printing; print with { fullConstants: true } to parse it back`);
        } else {
          s.error(`expected constant data ([...] or hex"..."), found ${s.describeHere()}`);
        }
        defined.set(d.name, builder.addConstant(d.name, t));
        break;
      }
      case 'output':
        outputs.push(use());
        break;
      default:
        s.error(`expected input, const, output or %value, found '${kw}'`, at);
    }
    endOfLine(s);
  }
  if (b === undefined) fail('MODEL_INVALID', "line 1:1: expected 'graph NAME'");
  b.setOutputs(outputs);
  return b.build(symbols);
}

// `blob <index>`: the tensor must have exactly the declared dtype and shape.
function blobConstant(s: Scanner, type: TensorType, blobs: readonly Tensor[] | undefined, what: string): Tensor {
  const at = s.pos;
  const token = s.numberToken();
  const index = Number(token);
  if (blobs === undefined) s.error(`${what} refers to blob ${token}, but no blobs were given to parse it with`, at);
  if (!Number.isInteger(index) || index < 0 || index >= blobs.length) s.error(`${what}: blob ${token} is not one of the ${blobs.length} blobs given`, at);
  const t = blobs[index]!;
  if (t.dtype !== type.dtype || !shapesEqual(t.shape, type.shape as readonly Dim[]))
    s.error(`${what} is declared ${formatType(type)} but blob ${index} is ${formatType({ dtype: t.dtype, shape: t.shape })}`, at);
  return t;
}

function endOfLine(s: Scanner): void {
  if (!s.atEnd()) s.error(`unexpected ${s.describeHere()}`);
}

function parseNode(
  s: Scanner,
  b: GraphBuilder,
  declare: () => { name: string; type: TensorType; at: number },
  use: () => ValueId,
  defined: Map<string, ValueId>,
  nodeNames: Set<string>,
): void {
  const outs: { name: string; type: TensorType; at: number }[] = [];
  do {
    const d = declare();
    if (outs.some((o) => o.name === d.name)) s.error(`value %${d.name} is defined twice`, d.at);
    outs.push(d);
  } while (s.accept(','));
  s.expect('=');
  s.skipWs();
  const opAt = s.pos;
  const op = s.ident('an op name');
  if (!isOpName(op)) s.error(`unknown op '${op}'`, opAt);
  s.expect('(');
  const inputs: (ValueId | null)[] = [];
  if (!s.accept(')')) {
    do inputs.push(s.accept('_') ? null : use());
    while (s.accept(','));
    s.expect(')', "',' or ')'");
  }
  const attrs = s.accept('{') ? s.attrFields('=', '}') : {};
  let nodeName = '';
  if (s.accept('#')) {
    s.skipWs();
    const at = s.pos;
    nodeName = s.name('a node name');
    if (nodeNames.has(nodeName)) s.error(`node name '${nodeName}' is used twice`, at);
    nodeNames.add(nodeName);
  }
  endOfLine(s);

  let ids: ValueId[];
  try {
    ids = b.addNode(
      op as OpName,
      nodeName,
      inputs,
      attrs as AttrsOf<OpName>,
      outs.map((o) => o.name),
    );
  } catch (e) {
    s.error(isLoomError(e) ? e.message : `${op}: ${String(e)}`, opAt);
  }
  ids.forEach((id, k) => {
    const o = outs[k]!;
    const got = b.value(id).type;
    if (got.dtype !== o.type.dtype || !shapesEqual(got.shape, o.type.shape as readonly Dim[])) {
      s.error(`%${o.name} is declared ${formatType(o.type)} but ${op}'s shape rule gives ${formatType(got)}`, o.at);
    }
    defined.set(o.name, id);
  });
}
