import { Command, CommanderError } from 'commander';
import { registerBench } from './bench.js';
import { registerCalibrate } from './calibrate.js';
import { registerCompile } from './compile.js';
import { registerDemo } from './demo.js';
import { registerDeploy } from './deploy.js';
import { registerDoctor } from './doctor.js';
import { reportError } from './errors.js';
import { registerImport } from './import.js';
import { registerInspect } from './inspect.js';
import { registerOps } from './ops.js';
import { registerRun } from './run.js';
import { registerServe } from './serve.js';
import { registerZoo } from './zoo.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('loom')
    .description("Compile many tenants' ONNX models into one space-time batched GPU plan, and run it.")
    .version('0.1.0')
    .option('--verbose', 'print stack traces with errors')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerImport(program);
  registerZoo(program);
  registerOps(program);
  registerDoctor(program);
  registerCompile(program);
  registerRun(program);
  registerInspect(program);
  registerDemo(program);
  registerServe(program);
  registerBench(program);
  registerCalibrate(program);
  registerDeploy(program);
  return program;
}

// Returns the process exit code: 0 ok, 2 bad input (LoomError / usage), 1 Loom bug.
export async function runCli(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version exit cleanly; usage errors were already printed by commander
      return e.exitCode === 0 ? 0 : 2;
    }
    return reportError(e, program.opts().verbose === true || argv.includes('--verbose'));
  }
}
