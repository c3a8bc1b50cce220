// A small fleet on the CUDA backend, for compute-sanitizer (which slows every kernel down a lot):
//   tsx bench/cuda-sanitize.ts --prepare DIR     compiles the `loom demo --small` fleet into DIR/plan (no GPU use)
//   compute-sanitizer --tool memcheck node --import tsx bench/cuda-sanitize.ts DIR
//                                                 loads it on the GPU (cubin + CUDA graph), runs two ticks with
//                                                 different inputs, and checks them against the CPU backend
import path from 'node:path';
import type { Tensor } from '../ir/tensor.js';
import { loadPlan } from '../runtime/index.js';
import { compileFleet } from '../src/fleet/compile.js';
import { demoFleet, writeDemoFleet } from '../src/fleet/demo.js';
import { exampleInputs } from '../src/fleet/inputs.js';

const args = process.argv.slice(2);
if (args[0] === '--prepare') {
  const dir = args[1]!;
  await compileFleet(writeDemoFleet(dir, demoFleet(true)), path.join(dir, 'plan'), {});
  process.stdout.write(`prepared ${dir}/plan\n`);
} else {
  const planDir = path.join(args[0]!, 'plan');
  const gpu = await loadPlan(planDir, { backend: 'cuda' });
  const cpu = await loadPlan(planDir, { backend: 'cpu' });
  let worst = 0;
  for (const tick of [0, 1]) {
    const inputs: Record<string, Record<string, Tensor>> = {};
    gpu.plan.tenants.forEach((t, i) => {
      inputs[t.id] = exampleInputs(t, 1 + ((i + tick) % t.maxBatch), 10 * tick + i);
    });
    const g = await gpu.runTick(inputs);
    const c = await cpu.runTick(inputs);
    for (const [id, outs] of Object.entries(c)) {
      for (const [name, want] of Object.entries(outs)) {
        const a = g[id]![name]!.data as Float32Array;
        const b = want.data as Float32Array;
        let d = 0;
        let m = 0;
        for (let i = 0; i < b.length; i++) {
          d = Math.max(d, Math.abs(Number(a[i]) - Number(b[i])));
          m = Math.max(m, Math.abs(Number(b[i])));
        }
        worst = Math.max(worst, m ? d / m : d);
      }
    }
  }
  process.stdout.write(
    `sanitized fleet: ${gpu.plan.tenants.length} tenants, ${gpu.plan.launches.length} launches, graph ${String(gpu.backendInfo().graph)}, worst rel. error vs CPU ${worst.toExponential(2)}\n`,
  );
  gpu.close();
  cpu.close();
  if (!(worst <= 1e-4)) process.exitCode = 1;
}
