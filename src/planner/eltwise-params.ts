// Per-tenant constants: elementwise steps whose programs differ only in the values of their scalar
// constants (copies of one architecture exported with different scalars) share one launch. The step key
// leaves the values out (constantsAbstracted), so the schedule aligns such steps; the launch then keeps the
// constants its steps agree on baked into the program and reads the others from each segment's params
// (launch.ts 'param').
import { ELT_MAX_PARAMS, type EltInstr, type KernelOp } from '../../ir/contract/launch.js';

type EltwiseOp = Extract<KernelOp, { op: 'eltwise' }>;

// The op's JSON with every 'const' written without its value: the text the step key hashes.
export function constantsAbstracted(op: KernelOp): string {
  if (op.op !== 'eltwise' || !op.program.some((i) => i.op === 'const')) return JSON.stringify(op);
  return JSON.stringify({ ...op, program: op.program.map((i) => (i.op === 'const' ? { op: 'const' } : i)) });
}

export interface MergedConstants {
  readonly op: EltwiseOp; // the shared program: 'param' j where the steps' constants differ
  readonly params: ReadonlyArray<readonly number[]>; // per step, the values of param 0, 1, ...
}

// One program for ops whose constantsAbstracted texts are equal: null when their constants all agree (the
// first op serves every step) or when more than ELT_MAX_PARAMS of them differ (the caller then launches
// each distinct program on its own). Positions whose values agree on every step stay constants; positions
// holding the same values step for step share one param.
export function mergeConstants(ops: readonly EltwiseOp[]): MergedConstants | null {
  const first = ops[0]!.program;
  for (const op of ops) {
    if (op.program.length !== first.length || op.computeF32 !== ops[0]!.computeF32 || op.program.some((ins, pc) => ins.op !== first[pc]!.op))
      throw new Error('mergeConstants: the programs differ in more than their constants (their step keys should differ)');
  }
  const valueAt = (op: EltwiseOp, pc: number): number => (op.program[pc] as Extract<EltInstr, { op: 'const' }>).v;
  const slotOf = new Map<number, number>(); // pc → param index
  const slotByValues = new Map<string, number>();
  const params: number[][] = ops.map(() => []);
  first.forEach((ins, pc) => {
    if (ins.op !== 'const' || ops.every((op) => Object.is(valueAt(op, pc), ins.v))) return;
    const values = ops.map((op) => valueAt(op, pc));
    const text = values.map((v) => (Object.is(v, -0) ? '-0' : String(v))).join(',');
    let slot = slotByValues.get(text);
    if (slot === undefined) {
      slot = slotByValues.size;
      slotByValues.set(text, slot);
      values.forEach((v, s) => params[s]!.push(v));
    }
    slotOf.set(pc, slot);
  });
  if (slotByValues.size === 0 || slotByValues.size > ELT_MAX_PARAMS) return null;
  const program = first.map((ins, pc): EltInstr => {
    const slot = slotOf.get(pc);
    return slot === undefined ? ins : { op: 'param', i: slot };
  });
  return { op: { ...ops[0]!, program }, params };
}
