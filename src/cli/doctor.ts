import type { Command } from 'commander';
import { probeMachine } from './doctor-probe.js';

const mark = (ok: boolean) => (ok ? 'ok ' : '-- ');

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('report what this machine offers Loom: Node, CUDA toolkit, cuBLAS, GPU, and which backend auto picks')
    .option('--json', 'print the report as JSON')
    .action((flags: { json?: boolean }) => {
      const r = probeMachine();
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        return;
      }
      const lines = [
        `${mark(r.node.ok)} node        ${r.node.version} (needs ${r.node.required}), ${r.platform}, ${r.cpus} CPUs, ${r.memoryGiB} GiB`,
        `${mark(r.cudaToolkit.found)} cuda        ${r.cudaToolkit.found ? `nvcc ${r.cudaToolkit.version ?? '?'} at ${r.cudaToolkit.nvcc}` : 'no CUDA toolkit found (looked in $CUDA_HOME, /usr/local/cuda, $PATH)'}`,
        `${mark(r.cublas.found)} cublas      ${r.cublas.path ?? 'libcublas not found'}`,
        `${mark(r.gpu.found)} gpu         ${r.gpu.devices.length ? `${r.gpu.devices.join(', ')} (driver ${r.gpu.driver ?? '?'})` : r.gpu.note}`,
        `${mark(r.addon.built)} addon       ${r.addon.built ? `backends: ${r.addon.backends.join(', ')} (${r.addon.path})` : (r.addon.note ?? 'not built')}`,
        `    backend     auto → ${r.backend.auto}: ${r.backend.reason}`,
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
