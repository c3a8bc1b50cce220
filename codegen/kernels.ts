// Decides the generated kernels of a plan: one CUDA kernel per distinct kernel key (op + dtypes), its
// symbol name, the view model its template prints, and each launch's grid. Templates only print this.
import { createHash } from 'node:crypto';
import { isFloat, type DType } from '../ir/dtype.js';
import { fail } from '../ir/errors.js';
import { type KernelOp, type Launch, type PoolGeometry, SE_MAX_CHANNELS, SE_MAX_HIDDEN, type Segment } from '../ir/contract/launch.js';
import { activationCall, ctypeOf, doubleLiteral, eltwiseStatements } from './cuda-expr.js';
import type { KernelGrid } from '../ir/contract/launch-plan.js';
import { FORMAT_VERSION } from '../ir/contract/launch-plan.js';
import { fixedGeometry, fixedGeometryView } from './fixed-geometry.js';
import { segmentWork } from './work-items.js';
import { CONV_BLOCK, convShape, convTile } from './conv-kernel.js';
import { type FixedLayout, fixedLayout, fixedLayoutView } from './fixed-layout.js';
import { renderTemplate, type TemplateData } from './render.js';

type KernelLaunch = Extract<Launch, { kind: 'kernel' }>;

export const BLOCK = 256;
// squeeze_excite runs one block per image and, at batch 1, that block is the whole launch: as many threads as a
// block may have, so each of its passes is one or two rounds of loads (codegen/templates/squeeze_excite.cu.hbs).
const EXCITE_BLOCK = 1024;

function blockOf(op: KernelOp): number {
  return op.op === 'squeeze_excite' ? EXCITE_BLOCK : op.op === 'conv' ? CONV_BLOCK : BLOCK;
}
const MAX_GRID = 1 << 20; // kernels loop grid-stride past this
// Kernels whose template walks runs (prelude loom_for_runs): a thread does several items of one segment,
// paying the segment search and index divisions once per run. Their grid gives each thread up to
// RUN_ITEMS items but keeps at least RUN_MIN_BLOCKS blocks (an H100 holds ~1000 blocks of 256 at once).
const RUN_OPS: ReadonlySet<KernelOp['op']> = new Set(['im2col']);
const RUN_ITEMS = 16;
const RUN_MIN_BLOCKS = 2048;

export interface KernelSpec {
  readonly name: string;
  readonly key: string; // canonical JSON of what the code depends on
  readonly op: KernelOp['op'];
  readonly launches: readonly number[];
  readonly mapping: 'thread' | 'block';
  readonly template: string;
  readonly view: TemplateData;
}

export interface KernelTable {
  readonly kernels: readonly KernelSpec[]; // in order of first use
  readonly names: Readonly<Record<string, string>>;
  readonly grids: Readonly<Record<string, KernelGrid>>;
}

function mappingOf(op: KernelOp): 'thread' | 'block' {
  return op.op === 'softmax' || op.op === 'layernorm' || op.op === 'groupnorm' || op.op === 'squeeze_excite' || op.op === 'conv' ? 'block' : 'thread';
}

// The dtypes a launch's kernel is compiled for; one launch is one kernel, so its segments must agree.
function launchDTypes(l: KernelLaunch): { inputs: readonly DType[]; out: DType } {
  const where = `launch ${l.id} ('${l.op.op}')`;
  const first = l.segments[0];
  if (first === undefined) fail('PLAN_INVALID', `${where}: a kernel launch needs at least one segment`);
  const sig = (s: Segment): string => `${s.inputs.map((v) => v.dtype).join(',')}->${s.outDType}`;
  for (const [i, s] of l.segments.entries()) {
    if (sig(s) !== sig(first)) fail('PLAN_INVALID', `${where}: segment ${i} has dtypes ${sig(s)} but segment 0 has ${sig(first)}; one launch runs one kernel`);
  }
  return { inputs: first.inputs.map((v) => v.dtype), out: first.outDType };
}

function accType(d: DType): string {
  return d === 'f32' || d === 'f16' || d === 'bf16' ? 'float' : 'double';
}

function sameDType(where: string, a: DType, b: DType): void {
  if (a !== b) fail('PLAN_INVALID', `${where}: input dtype ${a} must equal the output dtype ${b}`);
}

