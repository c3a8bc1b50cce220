// Lowers one tenant's concrete IR to steps (see steps.ts): each node through its op's entry in lowerings.ts.
import { byteSize } from '../../ir/dtype.js';
import type { Graph, Node, ValueId } from '../../ir/graph.js';
import type { GraphIndex } from '../../ir/passes/rewrite.js';
import { numel } from '../../ir/shape.js';
import { type FleetState, type Loc, TenantLowering } from './lower-context.js';
import { type Expr, isEltwiseOp } from './lower-eltwise.js';
import { lowerSqueezeExcite, matchSqueezeExcite } from './lower-excite.js';
import { copyInto } from './lower-layout.js';
import { lowerResidual, matchResidual } from './lower-residual.js';
import { lowerNodeByOp } from './lowerings.js';

export interface LoweredTenant {
  readonly inputBufs: readonly number[];
  readonly outputBufs: readonly number[];
  readonly steps: number; // how many steps this tenant lowered to (its launches when run alone)
}

// Consumers that read input `pos` as a program leaf (so a producer there can be inlined).
function readsAsLeaf(consumer: Node, pos: number): boolean {
  if (consumer.op === 'CastLike' || consumer.op === 'BatchNormalization') return pos === 0;
  return true;
}

// Whether n's one output feeds exactly one eltwise consumer, once, as a program leaf (the graph index lists a node
// once per input it reads v at, so a consumer reading v twice counts twice and does not fuse).
function fusesIntoConsumer(g: Graph, index: GraphIndex, n: Node): boolean {
  if (n.outputs.length !== 1) return false;
  const v = n.outputs[0]!;
  if (index.isGraphOutput(v)) return false;
  const users = index.consumers(v);
  if (users.length !== 1) return false;
  const c = users[0]!;
  if (!isEltwiseOp(c.op)) return false;
  const positions = c.inputs.flatMap((x, i) => (x === v ? [i] : []));
  if (positions.length !== 1 || !readsAsLeaf(c, positions[0]!)) return false;
  return numel(g.values.get(v)!.type.shape as number[]) > 0;
}

// `rowValues` / `maxBatch`: row-local.ts (which GEMMs may run only a tick's rows); null: every GEMM runs every row.
export function lowerTenant(
  fleet: FleetState,
  tenant: number,
  tenantId: string,
  g: Graph,
  rowValues: ReadonlySet<ValueId> | null = null,
  maxBatch = 1,
): LoweredTenant {
  const cx = new TenantLowering(fleet, tenant, tenantId, g, rowValues, maxBatch);
  const first = fleet.steps.length;
  const inputBufs = g.inputs.map((v, j) => {
    const shape = cx.shapeOf(v);
    const dtype = cx.dtypeOf(v);
    const b = cx.newBuf('input', g.values.get(v)!.name, Math.max(1, numel(shape)) * byteSize(dtype));
    cx.buf(b).io = j;
    cx.setLoc(v, { ref: { buf: b, offset: 0 }, dtype, shape });
    return b;
  });
  const pending = new Map<ValueId, Expr>();
  const fused = new Set<Node>(); // nodes a multi-node lowering already covered
  for (const n of g.nodes) {
    if (fused.has(n)) continue;
    cx.node = n;
    const se = fleet.squeezeExcite !== false ? matchSqueezeExcite(cx, n) : null;
    if (se !== null) {
      lowerSqueezeExcite(cx, se);
      for (const m of [se.fc1, se.fc2, se.mul]) fused.add(m);
      continue;
    }
    const res = fleet.residualEpilogue === false ? null : matchResidual(cx, n, (v) => cx.has(v) && !pending.has(v));
    if (res !== null) {
      if (res.early !== null) {
        cx.node = res.early;
        lowerNodeByOp(cx, res.early, pending, false);
        fused.add(res.early);
        cx.node = n;
      }
      lowerResidual(cx, res);
      for (const m of res.fused) fused.add(m);
      continue;
    }
    lowerNodeByOp(cx, n, pending, fusesIntoConsumer(g, cx.graphIndex, n));
  }
  cx.node = null;
  const claimed = new Set<number>();
  const outputBufs = g.outputs.map((v, j) => {
    const loc = cx.loc(v);
    const bytes = Math.max(1, numel(loc.shape)) * byteSize(loc.dtype);
    const buf = cx.buf(loc.ref.buf);
    if (buf.kind === 'act' && loc.ref.offset === 0 && buf.bytes === bytes && !claimed.has(buf.id)) {
      buf.kind = 'output';
      buf.io = j;
      claimed.add(buf.id);
      return buf.id;
    }
    const b = cx.newBuf('output', g.values.get(v)!.name, bytes);
    cx.buf(b).io = j;
    const to: Loc = { ref: { buf: b, offset: 0 }, dtype: loc.dtype, shape: loc.shape };
    copyInto(cx, loc, to);
    return b;
  });
  return { inputBufs, outputBufs, steps: fleet.steps.length - first };
}
