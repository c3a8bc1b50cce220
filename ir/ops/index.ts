import type { OpDef } from '../op.js';
import { elementwiseOps } from './elementwise.js';
import { gatherNdOps } from './gather-nd.js';
import { layoutOps } from './layout.js';
import { linalgOps } from './linalg.js';
import { poolOps } from './pool.js';
import { reduceOps } from './reduce.js';

// The op registry: every op the IR knows, each declared once in its family file.
export const OPS = {
  ...elementwiseOps,
  ...reduceOps,
  ...linalgOps,
  ...poolOps,
  ...layoutOps,
  ...gatherNdOps,
} as const;

export type OpName = keyof typeof OPS;
export type AttrsOf<K extends OpName> = (typeof OPS)[K] extends OpDef<infer A> ? A : never;

export function isOpName(s: string): s is OpName {
  return Object.hasOwn(OPS, s);
}

export function opDef<K extends OpName>(op: K): OpDef<AttrsOf<K>> {
  return OPS[op] as unknown as OpDef<AttrsOf<K>>;
}