function reduceFragments(op: Extract<KernelOp, { op: 'reduce' }>): { init: string; step: string; result: string } {
  const sum = { init: 'acc_t a = 0;', step: 'a += v;', result: 'a' };
  switch (op.reduce) {
    case 'sum':
      return sum;
    case 'mean':
      return { ...sum, result: 'a / (acc_t)axis' };
    case 'max':
      return { init: 'acc_t a = -loom_inf<acc_t>();', step: 'a = loom_max(a, v);', result: 'a' };
    case 'min':
      return { init: 'acc_t a = loom_inf<acc_t>();', step: 'a = loom_min(a, v);', result: 'a' };
    case 'prod':
      return { init: 'acc_t a = 1;', step: 'a *= v;', result: 'a' };
    case 'l1':
      return { ...sum, step: 'a += fabs(v);' };
    case 'l2':
      return { ...sum, step: 'a += v * v;', result: 'sqrt(a)' };
    case 'sumsq':
      return { ...sum, step: 'a += v * v;' };
    case 'logsum':
      return { ...sum, result: 'log(a)' };
    case 'logsumexp': // online: running max m and sum s of exp(x - m)
      return {
        init: 'acc_t m = -loom_inf<acc_t>(), s = 0;',
        step: 'if (v > m) { s = s * exp(m - v) + (acc_t)1; m = v; } else { s += exp(v - m); }',
        result: 'm + log(s)',
      };
    case 'argmax':
    case 'argmin': {
      const cmp = op.reduce === 'argmax' ? (op.selectLast ? '>=' : '>') : op.selectLast ? '<=' : '<';
      return { init: 'acc_t a = 0; long long ai = 0;', step: `if (k == 0 || v ${cmp} a) { a = v; ai = k; }`, result: 'ai' };
    }
    default: {
      const never: never = op.reduce;
      return fail('PLAN_INVALID', `unknown reduce '${String(never)}'`);
    }
  }
}

