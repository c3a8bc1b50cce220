// A fleet of N copies of one architecture that differ in every f32 constant, scalars included (weights,
// attention scale, GELU's constants, mask values): copy i has them scaled by 1 - 0.01 * (i + 1), as exports
// of one architecture with other weights and scalars. Writes OUT/models/copy-<i>.onnx and OUT/fleet.json for
// `loom compile` / `loom bench` (the planner's per-tenant constants: src/planner/eltwise-params.ts).
// usage: npx tsx bench/scaled-copies.ts OUT N MODEL.onnx|zoo:KIND[:JSON-OPTIONS] [MAX_BATCH]
//   e.g. npx tsx bench/scaled-copies.ts /tmp/bert3 3 models/torch/onnx/hf_bert_tiny.onnx
//        npx tsx bench/scaled-copies.ts /tmp/enc3 3 'zoo:encoder:{"seq":64}' 1
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fail } from '../ir/errors.js';
import { generateModel, isZooKind } from '../models/index.js';
import { scaleFloatConstants } from '../test/support/scaled-constants.js';

function modelBytes(source: string, seed: number): Uint8Array {
  if (!source.startsWith('zoo:')) return readFileSync(source);
  const [, kind = '', opts = '{}'] = /^zoo:([^:]+)(?::(.*))?$/.exec(source) ?? [];
  if (!isZooKind(kind)) fail('USAGE', `scaled-copies: unknown zoo kind '${kind}'`);
  return generateModel(kind, { ...(JSON.parse(opts) as object), seed } as never).bytes;
}

function main(): void {
  const [out, n, source, maxBatch = '1'] = process.argv.slice(2);
  if (!out || !n || !source) fail('USAGE', 'usage: npx tsx bench/scaled-copies.ts OUT N MODEL.onnx|zoo:KIND[:JSON-OPTIONS] [MAX_BATCH]');
  const count = Number(n);
  if (!Number.isInteger(count) || count < 1 || count > 99) fail('USAGE', `scaled-copies: N must be an integer in 1..99, got '${n}'`);
  mkdirSync(path.join(out, 'models'), { recursive: true });
  const tenants = Array.from({ length: count }, (_, i) => {
    const model = `models/copy-${i}.onnx`;
    writeFileSync(path.join(out, model), scaleFloatConstants(modelBytes(source, 700 + i), 1 - 0.01 * (i + 1)));
    return { id: `copy-${i}`, model, maxBatch: Number(maxBatch) };
  });
  writeFileSync(path.join(out, 'fleet.json'), `${JSON.stringify({ tenants, precision: 'fp32' }, null, 2)}\n`);
  process.stdout.write(`${path.join(out, 'fleet.json')}: ${count} copies of ${source}\n`);
}

main();
