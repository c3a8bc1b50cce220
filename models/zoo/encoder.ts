import { fail } from '../../ir/errors.js';
import { makeTensor } from '../../ir/tensor.js';
import { heStd, unitStd } from '../random.js';
import { type CommonOptions, type ZooModel, ZooGraph, batchDim, requirePositiveInt } from './graph.js';
import { gelu, layerNorm, linearGemm, linearMatMul, scope } from './layers.js';

export interface EncoderOptions extends CommonOptions {
  readonly layers?: number; // default 4
  readonly hidden?: number; // default 256
  readonly heads?: number; // default 4
  readonly ffn?: number; // default 1024
  readonly seq?: number | string; // default 64; a symbol makes position/token-type ids Slice sub-graphs
  readonly vocabSize?: number; // default 8192
  readonly maxPositions?: number; // default 512
  readonly pooler?: boolean; // add BertPooler (Gather token 0 → Gemm → Tanh) as 'pooler_output'; default true
  readonly maskValue?: 'finfo-min' | 'minus-10000'; // what (1 - mask) is multiplied by; default finfo(f32).min as current HF
}

const LN_EPS = 1e-12;
const F32_MIN = -3.4028234663852886e38;

// A BERT-style encoder as HF transformers' BertModel exports through torch's TorchScript exporter:
// embeddings (Gather word/position/token-type + LayerNormalization), the extended attention mask
// (Unsqueeze → Unsqueeze → Cast → Sub(1, m) → Mul(min)), per layer Q/K/V MatMul + Add(bias, ·) and head
// split with a Shape → Gather → Unsqueeze → Concat → Reshape sub-graph, scaled dot-product attention,
// Erf-GELU FFN, post-LN residuals. Inputs input_ids / attention_mask i64 [N, S]; outputs
// 'last_hidden_state' [N, S, hidden] and (by default) 'pooler_output' [N, hidden].
export function encoder(opts: EncoderOptions): ZooModel {
  const L = requirePositiveInt('encoder', 'layers', opts.layers ?? 4);
  const H = requirePositiveInt('encoder', 'hidden', opts.hidden ?? 256);
  const heads = requirePositiveInt('encoder', 'heads', opts.heads ?? 4);
  const F = requirePositiveInt('encoder', 'ffn', opts.ffn ?? 1024);
  const V = requirePositiveInt('encoder', 'vocabSize', opts.vocabSize ?? 8192);
  const P = requirePositiveInt('encoder', 'maxPositions', opts.maxPositions ?? 512);
  const S = opts.seq ?? 64;
  if (typeof S === 'number') {
    requirePositiveInt('encoder', 'seq', S);
    if (S > P) fail('USAGE', `model zoo: encoder option 'seq' (${S}) exceeds 'maxPositions' (${P})`);
  }
  if (H % heads !== 0) fail('USAGE', `model zoo: encoder option 'hidden' (${H}) must be divisible by 'heads' (${heads})`);
  const dh = H / heads;
  const n = batchDim(opts);
  const g = new ZooGraph(opts.seed);
  const ids = g.input('input_ids');
  const mask = g.input('attention_mask');

  // input_ids.size(0) / size(1) as the exporter traces them
  const idsShape = g.op('Shape', '/embeddings/Shape', [ids]);
  const batchSize = g.op('Unsqueeze', '/embeddings/Unsqueeze', [
    g.op('Gather', '/embeddings/Gather', [idsShape, g.constI64('/embeddings/Constant', [0], [])], { axis: 0 }),
    g.constI64('/embeddings/Constant_1', [0]),
  ]);
  const seqLen = g.op('Unsqueeze', '/embeddings/Unsqueeze_1', [
    g.op('Gather', '/embeddings/Gather_1', [idsShape, g.constI64('/embeddings/Constant_2', [1], [])], { axis: 0 }),
    g.constI64('/embeddings/Constant_3', [0]),
  ]);

  // position_ids / token_type_ids buffers [1, maxPositions], sliced to S; folded to constants when S is static
  const ar = new BigInt64Array(P);
  for (let i = 0; i < P; i++) ar[i] = BigInt(i);
  const sliceIds = (name: string, values: BigInt64Array): string => {
    if (typeof S === 'number') return g.buffer(`/embeddings/${name}_folded`, makeTensor('i64', [1, S], values.slice(0, S)));
    const buf = g.buffer(`embeddings.${name}`, makeTensor('i64', [1, P], values));
    return g.op('Slice', `/embeddings/Slice_${name}`, [
      buf,
      g.constI64(`/embeddings/Constant_${name}_starts`, [0]),
      seqLen,
      g.constI64(`/embeddings/Constant_${name}_axes`, [1]),
      g.constI64(`/embeddings/Constant_${name}_steps`, [1]),
    ]);
  };
  const positionIds = sliceIds('position_ids', ar);
  const tokenTypeIds = g.op('Expand', '/embeddings/Expand', [
    sliceIds('token_type_ids', new BigInt64Array(P)),
    g.op('Concat', '/embeddings/Concat', [batchSize, seqLen], { axis: 0 }),
  ]);

  const table = (name: string, rows: number): string => g.param(`embeddings.${name}.weight`, [rows, H], g.rng.normalArray(rows * H, 1));
  const word = g.op('Gather', '/embeddings/word_embeddings/Gather', [table('word_embeddings', V), ids], { axis: 0 });
  const tokenType = g.op('Gather', '/embeddings/token_type_embeddings/Gather', [table('token_type_embeddings', 2), tokenTypeIds], { axis: 0 });
  const position = g.op('Gather', '/embeddings/position_embeddings/Gather', [table('position_embeddings', P), positionIds], { axis: 0 });
  let x = g.op('Add', '/embeddings/Add', [word, tokenType]);
  x = g.op('Add', '/embeddings/Add_1', [x, position]);
  x = layerNorm(g, 'embeddings.LayerNorm', x, H, LN_EPS);

  // get_extended_attention_mask: [N, S] → [N, 1, 1, S] additive mask
  let m = g.op('Unsqueeze', '/Unsqueeze', [mask, g.constI64('/Constant', [1])]);
  m = g.op('Unsqueeze', '/Unsqueeze_1', [m, g.constI64('/Constant_1', [2])]);
  m = g.op('Cast', '/Cast', [m], { to: 1 });
  m = g.op('Sub', '/Sub', [g.constF32('/Constant_2', [1]), m]);
  const extMask = g.op('Mul', '/Mul', [m, g.constF32('/Constant_3', [opts.maskValue === 'minus-10000' ? -10000 : F32_MIN])]);

  for (let l = 0; l < L; l++) {
    const last = l === L - 1;
    x = encoderLayer(g, `encoder.layer.${l}`, x, extMask, { H, heads, dh, F }, last ? 'last_hidden_state' : undefined);
  }

  const outputs = [{ name: 'last_hidden_state', dtype: 'f32' as const, shape: [n, S, H] }];
  if (opts.pooler ?? true) {
    const first = g.op('Gather', '/pooler/Gather', [x, g.constI64('/pooler/Constant', [0], [])], { axis: 1 });
    const dense = linearGemm(g, 'pooler.dense', first, H, H, unitStd(H));
    g.op('Tanh', '/pooler/activation/Tanh', [dense], {}, 'pooler_output');
    outputs.push({ name: 'pooler_output', dtype: 'f32', shape: [n, H] });
  }
  return g.finish({
    kind: 'encoder',
    name: opts.name ?? `encoder_l${L}_h${H}_a${heads}_f${F}_s${S}_s${opts.seed}`,
    description: `BERT-style encoder: ${L} layers, hidden ${H}, ${heads} heads, FFN ${F}, seq ${S}, vocab ${V}`,
    seed: opts.seed,
    inputs: [
      { name: 'input_ids', dtype: 'i64', shape: [n, S] },
      { name: 'attention_mask', dtype: 'i64', shape: [n, S] },
    ],
    outputs,
  });
}