function viewModel(l: KernelLaunch, f: FixedForm, name: string, key: string): { template: string; view: TemplateData } {
  const where = `launch ${l.id} ('${l.op.op}')`;
  const { inputs, out } = launchDTypes(l);
  const base = { name, block: blockOf(l.op), comment: `${name}: ${key}`, out_t: ctypeOf(out) };
  const in0 = inputs[0] ?? out;
  const typed = { ...base, in_t: ctypeOf(in0), acc_t: accType(in0) };
  const op = l.op;
  const fixed = fixedView(l, f.geom);
  const layout = f.layout;
  switch (op.op) {
    case 'eltwise': {
      const { body, result } = eltwiseStatements(op.program, where);
      const acc_t = op.computeF32 ? 'float' : 'double';
      if (layout === null) {
        return { template: 'eltwise.cu.hbs', view: { ...base, acc_t, inputs: inputs.map((d, index) => ({ index, ctype: ctypeOf(d) })), body, result } };
      }
      const v = fixedLayoutView(layout);
      const ins = inputs.map((d, index) => ({ index, ctype: ctypeOf(d), offset: v.offsets[index]! }));
      return { template: 'eltwise_fixed.cu.hbs', view: { ...base, acc_t, inputs: ins, body, result, per: v.per, digits: v.digits } };
    }
    case 'copy': {
      const convert = in0 === out ? 'x' : isFloat(out) && in0 === 'f32' ? 'loom_cvt<out_t>(x)' : 'loom_cvt<out_t>(loom_cvt<double>(x))';
      if (layout === null) return { template: 'copy.cu.hbs', view: { ...base, in_t: ctypeOf(in0), convert } };
      const v = fixedLayoutView(layout);
      const view = { ...base, in_t: ctypeOf(in0), convert, per: v.per, digits: v.digits, in_offset: v.offsets[0]!, out_offset: v.outOffset };
      return { template: 'copy_fixed.cu.hbs', view };
    }
    case 'fill':
      return { template: 'fill.cu.hbs', view: { ...base, value: doubleLiteral(op.value) } };
    case 'gather':
      sameDType(where, in0, out);
      return { template: 'gather.cu.hbs', view: { ...base, idx_t: ctypeOf(inputs[1]!) } };
    case 'gather_table':
      sameDType(where, in0, out);
      return { template: 'gather_table.cu.hbs', view: base };
    case 'reduce':
      return { template: 'reduce.cu.hbs', view: { ...typed, ...reduceFragments(op) } };
    case 'softmax':
      return {
        template: 'softmax.cu.hbs',
        view: {
          ...typed,
          prepare: op.log ? ['const acc_t ls = log(s);'] : ['const acc_t rs = (acc_t)1 / s;'],
          result: op.log ? 'v - m - ls' : 'exp(v - m) * rs',
        },
      };
    case 'layernorm': {
      const opt = (i: number, dflt: string): string => (inputs[i] === undefined ? dflt : `loom_cvt<acc_t>(((const ${ctypeOf(inputs[i])}*)v[${i}].ptr)[c])`);
      return { template: 'layernorm.cu.hbs', view: { ...typed, epsilon: doubleLiteral(op.epsilon), scale: opt(1, '(acc_t)1'), bias: opt(2, '(acc_t)0') } };
    }
    case 'groupnorm':
      return {
        template: 'groupnorm.cu.hbs',
        view: { ...typed, epsilon: doubleLiteral(op.epsilon), scale_t: ctypeOf(inputs[1]!), bias_t: ctypeOf(inputs[2]!) },
      };
    case 'pool': {
      const frag =
        op.mode === 'max'
          ? { init: 'acc_t a = -loom_inf<acc_t>();', step: 'if (inside) a = loom_max(a, loom_cvt<acc_t>(x[iy * wd + ix]));', result: 'a' }
          : {
              init: 'acc_t a = 0; long long n = 0;',
              step: `if (inside) a += loom_cvt<acc_t>(x[iy * wd + ix]); if (${op.countIncludePad ? 'inPadded' : 'inside'}) ++n;`,
              result: 'n > 0 ? a / (acc_t)n : (acc_t)0',
            };
      return { template: fixed === null ? 'pool.cu.hbs' : 'pool_fixed.cu.hbs', view: { ...typed, ...frag, ...fixed } };
    }
    case 'im2col': {
      sameDType(where, in0, out);
      const template = fixed === null ? 'im2col.cu.hbs' : fixed.vec4 ? 'im2col_fixed4.cu.hbs' : 'im2col_fixed.cu.hbs';
      return { template, view: { ...typed, ...fixed, ones: op.ones === true } };
    }
    case 'depthwise': {
      const bias = inputs[2] === undefined ? '(acc_t)0' : `loom_cvt<acc_t>(((const ${ctypeOf(inputs[2])}*)views[seg.firstView + 2].ptr)[ch])`;
      const result = op.activation === null ? 'a' : activationCall(op.activation, 'a');
      const template = fixed === null ? 'depthwise.cu.hbs' : 'depthwise_fixed.cu.hbs';
      return { template, view: { ...typed, w_t: ctypeOf(inputs[1] ?? in0), bias, result, ...fixed } };
    }
    case 'squeeze_excite': {
      const act = (a: typeof op.act1, v: string) => (a === null ? v : activationCall(a, v));
      return {
        template: 'squeeze_excite.cu.hbs',
        view: { ...base, max_channels: SE_MAX_CHANNELS, max_hidden: SE_MAX_HIDDEN, hidden: act(op.act1, 'v'), gate: act(op.act2, 'v') },
      };
    }
    case 'conv': {
      // always compiled for its geometry and M (there is no generic conv kernel: fixedFormOf)
      const { geom, m } = f;
      if (geom === null || m === null || fixed === null) return fail('PLAN_INVALID', `${where}: a conv kernel needs its geometry and m`);
      const t = convTile(m, geom.oh * geom.ow);
      const result = op.activation === null ? 'v' : activationCall(op.activation, 'v');
      const view = { ...base, geometry: fixed.geometry, m, bm: t.bm, bn: t.bn, bias: op.bias, residual: op.residual };
      return { template: 'conv.cu.hbs', view: { ...view, residual_view: 2 + (op.bias ? 1 : 0), result } };
    }
    case 'col2im': {
      const bias = inputs[1] === undefined ? '(acc_t)0' : `loom_cvt<acc_t>(((const ${ctypeOf(inputs[1])}*)views[seg.firstView + 1].ptr)[ch])`;
      return { template: 'col2im.cu.hbs', view: { ...typed, bias } };
    }
    default: {
      const never: never = op;
      return fail('PLAN_INVALID', `${where}: unknown kernel op ${JSON.stringify(never)}`);
    }
  }
}

// LOOM_CODEGEN_FIXED=off (read when a plan is compiled): every launch gets the generic kernel, as before stop 24 —
// to compare, or to set aside a fixed kernel suspected of a fault. Any other value but unset / `auto` fails.
export function fixedKernelsOn(): boolean {
  const v = process.env.LOOM_CODEGEN_FIXED ?? '';
  if (v === '' || v === 'auto') return true;
  if (v === 'off') return false;
  return fail('USAGE', `LOOM_CODEGEN_FIXED must be auto or off, got '${v}'`);
}

// What a launch's kernel is compiled for beyond its op and dtypes: the geometry or layout all its segments share
// (at most one of the two, by op), and a conv's output channels, decided once per launch in planKernels.
interface FixedForm {
  readonly geom: PoolGeometry | null;
  readonly layout: FixedLayout | null;
  readonly m: number | null; // conv only
}

function fixedFormOf(l: KernelLaunch, on: boolean): FixedForm {
  if (l.op.op === 'conv') return { ...convShape(l), layout: null }; // its only form, whatever `on` says
  return on ? { geom: fixedGeometry(l), layout: fixedLayout(l), m: null } : { geom: null, layout: null, m: null };
}

