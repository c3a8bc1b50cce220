import type { Command } from 'commander';
import { OPS } from '../../ir/ops/index.js';
import { OPSET_MAX, OPSET_MIN } from '../onnx/import.js';

// `loom ops`: what an operator can expect to import before trying a model.
export function registerOps(program: Command): void {
  program
    .command('ops')
    .description('list the ONNX ops Loom imports (default domain), and the opset range')
    .option('--json', 'print as JSON')
    .action((flags: { json?: boolean }) => {
      const ops = Object.keys(OPS).sort();
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ opsets: [OPSET_MIN, OPSET_MAX], ops }, null, 1)}\n`);
        return;
      }
      process.stdout.write(`ONNX default-domain opsets ${OPSET_MIN}..${OPSET_MAX}; ${ops.length} ops (Constant nodes become constants):\n`);
      for (let i = 0; i < ops.length; i += 6)
        process.stdout.write(
          `  ${ops
            .slice(i, i + 6)
            .map((o) => o.padEnd(22))
            .join('')
            .trimEnd()}\n`,
        );
      process.stdout.write("older opsets' attribute forms (Slice, Squeeze, Clip, Pad, Reduce*, Upsample, ...) are rewritten on import\n");
    });
}
