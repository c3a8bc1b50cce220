// CUDA spelling of the values and programs kernels compute: literals, storage types, and an elementwise
// program (postfix EltInstr[]) as straight-line SSA statements over the prelude's loom_* helpers.
import type { DType } from '../ir/dtype.js';
import { fail } from '../ir/errors.js';
import type { Activation } from '../ir/ops/activation.js';
import type { EltInstr } from '../ir/contract/launch.js';
import { ELT_BINARY, ELT_UNARY } from '../ir/contract/launch.js';

export function ctypeOf(d: DType): string {
  switch (d) {
    case 'f32':
      return 'float';
    case 'f64':
      return 'double';
    case 'f16':
      return '__half';
    case 'bf16':
      return '__nv_bfloat16';
    case 'i64':
      return 'long long';
    case 'i32':
      return 'int';
    case 'i8':
      return 'signed char';
    case 'u8':
      return 'unsigned char';
    case 'bool':
      return 'bool'; // 1 byte holding 0/1; the conversion to bool is "!= 0", as ONNX Cast
  }
}

// A double literal that reads back as exactly `v` (shortest round-trip digits), non-finite values included.
export function doubleLiteral(v: number): string {
  if (Number.isNaN(v)) return '__longlong_as_double(0x7ff8000000000000LL)';
  if (v === Infinity) return '__longlong_as_double(0x7ff0000000000000LL)';
  if (v === -Infinity) return '__longlong_as_double(0xfff0000000000000LL)';
  if (Object.is(v, -0)) return '(-0.0)';
  let s = String(v);
  if (!/[.e]/.test(s)) s += '.0';
  return v < 0 ? `(${s})` : s;
}

// Typed constant in the computation type (a double rounded once to float when acc_t is float).
export function accLiteral(v: number): string {
  return `((acc_t)${doubleLiteral(v)})`;
}

export function activationCall(a: Activation, x: string): string {
  switch (a.kind) {
    case 'relu':
    case 'sigmoid':
    case 'tanh':
    case 'gelu_erf':
    case 'gelu_tanh':
    case 'hard_swish':
      return `loom_act_${a.kind}(${x})`;
    case 'leaky_relu':
      return `loom_act_leaky_relu(${x}, ${accLiteral(a.alpha)})`;
    case 'clip':
      return `loom_act_clip(${x}, ${accLiteral(a.min)}, ${accLiteral(a.max)})`;
    case 'hard_sigmoid':
      return `loom_act_hard_sigmoid(${x}, ${accLiteral(a.alpha)}, ${accLiteral(a.beta)})`;
    default: {
      const never: never = a;
      return fail('PLAN_INVALID', `unknown activation ${JSON.stringify(never)}`);
    }
  }
}

// Inputs are the variables x0..x{n-1} (already loaded as acc_t); returns the statements and the result.
export function eltwiseStatements(program: readonly EltInstr[], where: string): { body: string[]; result: string } {
  const stack: string[] = [];
  const body: string[] = [];
  const pop = (): string => {
    const v = stack.pop();
    if (v === undefined) fail('PLAN_INVALID', `${where}: eltwise program underflows its stack`);
    return v;
  };
  const emit = (expr: string): void => {
    const t = `t${body.length}`;
    body.push(`const acc_t ${t} = ${expr};`);
    stack.push(t);
  };
  for (const ins of program) {
    switch (ins.op) {
      case 'in':
        stack.push(`x${ins.i}`);
        break;
      case 'const':
        stack.push(accLiteral(ins.v));
        break;
      case 'param': // the segment's own constant (the eltwise template's `seg`), rounded once to acc_t as 'const' is
        stack.push(`((acc_t)seg.params[${ins.i}])`);
        break;
      case 'where': {
        const y = pop();
        const x = pop();
        emit(`loom_where(${pop()}, ${x}, ${y})`);
        break;
      }
      case 'clip':
        emit(`loom_clip(${pop()}, ${accLiteral(ins.min)}, ${accLiteral(ins.max)})`);
        break;
      case 'act':
        emit(activationCall(ins.act, pop()));
        break;
      default:
        if ((ELT_UNARY as readonly string[]).includes(ins.op)) emit(`loom_${ins.op}(${pop()})`);
        else if ((ELT_BINARY as readonly string[]).includes(ins.op)) {
          const b = pop();
          emit(`loom_${ins.op}(${pop()}, ${b})`);
        } else fail('PLAN_INVALID', `${where}: unknown eltwise instruction '${(ins as { op: string }).op}'`);
    }
  }
  if (stack.length !== 1) fail('PLAN_INVALID', `${where}: eltwise program leaves ${stack.length} values, expected 1`);
  return { body, result: stack[0]! };
}
