import { type DType, dtypeFromOnnx } from '../../ir/dtype.js';
import { fail } from '../../ir/errors.js';
import type { Dim } from '../../ir/shape.js';
import type { TensorType } from '../../ir/tensor.js';
import { int64 } from './decode.js';
import type { ValueInfoProto } from './proto.js';

// Graph input types from their value_info, with symbolic dims bound from the caller's `dims`.
// After binding at most one symbol may remain: the batch dimension, renamed 'N'.

export const BATCH_SYMBOL = 'N';

// A declared dim: a size, a named symbol (dim_param), or an anonymous one (neither, or a negative size).
export type DeclaredDim = { readonly size: number } | { readonly symbol: string; readonly anonymous: boolean };

export interface DeclaredType {
  readonly dtype: DType;
  readonly dims: readonly DeclaredDim[];
}

export function declaredType(vi: ValueInfoProto, what: string): DeclaredType {
  const t = vi.type;
  if (!t) fail('MODEL_INVALID', `${what} has no type`);
  if (!t.tensorType) {
    const kind = t.sequenceType ? 'a sequence' : t.mapType ? 'a map' : t.optionalType ? 'an optional' : t.sparseTensorType ? 'a sparse tensor' : 'not a tensor';
    fail('UNSUPPORTED_FEATURE', `${what} is ${kind}; Loom supports dense tensors only`);
  }
  const dtype = dtypeFromOnnx(int64(t.tensorType.elemType), what);
  const shape = t.tensorType.shape;
  if (!shape) fail('UNSUPPORTED_FEATURE', `${what} has no shape (unknown rank); Loom needs the rank of every input`);
  const dims = (shape.dim ?? []).map((d, axis): DeclaredDim => {
    if (d.dimParam) return { symbol: d.dimParam, anonymous: false };
    const v = d.dimValue === null || d.dimValue === undefined ? -1 : int64(d.dimValue);
    if (!Number.isSafeInteger(v)) fail('MODEL_INVALID', `${what}: dim ${axis} has size ${v}`);
    return v < 0 ? { symbol: `${vi.name ?? ''}:${axis}`, anonymous: true } : { size: v };
  });
  return { dtype, dims };
}

interface SymbolUse {
  readonly input: string;
  readonly axis: number;
  readonly symbol: string;
  readonly anonymous: boolean;
}

export interface BoundInputs {
  readonly types: readonly TensorType[];
  readonly symbols: readonly string[]; // [] or [BATCH_SYMBOL]
}

export function bindInputs(
  inputs: ReadonlyArray<{ readonly name: string; readonly declared: DeclaredType }>,
  dims: Readonly<Record<string, number>> | undefined,
): BoundInputs {
  const bound = new Map<string, number>();
  for (const [k, v] of Object.entries(dims ?? {})) {
    if (!Number.isSafeInteger(v) || v < 1) fail('USAGE', `dim '${k}' is bound to ${v}; sizes must be positive integers`);
    bound.set(k, v);
  }
  const free: SymbolUse[] = [];
  for (const { name, declared } of inputs) {
    declared.dims.forEach((d, axis) => {
      if ('symbol' in d && !bound.has(d.symbol)) free.push({ input: name, axis, symbol: d.symbol, anonymous: d.anonymous });
    });
  }
  const names = [...new Set(free.map((u) => u.symbol))];
  if (names.length > 1) {
    const list = free.map((u) => `input '${u.input}' axis ${u.axis}: ${u.anonymous ? `unnamed (bind as '${u.symbol}')` : `'${u.symbol}'`}`);
    fail(
      'SHAPE',
      `the model has ${names.length} symbolic dims (${names.map((n) => `'${n}'`).join(', ')}); Loom allows one (the batch dim). ` +
        `Bind the others to sizes (--dim name=size): ${list.join('; ')}`,
    );
  }
  const types = inputs.map(({ declared }) => ({
    dtype: declared.dtype,
    shape: declared.dims.map((d): Dim => ('size' in d ? d.size : (bound.get(d.symbol) ?? BATCH_SYMBOL))),
  }));
  return { types, symbols: names.length === 1 ? [BATCH_SYMBOL] : [] };
}
