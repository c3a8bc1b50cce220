import type { Command } from 'commander';
import { fail } from '../../ir/errors.js';
import { ZOO, ZOO_KINDS, isZooKind, writeZooModel } from '../../models/index.js';

export function registerZoo(program: Command): void {
  program
    .command('zoo')
    .description('write a seeded model-zoo ONNX model (real ONNX, default sizes as documented by --list)')
    .argument('[kind]', `one of: ${ZOO_KINDS.join(', ')}`)
    .option('-o, --output <file>', 'where to write the .onnx file (default: <kind>-s<seed>.onnx)')
    .option('--seed <n>', 'weights seed; different seeds give different weights', '1')
    .option('--list', 'list the kinds and what they build')
    .action((kind: string | undefined, flags: { output?: string; seed: string; list?: boolean }) => {
      if (flags.list || kind === undefined) {
        for (const k of ZOO_KINDS) process.stdout.write(`${k.padEnd(11)} ${ZOO[k].summary}\n`);
        return;
      }
      if (!isZooKind(kind)) fail('USAGE', `unknown zoo kind '${kind}' (known: ${ZOO_KINDS.join(', ')})`);
      const seed = Number(flags.seed);
      if (!Number.isInteger(seed) || seed < 0) fail('USAGE', `--seed must be a non-negative integer, got '${flags.seed}'`);
      const path = flags.output ?? `${kind}-s${seed}.onnx`;
      const model = writeZooModel(kind, { seed }, path);
      process.stderr.write(`loom: wrote ${kind} (seed ${seed}, ${model.bytes.length} bytes) → ${path}\n`);
    });
}
