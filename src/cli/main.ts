import { Command, CommanderError } from 'commander';
import { reportError } from './errors.js';

type Register = (program: Command) => void;

// The commands in help order, each loaded only when needed: `loom compile` need not load the server's
// modules (fastify, gRPC) and the rest, a third of a small recompile's time on the 2-core machine.
const COMMANDS: readonly (readonly [string, () => Promise<Register>])[] = [
  ['import', async () => (await import('./import.js')).registerImport],
  ['zoo', async () => (await import('./zoo.js')).registerZoo],
  ['ops', async () => (await import('./ops.js')).registerOps],
  ['doctor', async () => (await import('./doctor.js')).registerDoctor],
  ['compile', async () => (await import('./compile.js')).registerCompile],
  ['run', async () => (await import('./run.js')).registerRun],
  ['inspect', async () => (await import('./inspect.js')).registerInspect],
  ['demo', async () => (await import('./demo.js')).registerDemo],
  ['serve', async () => (await import('./serve.js')).registerServe],
  ['bench', async () => (await import('./bench.js')).registerBench],
  ['calibrate', async () => (await import('./calibrate.js')).registerCalibrate],
  ['deploy', async () => (await import('./deploy.js')).registerDeploy],
];

// The program with every command, or with `only` (the command named on the command line) alone.
export async function buildProgram(only?: string): Promise<Command> {
  const program = new Command();
  program
    .name('loom')
    .description("Compile many tenants' ONNX models into one space-time batched GPU plan, and run it.")
    .version('0.1.0')
    .option('--verbose', 'print stack traces with errors')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  const wanted = COMMANDS.filter(([name]) => only === undefined || name === only);
  const registers = await Promise.all(wanted.map(([, load]) => load()));
  for (const register of registers) register(program);
  return program;
}

// The command argv names, when it names one (the first argument that is not an option); else undefined.
function commandOf(argv: readonly string[]): string | undefined {
  const first = argv.slice(2).find((a) => !a.startsWith('-'));
  return COMMANDS.some(([name]) => name === first) ? first : undefined;
}

// Returns the process exit code: 0 ok, 2 bad input (LoomError / usage), 1 Loom bug.
export async function runCli(argv: readonly string[]): Promise<number> {
  const program = await buildProgram(commandOf(argv));
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
