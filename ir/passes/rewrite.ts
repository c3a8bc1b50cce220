import { GraphBuilder } from '../builder.js';
import { fail } from '../errors.js';
import type { Graph, Node, NodeId, Value, ValueId } from '../graph.js';
import type { AttrsOf, OpName } from '../ops/index.js';
import type { Dim } from '../shape.js';
import type { Tensor } from '../tensor.js';

// The one replay loop every pass uses: walk the old graph in order, copy each node into a fresh
// GraphBuilder (so shape inference re-runs on rewritten inputs), and let the pass replace nodes on
// the way. The input graph is never mutated.

// Old-graph facts a rewriter looks at: who produces and who consumes each value.
export interface GraphIndex {
  readonly graph: Graph;
  producer(v: ValueId): Node | undefined;
  consumers(v: ValueId): readonly Node[]; // one entry per use (a node using v twice appears twice)
  isGraphOutput(v: ValueId): boolean;
  constant(v: ValueId): Tensor | undefined;
  value(v: ValueId): Value;
  // The only consumer of v, when v has exactly one use and is not a graph output (safe to fuse away).
  soleConsumer(v: ValueId): Node | undefined;
}

export function indexGraph(g: Graph): GraphIndex {
  const producers = new Map<ValueId, Node>();
  const users = new Map<ValueId, Node[]>();
  for (const n of g.nodes) {
    for (const o of n.outputs) producers.set(o, n);
    for (const i of n.inputs) {
      if (i === null) continue;
      let list = users.get(i);
      if (list === undefined) users.set(i, (list = []));
      list.push(n);
    }
  }
  const outputs = new Set(g.outputs);
  const index: GraphIndex = {
    graph: g,
    producer: (v) => producers.get(v),
    consumers: (v) => users.get(v) ?? [],
    isGraphOutput: (v) => outputs.has(v),
    constant: (v) => g.constants.get(v),
    value: (v) => {
      const val = g.values.get(v);
      if (val === undefined) fail('VERIFY', `value #${v} is not defined in graph '${g.name}'`);
      return val;
    },
    soleConsumer: (v) => {
      if (outputs.has(v)) return undefined;
      const u = users.get(v);
      return u !== undefined && u.length === 1 ? u[0] : undefined;
    },
  };
  return index;
}

// What a rewriter can do while the new graph is being built.
export interface ReplayContext {
  readonly old: GraphIndex;
  readonly b: GraphBuilder;
  // New id for an old value (copying an old constant on first use).
  map(v: ValueId): ValueId;
  mapOpt(v: ValueId | null): ValueId | null;
  // The new graph's view of a (new) value.
  constantOf(newId: ValueId): Tensor | undefined;
  dimsOf(newId: ValueId): readonly Dim[] | undefined;
  // Copy an old node with its inputs mapped; inputs/attrs may be overridden. Keeps output names.
  emit(n: Node, override?: { inputs?: ReadonlyArray<ValueId | null>; attrs?: unknown; outputNames?: readonly string[] }): ValueId[];
  // Add a node of the new graph directly (inputs are new ids).
  add<K extends OpName>(op: K, name: string, inputs: ReadonlyArray<ValueId | null>, attrs: AttrsOf<K>, outputNames: readonly string[]): ValueId[];
  // Say that old value `v` is now computed by new value `to` (the old producer is dropped or replaced).
  alias(v: ValueId, to: ValueId): void;
  // Drop a later old node: its outputs must have been aliased already (a fused consumer).
  skip(n: Node): void;
}

// Returns true when it handled the node (emitted a replacement, aliased its outputs or dropped it);
// false to copy the node unchanged.
export type NodeRewriter = (n: Node, ctx: ReplayContext) => boolean;

