import type { AttrsOf, OpName } from './ops/index.js';
import type { Tensor, TensorType } from './tensor.js';

export type ValueId = number & { readonly __brand: 'ValueId' };
export type NodeId = number & { readonly __brand: 'NodeId' };

export interface Value {
  readonly id: ValueId;
  readonly name: string; // the ONNX value name it came from (unique within a graph)
  readonly type: TensorType;
}

export interface NodeOf<K extends OpName> {
  readonly id: NodeId;
  readonly op: K;
  readonly name: string; // ONNX node name, or a generated one; used in messages
  readonly inputs: ReadonlyArray<ValueId | null>; // null = optional input left out
  readonly outputs: ReadonlyArray<ValueId>;
  readonly attrs: AttrsOf<K>;
}

// Tagged union over every op, keyed by `op`.
export type Node = { [K in OpName]: NodeOf<K> }[OpName];

export interface Graph {
  readonly name: string;
  readonly values: ReadonlyMap<ValueId, Value>;
  readonly inputs: ReadonlyArray<ValueId>; // runtime inputs, in model order
  readonly outputs: ReadonlyArray<ValueId>;
  readonly nodes: ReadonlyArray<Node>; // topologically ordered
  readonly constants: ReadonlyMap<ValueId, Tensor>; // initializers and folded constants
  readonly symbols: ReadonlyArray<string>; // symbolic dims still present (at most the batch dim)
}

export function isNode<K extends OpName>(n: Node, op: K): n is Extract<Node, { op: K }> {
  return n.op === op;
}
