import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { readPlanDir } from '../../codegen/index.js';
import { fail } from '../../ir/errors.js';
import type { Tensor } from '../../ir/tensor.js';
import { loadPlan } from '../../runtime/index.js';
import { readNpy, writeNpy } from '../../runtime/npy.js';
import { checkTenantInputs, describeIO } from '../fleet/inputs.js';

interface RunFlags {
  tenant: string;
  input?: Record<string, string>;
  out: string;
  backend: string;
}

const BACKENDS = ['auto', 'cpu', 'cuda', 'cuda-emu'] as const;

// `--input name=file.npy`, repeatable.
function collectInput(value: string, prev: Record<string, string> = {}): Record<string, string> {
  const m = /^([^=]+)=(.+)$/.exec(value);
  if (!m) fail('USAGE', `--input expects name=file.npy, got '${value}'`);
  if (m[1]! in prev) fail('USAGE', `--input '${m[1]}' is given twice`);
  return { ...prev, [m[1]!]: m[2]! };
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run one request for one tenant through a compiled plan: .npy inputs in, .npy outputs out')
    .argument('<plan-dir>', 'a directory written by `loom compile`')
    .requiredOption('--tenant <id>', 'the tenant to run')
    .option('--input <name=file.npy>', 'an input tensor (repeatable); rows along the batch axis: 1..maxBatch', collectInput)
    .requiredOption('--out <dir>', "where to write <output name>.npy for each of the tenant's outputs")
    .option('--backend <name>', `execution backend: ${BACKENDS.join(' | ')}`, 'auto')
    .addHelpText('after', '\nExample:\n  loom run plan/ --tenant fraud-a --input input=x.npy --out out/\n')
    .action(async (dir: string, flags: RunFlags) => {
      if (!(BACKENDS as readonly string[]).includes(flags.backend)) fail('USAGE', `--backend must be one of ${BACKENDS.join(', ')}, got '${flags.backend}'`);
      const plan = readPlanDir(dir);
      const tenant = plan.tenants.find((t) => t.id === flags.tenant);
      if (!tenant) fail('USAGE', `plan '${dir}' has no tenant '${flags.tenant}' (tenants: ${plan.tenants.map((t) => t.id).join(', ')})`);
      const files = flags.input ?? {};
      if (Object.keys(files).length === 0) {
        fail('USAGE', `give the tenant's inputs with --input: ${tenant.inputs.map((io) => `${io.name}=<file.npy> (${describeIO(io)})`).join(' ')}`);
      }
      const inputs: Record<string, Tensor> = {};
      for (const [name, file] of Object.entries(files)) {
        // an input bigger than the tenant takes at maxBatch rows is refused from its header, before its data
        // is read (an unknown name, or a smaller mismatch, is reported by the shared check below)
        const io = tenant.inputs.find((x) => x.name === name);
        const beforeData = (h: { dtype: string; shape: readonly number[]; bytes: number }): void => {
          if (io && h.bytes > io.bytes) {
            fail(
              'EVAL',
              `'${file}': input '${name}' of tenant '${tenant.id}' is ${h.dtype}[${h.shape.join(',')}] (${h.bytes} bytes), more than it takes: ${describeIO(io)} (${io.bytes} bytes at ${tenant.maxBatch} rows)`,
            );
          }
        };
        inputs[name] = readNpy(file, { beforeData });
      }
      const rows = checkTenantInputs(tenant, inputs, (n) => files[n]);

      const loaded = await loadPlan(dir, { backend: flags.backend as (typeof BACKENDS)[number] });
      let outputs: Record<string, Tensor>;
      try {
        const result = await loaded.runTick({ [tenant.id]: inputs });
        outputs = result[tenant.id] ?? {};
      } finally {
        loaded.close();
      }
      try {
        mkdirSync(flags.out, { recursive: true });
      } catch (e) {
        fail('IO', `cannot create output folder '${flags.out}': ${(e as Error).message}`);
      }
      const written: string[] = [];
      for (const io of tenant.outputs) {
        const t = outputs[io.name];
        if (!t) throw new Error(`the runtime returned no output '${io.name}' for tenant '${tenant.id}'`);
        const file = path.join(flags.out, `${safeFileName(io.name)}.npy`);
        writeNpy(file, t);
        written.push(`${file} ${t.dtype}[${t.shape.join(',')}]`);
      }
      process.stderr.write(`loom: ran tenant '${tenant.id}' (${rows} row${rows === 1 ? '' : 's'}) on ${loaded.backend} → ${written.join(', ')}\n`);
    });
}

// ONNX output names may hold '/' or ':' (exporter paths); keep file names portable.
function safeFileName(name: string): string {
  const s = name.replace(/[^A-Za-z0-9._-]+/g, '_');
  return s === '' || s === '.' || s === '..' ? 'output' : s;
}