export function replayGraph(g: Graph, rewrite: NodeRewriter): Graph {
  const old = indexGraph(g);
  const b = new GraphBuilder(g.name);
  const mapping = new Map<ValueId, ValueId>();
  const skipped = new Set<NodeId>();

  for (const i of g.inputs) mapping.set(i, b.addInput(old.value(i).name, old.value(i).type));

  const map = (v: ValueId): ValueId => {
    const m = mapping.get(v);
    if (m !== undefined) return m;
    const c = g.constants.get(v);
    if (c === undefined) fail('VERIFY', `graph '${g.name}': value '${old.value(v).name}' is used before it is defined`);
    const id = b.addConstant(old.value(v).name, c);
    mapping.set(v, id);
    return id;
  };
  const ctx: ReplayContext = {
    old,
    b,
    map,
    mapOpt: (v) => (v === null ? null : map(v)),
    constantOf: (id) => b.constantOf(id),
    dimsOf: (id) => b.dimsOf(id),
    emit: (n, override) => {
      const inputs = override?.inputs ?? n.inputs.map((v) => (v === null ? null : map(v)));
      const names = override?.outputNames ?? n.outputs.map((o) => old.value(o).name);
      const outs = b.addNode(n.op, n.name, inputs, (override?.attrs ?? n.attrs) as AttrsOf<typeof n.op>, names);
      if (override?.outputNames === undefined) n.outputs.forEach((o, k) => mapping.set(o, outs[k]!));
      return outs;
    },
    add: (op, name, inputs, attrs, outputNames) => b.addNode(op, name, inputs, attrs, outputNames),
    alias: (v, to) => {
      mapping.set(v, to);
    },
    skip: (n) => {
      skipped.add(n.id);
    },
  };

  for (const n of g.nodes) {
    if (skipped.has(n.id)) {
      for (const o of n.outputs) {
        if (!mapping.has(o) && (old.isGraphOutput(o) || old.consumers(o).some((c) => !skipped.has(c.id)))) {
          fail('VERIFY', `pass dropped node '${n.name}' (${n.op}) but its output '${old.value(o).name}' is still used`);
        }
      }
      continue;
    }
    if (!rewrite(n, ctx)) ctx.emit(n);
  }
  return finishOutputs(g, ctx);
}

// Graph outputs keep their names (and inputs theirs): when a rewrite made an output come from a value
// with another name, rename that value; when it cannot (the value is a graph input or already another
// output), a copy through Identity carries the name.
function finishOutputs(g: Graph, ctx: ReplayContext): Graph {
  const { b, old } = ctx;
  const inputs = new Set(g.inputs.map((i) => ctx.map(i)));
  const claimed = new Set<ValueId>();
  const renames = new Map<ValueId, string>();
  const outs: ValueId[] = [];
  for (const o of g.outputs) {
    const want = old.value(o).name;
    let v = ctx.map(o);
    if (b.value(v).name !== want) {
      if (inputs.has(v) || claimed.has(v)) {
        v = b.addNode('Identity', `${want}_copy`, [v], {} as AttrsOf<'Identity'>, [want])[0]!;
        if (b.value(v).name !== want) renames.set(v, want);
      } else {
        renames.set(v, want);
      }
    }
    claimed.add(v);
    outs.push(v);
  }
  b.setOutputs(outs);
  const built = b.build(g.symbols);
  return renames.size === 0 ? built : renameValues(built, renames);
}

// Gives values new names; a value already holding a wanted name is moved aside to a fresh name.
function renameValues(g: Graph, renames: ReadonlyMap<ValueId, string>): Graph {
  const taken = new Set<string>();
  for (const v of g.values.values()) taken.add(v.name);
  const wanted = new Set(renames.values());
  const values = new Map<ValueId, Value>();
  for (const [id, v] of g.values) {
    let name = renames.get(id);
    if (name === undefined && wanted.has(v.name)) {
      name = v.name;
      for (let i = 1; taken.has(name) || wanted.has(name); i++) name = `${v.name}_${i}`;
      taken.add(name);
    }
    values.set(id, name === undefined ? v : { ...v, name });
  }
  return { ...g, values };
}
