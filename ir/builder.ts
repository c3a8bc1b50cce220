import { fail } from './errors.js';
import type { Graph, Node, NodeId, Value, ValueId } from './graph.js';
import type { InferArg } from './op.js';
import { type AttrsOf, type OpName, opDef } from './ops/index.js';
import type { Dim } from './shape.js';
import { type Tensor, type TensorType, toIntList } from './tensor.js';

// Builds a Graph node by node, running each op's shape rule as nodes are added. The importer and
// every pass use it: a pass is "replay the old graph into a new builder, rewriting as you go".
export class GraphBuilder {
  private readonly values = new Map<ValueId, Value>();
  private readonly nodes: Node[] = [];
  private readonly constants = new Map<ValueId, Tensor>();
  private readonly knownDims = new Map<ValueId, readonly Dim[]>(); // shape inference side table
  private readonly names = new Set<string>();
  private readonly nodeNames = new Set<string>();
  private inputs: ValueId[] = [];
  private outputs: ValueId[] = [];
  private nextValue = 0;
  private nextNode = 0;

  constructor(readonly name: string) {}

  uniqueName(base: string): string {
    let name = base || 'v';
    for (let i = 1; this.names.has(name); i++) name = `${base}_${i}`;
    return name;
  }

  private newValue(name: string, type: TensorType): ValueId {
    const id = this.nextValue++ as ValueId;
    const unique = this.uniqueName(name);
    this.names.add(unique);
    this.values.set(id, { id, name: unique, type: { dtype: type.dtype, shape: [...type.shape] } });
    return id;
  }

  addInput(name: string, type: TensorType): ValueId {
    const id = this.newValue(name, type);
    this.inputs.push(id);
    return id;
  }

  addConstant(name: string, t: Tensor): ValueId {
    const id = this.newValue(name, { dtype: t.dtype, shape: t.shape });
    this.constants.set(id, t);
    if (t.shape.length <= 1 && t.data.length <= 64 && t.dtype !== 'f16' && t.dtype !== 'bf16') {
      this.knownDims.set(id, toIntList(t));
    }
    return id;
  }

  value(id: ValueId): Value {
    const v = this.values.get(id);
    if (v === undefined) fail('VERIFY', `value #${id} is not defined in graph '${this.name}'`);
    return v;
  }

  constantOf(id: ValueId): Tensor | undefined {
    return this.constants.get(id);
  }

  dimsOf(id: ValueId): readonly Dim[] | undefined {
    return this.knownDims.get(id);
  }

  inferArg(id: ValueId): InferArg {
    const type = this.value(id).type;
    const value = this.constants.get(id);
    const dims = this.knownDims.get(id);
    return { type, ...(value ? { value } : {}), ...(dims ? { dims } : {}) };
  }

  // Adds a node; output types come from the op's shape rule. Returns the output value ids.
  addNode<K extends OpName>(op: K, name: string, inputs: ReadonlyArray<ValueId | null>, attrs: AttrsOf<K>, outputNames: readonly string[]): ValueId[] {
    const def = opDef(op);
    let nodeName = name || `${op}_${this.nextNode}`;
    for (let i = 1; this.nodeNames.has(nodeName); i++) nodeName = `${name || op}_${i}`;
    const where = `node '${nodeName}' (${op})`;
    const [minIn, maxIn] = def.inputs;
    let n = inputs.length;
    while (n > 0 && inputs[n - 1] === null) n--; // trailing optional inputs left out
    if (n < minIn || n > maxIn) fail('MODEL_INVALID', `${where}: takes ${minIn === maxIn ? minIn : `${minIn}..${maxIn}`} inputs, got ${n}`);
    const [minOut, maxOut] = def.outputs;
    if (outputNames.length < minOut || outputNames.length > maxOut) {
      fail('MODEL_INVALID', `${where}: produces ${minOut === maxOut ? minOut : `${minOut}..${maxOut}`} outputs, got ${outputNames.length}`);
    }
    const args = inputs.slice(0, n).map((v) => (v === null ? null : this.inferArg(v)));
    const results = def.infer(attrs, args, where, outputNames.length);
    const outs = outputNames.map((o, i) => {
      const r = results[i];
      if (r === undefined) fail('VERIFY', `${where}: shape rule gave no type for output ${i}`);
      const id = this.newValue(o, r.type);
      if (r.dims) this.knownDims.set(id, r.dims);
      return id;
    });
    const node = { id: this.nextNode++ as NodeId, op, name: nodeName, inputs: inputs.slice(0, n), outputs: outs, attrs } as unknown as Node;
    this.nodeNames.add(nodeName);
    this.nodes.push(node);
    return outs;
  }

  setOutputs(ids: readonly ValueId[]): void {
    this.outputs = [...ids];
  }

  build(symbols: readonly string[] = []): Graph {
    return {
      name: this.name,
      values: new Map(this.values),
      inputs: [...this.inputs],
      outputs: [...this.outputs],
      nodes: [...this.nodes],
      constants: new Map(this.constants),
      symbols: [...symbols],
    };
  }
}
