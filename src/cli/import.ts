import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { fail } from '../../ir/errors.js';
import { printGraph } from '../../ir/print.js';
import { importModelFile } from '../onnx/import.js';
import { canonicalize } from '../../ir/passes/index.js';
import { graphToJson } from './graph-json.js';
import { collectDim } from './options.js';

interface ImportFlags {
  emit: string;
  dim?: Record<string, number>;
  raw?: boolean;
  output?: string;
}

export function registerImport(program: Command): void {
  program
    .command('import')
    .description("import an ONNX model into Loom's IR, canonicalize it, and print the IR")
    .argument('<model.onnx>', 'ONNX model file (external data is read from its folder)')
    .option('--emit <form>', 'what to print: ir (readable text) or json', 'ir')
    .option('--dim <name=size>', 'bind a symbolic dimension (repeatable), e.g. --dim seq=64', collectDim)
    .option('--raw', 'skip the canonicalizing passes (print the IR exactly as imported)')
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .addHelpText('after', '\nExample:\n  loom import models/torch/onnx/torch_cnn_bn.onnx --emit ir\n')
    .action((model: string, flags: ImportFlags) => {
      if (flags.emit !== 'ir' && flags.emit !== 'json') fail('USAGE', `--emit must be ir or json, got '${flags.emit}'`);
      const imported = importModelFile(model, { dims: flags.dim ?? {} });
      const graph = flags.raw ? imported : canonicalize(imported);
      const text = flags.emit === 'ir' ? printGraph(graph) : `${JSON.stringify(graphToJson(graph), null, 1)}\n`;
      if (flags.output) {
        try {
          writeFileSync(flags.output, text);
        } catch (e) {
          fail('IO', `cannot write '${flags.output}': ${(e as Error).message}`);
        }
      } else process.stdout.write(text);
      const summary = `${graph.nodes.length} nodes (${imported.nodes.length} as imported), ${graph.constants.size} constants`;
      process.stderr.write(`loom: imported ${model}: ${summary}${flags.output ? ` → ${flags.output}` : ''}\n`);
    });
}
