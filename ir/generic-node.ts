import type { Graph, NodeId, ValueId } from './graph.js';
import type { OpDef } from './op.js';
import { isOpName, opDef } from './ops/index.js';

// A node seen without its op's attribute type: what op-generic tools (interpreter, verifier,
// printer) work on, so they never switch over the op union.
export interface GenericNode {
  readonly id: NodeId;
  readonly op: string;
  readonly name: string;
  readonly inputs: ReadonlyArray<ValueId | null>;
  readonly outputs: ReadonlyArray<ValueId>;
  readonly attrs: unknown;
}

export function genericNodes(g: Graph): ReadonlyArray<GenericNode> {
  return g.nodes as unknown as ReadonlyArray<GenericNode>;
}

// The op's definition, or undefined when the op is not registered.
export function genericDef(op: string): OpDef<unknown> | undefined {
  return isOpName(op) ? (opDef(op) as unknown as OpDef<unknown>) : undefined;
}
