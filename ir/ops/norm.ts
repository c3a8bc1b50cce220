import { type DType, dtypeFromOnnx } from '../dtype.js';
import { fail } from '../errors.js';
import { type InferArg, type OpDef, defineOp, requireInput } from '../op.js';
import { type Dim, type Shape, normalizeAxis, numel, shapeToString } from '../shape.js';
import { type Tensor, fromNumbers, toNumbers } from '../tensor.js';
import { FLOATS, broadcastIndex, readNumbers, requireSameDType, requireTypeIn, requireUnidirectional, splitAtAxis } from './ew-util.js';

// Softmax family and normalizations. All compute in float64 and round once into the output dtype.

interface SoftmaxAttrs {
  readonly axis: number;
  // Before opset 13 the input is coerced to 2-D at `axis` and softmax runs over the flattened tail.
  readonly legacy2d: boolean;
}

// Softmax and LpNormalization: a float input of any shape, normalized along `axis` into its own type.
function inferFloatAlongAxis(a: { readonly axis: number }, inputs: ReadonlyArray<InferArg | null>, where: string) {
  const x = requireInput(inputs, 0, where, 'input 0 (input)');
  requireTypeIn(x.type.dtype, FLOATS, where, 'input 0 (input)');
  normalizeAxis(a.axis, x.type.shape.length, `${where}: attribute axis`);
  return [{ type: x.type }];
}

function softmaxOp(name: string, log: boolean): OpDef<SoftmaxAttrs> {
  return defineOp<SoftmaxAttrs>({
    name,
    inputs: [1, 1],
    outputs: [1, 1],
    attrs: (r) => {
      const legacy2d = r.ctx.opset < 13;
      return { axis: r.int('axis', legacy2d ? 1 : -1), legacy2d };
    },
    infer: inferFloatAlongAxis,
    evaluate: (a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (input)');
      const at = splitAtAxis(x.shape, a.axis, where);
      const { outer } = at;
      const [len, inner] = a.legacy2d ? [at.len * at.inner, 1] : [at.len, at.inner];
      const v = readNumbers(x);
      const out = new Float64Array(v.length);
      for (let o = 0; o < outer; o++) {
        for (let j = 0; j < inner; j++) {
          const base = o * len * inner + j;
          let mx = -Infinity;
          for (let k = 0; k < len; k++) mx = Math.max(mx, v[base + k * inner]!);
          let sum = 0;
          for (let k = 0; k < len; k++) {
            const e = Math.exp(v[base + k * inner]! - mx);
            out[base + k * inner] = e;
            sum += e;
          }
          const logSum = Math.log(sum);
          for (let k = 0; k < len; k++) {
            const p = base + k * inner;
            out[p] = log ? v[p]! - mx - logSum : out[p]! / sum;
          }
        }
      }
      return [fromNumbers(x.dtype, x.shape, out)];
    },
  });
}

// Mean and 1/sqrt(var + eps) of `len` values starting at `base` with stride `step`.
function moments(v: ArrayLike<number>, base: number, len: number, step: number, epsilon: number): [mean: number, invStd: number] {
  let s = 0;
  for (let k = 0; k < len; k++) s += v[base + k * step]!;
  const mean = s / len;
  let q = 0;
  for (let k = 0; k < len; k++) {
    const d = v[base + k * step]! - mean;
    q += d * d;
  }
  return [mean, 1 / Math.sqrt(q / len + epsilon)];
}

function channelParams(inputs: ReadonlyArray<InferArg | null>, from: number, names: readonly string[], channels: Dim, where: string): void {
  names.forEach((nm, k) => {
    const p = requireInput(inputs, from + k, where, `input ${from + k} (${nm})`);
    requireTypeIn(p.type.dtype, FLOATS, where, `input ${from + k} (${nm})`);
    const s = p.type.shape;
    if (s.length !== 1 || (typeof channels === 'number' && typeof s[0] === 'number' && s[0] !== channels)) {
      fail('SHAPE', `${where}: input ${from + k} (${nm}) has shape ${shapeToString(s)}; expected [${channels}]`);
    }
  });
}

function requireRank(shape: Shape, min: number, where: string): void {
  if (shape.length < min) fail('SHAPE', `${where}: input 0 (X) has rank ${shape.length}; expected at least ${min} (N, C, ...)`);
}

interface LayerNormAttrs {
  readonly axis: number;
  readonly epsilon: number;
  readonly stashType: DType;
}

interface GroupNormAttrs {
  readonly epsilon: number;
  readonly numGroups: number;
  // Opset 21 scales per channel ([C]); opset 18 scaled per group ([num_groups]).
  readonly perChannel: boolean;
}