// A geometry-fixed kernel's constants (codegen/fixed-geometry.ts), or null for the generic template. Window
// loops unroll fully up to FIXED_UNROLL taps (a global pool's thousands would bloat the kernel). An im2col whose
// output rows are a multiple of 4 long runs 4 outputs per thread (im2col_fixed4.cu.hbs).
const FIXED_UNROLL = 64;
const fourPerThread = (g: PoolGeometry): boolean => g.ow % 4 === 0;
function fixedView(l: KernelLaunch, g: PoolGeometry | null): { geometry: string; per: number; unroll: string; vec4: boolean } | null {
  if (g === null) return null;
  const vec4 = l.op.op === 'im2col' && fourPerThread(g);
  return { ...fixedGeometryView(l, g), unroll: g.kh * g.kw <= FIXED_UNROLL ? '#pragma unroll' : '#pragma unroll 1', vec4 };
}

// A fixed im2col with an item per thread (rows not a multiple of 4) loops grid-stride over at most this many
// blocks: one block per 256 loads and stores is bound by block scheduling (H100, stop 24: 45.9 µs this way vs
// 71.1 µs a block per 256 items on ResNet-18's 256 x 14 x 14 layer; ~4 waves of 256-thread blocks on 132 SMs).
const FIXED_IM2COL_MAX_GRID = 4224;

// Blocks of a 'thread'-mapped launch: the generic im2col walks runs (RUN_ITEMS items per thread, at least
// RUN_MIN_BLOCKS blocks); a fixed im2col a quarter of its items (4 per thread) or a capped grid; the rest a
// thread per item.
function threadGrid(l: KernelLaunch, g: PoolGeometry | null, total: number, block: number): number {
  const blocks = Math.ceil(total / block);
  if (l.op.op !== 'im2col') return blocks;
  if (g !== null) return fourPerThread(g) ? Math.ceil(total / 4 / block) : Math.min(blocks, FIXED_IM2COL_MAX_GRID);
  return RUN_OPS.has(l.op.op) && blocks > RUN_MIN_BLOCKS ? Math.max(RUN_MIN_BLOCKS, Math.ceil(blocks / RUN_ITEMS)) : blocks;
}

export function kernelKey(l: KernelLaunch, f: FixedForm = fixedFormOf(l, fixedKernelsOn())): string {
  const { inputs, out } = launchDTypes(l);
  const { geom, layout, m } = f;
  return JSON.stringify({
    op: l.op,
    inputs,
    out,
    block: blockOf(l.op),
    ...(geom === null ? {} : { geom }),
    ...(m === null ? {} : { m }),
    ...(layout === null ? {} : { layout }),
  });
}

export function planKernels(launches: readonly Launch[]): KernelTable {
  const byKey = new Map<string, { name: string; launch: KernelLaunch; fixed: FixedForm; launches: number[] }>();
  const names: Record<string, string> = {};
  const grids: Record<string, KernelGrid> = {};
  const on = fixedKernelsOn();
  for (const l of launches) {
    if (l.kind !== 'kernel') continue;
    const fixed = fixedFormOf(l, on);
    const key = kernelKey(l, fixed);
    let k = byKey.get(key);
    if (k === undefined) {
      const hash = createHash('sha256').update(key).digest('hex').slice(0, 12);
      k = { name: `loom_${l.op.op}_${hash}`, launch: l, fixed, launches: [] };
      byKey.set(key, k);
    }
    k.launches.push(l.id);
    const mapping = mappingOf(l.op);
    const work = l.segments.map((s) => segmentWork(l.op, s));
    const total = work.reduce((a, b) => a + b, 0);
    const block = blockOf(l.op);
    const blocks = mapping === 'block' ? total : threadGrid(l, fixed.geom, total, block);
    names[String(l.id)] = k.name;
    grids[String(l.id)] = { name: k.name, block, grid: Math.min(MAX_GRID, Math.max(1, blocks)), mapping, work };
  }
  const kernels = [...byKey.entries()].map(
    ([key, k]): KernelSpec => ({
      name: k.name,
      key,
      op: k.launch.op.op,
      launches: k.launches,
      mapping: mappingOf(k.launch.op),
      ...viewModel(k.launch, k.fixed, k.name, key),
    }),
  );
  return { kernels, names, grids };
}

export function renderKernelSource(table: KernelTable): string {
  const code = table.kernels.map((k) => ({ code: renderTemplate(k.template, k.view) }));
  return renderTemplate('kernels.cu.hbs', {
    kernelCount: table.kernels.length,
    abi: renderTemplate('abi.cuh.hbs', { version: FORMAT_VERSION }),
    prelude: renderTemplate('prelude.cuh.hbs', {}),
    kernels: code,
  });
}