interface Dims {
  readonly H: number;
  readonly heads: number;
  readonly dh: number;
  readonly F: number;
}

// x.size()[:-1] + tail, as the exporter traces it: one Shape → Gather → Unsqueeze per leading dim, Concat.
function shapeWithTail(g: ZooGraph, s: string, x: string, tag: string, tail: readonly number[]): string {
  const dims = [0, 1].map((d) => {
    const shape = g.op('Shape', `${s}/Shape_${tag}${d}`, [x]);
    const gathered = g.op('Gather', `${s}/Gather_${tag}${d}`, [shape, g.constI64(`${s}/Constant_${tag}g${d}`, [d], [])], { axis: 0 });
    return g.op('Unsqueeze', `${s}/Unsqueeze_${tag}${d}`, [gathered, g.constI64(`${s}/Constant_${tag}u${d}`, [0])]);
  });
  const tails = tail.map((t, i) => g.constI64(`${s}/Constant_${tag}t${i}`, [t]));
  return g.op('Concat', `${s}/Concat_${tag}`, [...dims, ...tails], { axis: 0 });
}

function encoderLayer(g: ZooGraph, path: string, x: string, extMask: string, d: Dims, output: string | undefined): string {
  const sa = `${path}.attention.self`;
  const s = scope(sa);
  const heads = (t: string, tag: string): string => {
    const shape = shapeWithTail(g, s, t, tag, [d.heads, d.dh]);
    const r = g.op('Reshape', `${s}/Reshape_${tag}`, [t, shape], { allowzero: 0 });
    return g.op('Transpose', `${s}/Transpose_${tag}`, [r], { perm: [0, 2, 1, 3] });
  };
  const q = heads(linearMatMul(g, `${sa}.query`, x, d.H, d.H, unitStd(d.H)), 'q');
  const k = heads(linearMatMul(g, `${sa}.key`, x, d.H, d.H, unitStd(d.H)), 'k');
  const v = heads(linearMatMul(g, `${sa}.value`, x, d.H, d.H, unitStd(d.H)), 'v');
  const kT = g.op('Transpose', `${s}/Transpose_kT`, [k], { perm: [0, 1, 3, 2] });
  let scores = g.op('MatMul', `${s}/MatMul`, [q, kT]);
  scores = g.op('Div', `${s}/Div`, [scores, g.constF32(`${s}/Constant_sqrt`, [Math.sqrt(d.dh)])]);
  scores = g.op('Add', `${s}/Add`, [scores, extMask]);
  const probs = g.op('Softmax', `${s}/Softmax`, [scores], { axis: -1 });
  let ctx = g.op('MatMul', `${s}/MatMul_1`, [probs, v]);
  ctx = g.op('Transpose', `${s}/Transpose_ctx`, [ctx], { perm: [0, 2, 1, 3] });
  ctx = g.op('Reshape', `${s}/Reshape_ctx`, [ctx, shapeWithTail(g, s, ctx, 'ctx', [d.H])], { allowzero: 0 });

  const ao = `${path}.attention.output`;
  let y = linearMatMul(g, `${ao}.dense`, ctx, d.H, d.H, unitStd(d.H));
  y = g.op('Add', `${scope(ao)}/Add`, [y, x]);
  const attnOut = layerNorm(g, `${ao}.LayerNorm`, y, d.H, LN_EPS);

  let h = linearMatMul(g, `${path}.intermediate.dense`, attnOut, d.H, d.F, heStd(d.H));
  h = gelu(g, `${path}.intermediate.intermediate_act_fn`, h);
  const o = `${path}.output`;
  let z = linearMatMul(g, `${o}.dense`, h, d.F, d.H, unitStd(d.F));
  z = g.op('Add', `${scope(o)}/Add`, [z, attnOut]);
  return layerNorm(g, `${o}.LayerNorm`, z, d.H, LN_EPS, output);
}