export const normOps = {
  Softmax: softmaxOp('Softmax', false),
  LogSoftmax: softmaxOp('LogSoftmax', true),

  LayerNormalization: defineOp<LayerNormAttrs>({
    name: 'LayerNormalization',
    inputs: [2, 3],
    outputs: [1, 3],
    attrs: (r) => ({
      axis: r.int('axis', -1),
      epsilon: r.float('epsilon', 1e-5),
      stashType: dtypeFromOnnx(r.int('stash_type', 1), `${r.ctx.where}: attribute stash_type`),
    }),
    infer: (a, inputs, where, nOutputs) => {
      const x = requireInput(inputs, 0, where, 'input 0 (X)');
      const dtype = requireSameDType([x.type, requireInput(inputs, 1, where, 'input 1 (Scale)').type, inputs[2]?.type ?? null], where, ['X', 'Scale', 'B']);
      requireTypeIn(dtype, FLOATS, where, 'input 0 (X)');
      requireTypeIn(a.stashType, FLOATS, where, 'attribute stash_type');
      const axis = normalizeAxis(a.axis, x.type.shape.length, `${where}: attribute axis`);
      inputs.slice(1).forEach((p, i) => p && requireUnidirectional(x.type.shape, p.type.shape, where, `input ${i + 1}`));
      const statShape = x.type.shape.map((d, i) => (i < axis ? d : 1));
      const stat = { type: { dtype: a.stashType, shape: statShape } };
      return [{ type: x.type }, stat, stat].slice(0, Math.max(1, nOutputs));
    },
    evaluate: (a, inputs, where, nOutputs) => {
      const x = requireInput(inputs, 0, where, 'input 0 (X)');
      const scale = requireInput(inputs, 1, where, 'input 1 (Scale)');
      const bias = inputs[2] ?? null;
      const axis = normalizeAxis(a.axis, x.shape.length, `${where}: attribute axis`);
      const outer = numel(x.shape.slice(0, axis));
      const len = numel(x.shape.slice(axis));
      const v = readNumbers(x);
      const sv = readNumbers(scale);
      const si = broadcastIndex(scale.shape, x.shape);
      const bv = bias ? readNumbers(bias) : null;
      const bi = bias ? broadcastIndex(bias.shape, x.shape) : null;
      const out = new Float64Array(v.length);
      const means = new Float64Array(outer);
      const invs = new Float64Array(outer);
      for (let o = 0; o < outer; o++) {
        const base = o * len;
        const [mean, inv] = moments(v, base, len, 1, a.epsilon);
        means[o] = mean;
        invs[o] = inv;
        for (let k = base; k < base + len; k++) {
          const y = (v[k]! - mean) * inv * sv[si ? si[k]! : k]!;
          out[k] = bv ? y + bv[bi ? bi[k]! : k]! : y;
        }
      }
      const statShape = x.shape.map((d, i) => (i < axis ? d : 1));
      return [fromNumbers(x.dtype, x.shape, out), fromNumbers(a.stashType, statShape, means), fromNumbers(a.stashType, statShape, invs)].slice(
        0,
        Math.max(1, nOutputs),
      );
    },
  }),

  // Inference form only: normalizes with the given running statistics.
  BatchNormalization: defineOp({
    name: 'BatchNormalization',
    inputs: [5, 5],
    outputs: [1, 5],
    attrs: (r) => {
      if (r.int('training_mode', 0) !== 0) r.unsupported('training_mode', '1 (training); Loom runs BatchNormalization in inference mode only');
      if (r.int('spatial', 1) !== 1) r.unsupported('spatial', '0 (per-element statistics, opset < 9) is not supported');
      return { epsilon: r.float('epsilon', 1e-5) };
    },
    infer: (_a, inputs, where, nOutputs) => {
      if (nOutputs > 1) fail('UNSUPPORTED_FEATURE', `${where}: outputs running_mean/running_var (training mode) are not supported; only Y`);
      const x = requireInput(inputs, 0, where, 'input 0 (X)');
      requireTypeIn(x.type.dtype, FLOATS, where, 'input 0 (X)');
      requireRank(x.type.shape, 2, where);
      channelParams(inputs, 1, ['scale', 'B', 'input_mean', 'input_var'], x.type.shape[1]!, where);
      return [{ type: x.type }];
    },
    evaluate: (a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (X)');
      const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => toNumbers(requireInput(inputs, i, where)));
      const c = x.shape[1]!;
      const spatial = numel(x.shape.slice(2));
      const v = readNumbers(x);
      const out = new Float64Array(v.length);
      for (let p = 0; p < v.length; p++) {
        const ch = Math.floor(p / spatial) % c;
        out[p] = ((v[p]! - mean![ch]!) / Math.sqrt(variance![ch]! + a.epsilon)) * scale![ch]! + bias![ch]!;
      }
      return [fromNumbers(x.dtype, x.shape, out)];
    },
  }),

  InstanceNormalization: defineOp({
    name: 'InstanceNormalization',
    inputs: [3, 3],
    outputs: [1, 1],
    attrs: (r) => ({ epsilon: r.float('epsilon', 1e-5) }),
    infer: (_a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (input)');
      requireTypeIn(x.type.dtype, FLOATS, where, 'input 0 (input)');
      requireRank(x.type.shape, 2, where);
      requireSameDType(
        inputs.map((i) => i?.type ?? null),
        where,
        ['input', 'scale', 'B'],
      );
      channelParams(inputs, 1, ['scale', 'B'], x.type.shape[1]!, where);
      return [{ type: x.type }];
    },
    evaluate: (a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (input)');
      const scale = toNumbers(requireInput(inputs, 1, where));
      const bias = toNumbers(requireInput(inputs, 2, where));
      const c = x.shape[1]!;
      const spatial = numel(x.shape.slice(2));
      const v = readNumbers(x);
      const out = new Float64Array(v.length);
      for (let row = 0; row < v.length / Math.max(1, spatial); row++) {
        const ch = row % c;
        const base = row * spatial;
        const [mean, inv] = moments(v, base, spatial, 1, a.epsilon);
        for (let k = base; k < base + spatial; k++) out[k] = (v[k]! - mean) * inv * scale[ch]! + bias[ch]!;
      }
      return [fromNumbers(x.dtype, x.shape, out)];
    },
  }),

  GroupNormalization: defineOp<GroupNormAttrs>({
    name: 'GroupNormalization',
    inputs: [3, 3],
    outputs: [1, 1],
    attrs: (r) => {
      if (r.int('stash_type', 1) !== 1) r.unsupported('stash_type', 'only 1 (float) is supported');
      return { epsilon: r.float('epsilon', 1e-5), numGroups: r.int('num_groups'), perChannel: r.ctx.opset >= 21 };
    },
    infer: (a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (X)');
      requireTypeIn(x.type.dtype, FLOATS, where, 'input 0 (X)');
      requireRank(x.type.shape, 2, where);
      requireSameDType(
        inputs.map((i) => i?.type ?? null),
        where,
        ['X', 'scale', 'bias'],
      );
      const c = x.type.shape[1]!;
      if (a.numGroups <= 0 || (typeof c === 'number' && c % a.numGroups !== 0)) {
        fail('SHAPE', `${where}: attribute num_groups ${a.numGroups} does not divide the ${c} channels`);
      }
      channelParams(inputs, 1, ['scale', 'bias'], a.perChannel ? c : a.numGroups, where);
      return [{ type: x.type }];
    },
    evaluate: (a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (X)');
      const scale = toNumbers(requireInput(inputs, 1, where));
      const bias = toNumbers(requireInput(inputs, 2, where));
      const c = x.shape[1]!;
      const g = a.numGroups;
      const spatial = numel(x.shape.slice(2));
      const perGroup = (c / g) * spatial;
      const v = readNumbers(x);
      const out = new Float64Array(v.length);
      for (let row = 0; row < v.length / Math.max(1, perGroup); row++) {
        const base = row * perGroup;
        const [mean, inv] = moments(v, base, perGroup, 1, a.epsilon);
        for (let k = 0; k < perGroup; k++) {
          const p = a.perChannel ? (row % g) * (c / g) + Math.floor(k / spatial) : row % g;
          out[base + k] = (v[base + k]! - mean) * inv * scale[p]! + bias[p]!;
        }
      }
      return [fromNumbers(x.dtype, x.shape, out)];
    },
  }),

  LpNormalization: defineOp({
    name: 'LpNormalization',
    inputs: [1, 1],
    outputs: [1, 1],
    attrs: (r) => {
      const p = r.int('p', 2);
      if (p !== 1 && p !== 2) r.unsupported('p', `${p} (expected 1 or 2)`);
      return { axis: r.int('axis', -1), p };
    },
    infer: inferFloatAlongAxis,
    evaluate: (a, inputs, where) => {
      const x = requireInput(inputs, 0, where, 'input 0 (input)');
      const { outer, len, inner } = splitAtAxis(x.shape, a.axis, where);
      const v = readNumbers(x);
      const out = new Float64Array(v.length);
      for (let o = 0; o < outer; o++) {
        for (let j = 0; j < inner; j++) {
          const base = o * len * inner + j;
          let s = 0;
          for (let k = 0; k < len; k++) {
            const e = v[base + k * inner]!;
            s += a.p === 1 ? Math.abs(e) : e * e;
          }
          const norm = a.p === 1 ? s : Math.sqrt(s);
          // A zero vector stays zero rather than becoming NaN (onnxruntime does the same).
          for (let k = 0; k < len; k++) out[base + k * inner] = norm === 0 ? 0 : v[base + k * inner]! / norm;
        }
      }
      return [fromNumbers(x.dtype, x.shape, out)];
    },
  }),
} as const;
