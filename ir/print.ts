import { fail } from './errors.js';
import { genericNodes } from './generic-node.js';
import type { Graph, Value, ValueId } from './graph.js';
import type { Tensor } from './tensor.js';
import { formatAttrFields, formatDim, formatElements, formatName, formatType, hexOf, sameBytes, shortHash, tensorFromElements } from './text-format.js';

// The text form of a graph, deterministic (same graph → byte-identical text), e.g.
//   graph mlp (symbols: N)
//     input %x: f32[N,784]
//     const %w1: f32[512,784] = <401408 values, sha 1a2b3c4d>
//     const %b1: f32[2] = [0.5, -1]
//     %h1: f32[N,512] = Gemm(%x, %w1, %b1) {alpha=1, beta=1, transA=false, transB=true}  # gemm1
//     output %h1
// `_` is an omitted optional input; the trailing `# name` of a node line is the node's name (ir/parse.ts
// reads it back). Constants print inline up to INLINE_LIMIT elements; larger ones print as a hash
// unless `fullConstants`, which prints their raw little-endian bytes as hex so the text parses back exactly,
// or `blobs`, which collects them into that array and prints `blob <index>` (a binary side file holds the
// bytes: the tenant cache, src/cache/); parseGraph's `blobs` option reads them back.

export interface PrintOptions {
  readonly fullConstants?: boolean;
  readonly blobs?: Tensor[]; // filled by printGraph, in the order the `blob <index>` references count
}

export const INLINE_LIMIT = 16;

export function printGraph(g: Graph, opts: PrintOptions = {}): string {
  const value = (id: ValueId | null, where: string): Value => {
    const v = id === null ? undefined : g.values.get(id);
    if (v === undefined) fail('VERIFY', `${where}: value #${String(id)} is not defined in graph '${g.name}'`);
    return v;
  };
  const ref = (v: Value): string => `%${formatName(v.name)}`;
  const decl = (v: Value): string => `${ref(v)}: ${formatType(v.type)}`;

  const lines: string[] = [];
  const symbols = g.symbols.length > 0 ? ` (symbols: ${g.symbols.map(formatDim).join(', ')})` : '';
  lines.push(`graph ${formatName(g.name)}${symbols}`);
  for (const id of g.inputs) lines.push(`  input ${decl(value(id, 'graph input'))}`);
  for (const [id, t] of g.constants) {
    const v = value(id, 'constant');
    lines.push(`  const ${decl(v)} = ${formatConstant(t, opts.fullConstants === true, opts.blobs)}`);
  }
  for (const node of genericNodes(g)) {
    const where = `node '${node.name}' (${node.op})`;
    const outs = node.outputs.map((o) => decl(value(o, where))).join(', ');
    const args = node.inputs.map((i) => (i === null ? '_' : ref(value(i, where)))).join(', ');
    const fields = formatAttrFields(node.attrs as Record<string, unknown>, '=', where);
    const attrs = fields === '' ? '' : ` {${fields}}`;
    lines.push(`  ${outs} = ${node.op}(${args})${attrs}  # ${formatName(node.name)}`);
  }
  for (const id of g.outputs) lines.push(`  output ${ref(value(id, 'graph output'))}`);
  return `${lines.join('\n')}\n`;
}

function formatConstant(t: Tensor, full: boolean, blobs: Tensor[] | undefined): string {
  if (t.data.length <= INLINE_LIMIT) {
    const elems = formatElements(t);
    // Rare bit patterns (NaN payloads) have no decimal spelling; those fall through to hex.
    if (sameBytes(tensorFromElements(t.dtype, t.shape, elems, 'constant'), t)) return `[${elems.join(', ')}]`;
  }
  if (blobs !== undefined) return `blob ${blobs.push(t) - 1}`;
  return full ? `hex"${hexOf(t)}"` : `<${t.data.length} values, sha ${shortHash(t)}>`;
}
