import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { readPlanDir } from '../../codegen/index.js';
import { fail } from '../../ir/errors.js';
import type { Tensor } from '../../ir/tensor.js';
import { loadPlan } from '../../runtime/index.js';
import { measuredText } from '../fleet/branch-measure.js';
import { compileFleet } from '../fleet/compile.js';
import { DEMO_MAX_BATCH, demoFleet, writeDemoFleet } from '../fleet/demo.js';
import { exampleInputs } from '../fleet/inputs.js';
import { loadOracle, relativeError } from '../fleet/oracle.js';
import { createProgressReporter } from '../fleet/progress.js';
import { formatTotals } from './inspect.js';
import { hostBranching } from './host-branching.js';

const TOLERANCE = 1e-4; // fp32, norm-wise relative

interface DemoFlags {
  dir?: string;
  small?: boolean;
  quiet?: boolean;
  backend: string;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('build a mixed fleet from the model zoo, compile it, inspect it, run one tick and check every tenant against onnxruntime')
    .option('--dir <dir>', 'where to write the models, manifest and plan (default: a new temporary folder)')
    .option('--small', 'the same architectures at small sizes (seconds instead of minutes)')
    .option('--backend <name>', 'auto | cpu | cuda', 'auto')
    .option('--quiet', 'no progress output')
    .action(async (flags: DemoFlags) => {
      const out = (s: string) => process.stdout.write(`${s}\n`);
      const dir = flags.dir ?? mkdtempSync(path.join(os.tmpdir(), 'loom-demo-'));
      const fleet = demoFleet(flags.small === true);
      const counts = new Map<string, number>();
      for (const t of fleet) counts.set(t.kind, (counts.get(t.kind) ?? 0) + 1);
      out(
        `loom demo: ${fleet.length} tenants (${[...counts].map(([k, n]) => `${n} ${k}`).join(', ')}), different weights each, maxBatch ${DEMO_MAX_BATCH}${flags.small ? ', small sizes' : ''}`,
      );
      const manifest = writeDemoFleet(dir, fleet);
      out(`models and manifest: ${manifest}`);

      const planDir = path.join(dir, 'plan');
      const branching = hostBranching(flags.backend as 'auto' | 'cpu' | 'cuda');
      const progress = createProgressReporter({ quiet: flags.quiet === true });
      let t0 = Date.now();
      try {
        await compileFleet(manifest, planDir, {
          onProgress: progress.onProgress,
          branching: branching.branching,
          measureBackend: flags.backend as 'auto' | 'cpu' | 'cuda',
        });
      } finally {
        progress.finish();
      }
      out(
        `compiled in ${((Date.now() - t0) / 1000).toFixed(1)}s → ${planDir}   (loom inspect ${planDir} for every launch; branching ${branching.branching}: ${branching.reason})\n`,
      );
      const plan = readPlanDir(planDir);
      const measured = plan.cost.branches?.measured;
      if (measured) out(`branching measure: ${measuredText(measured, (plan.cost.branches?.tenants.length ?? 0) > 0)}\n`);
      out(`${formatTotals(plan)}\n`);

      const loaded = await loadPlan(planDir, { backend: flags.backend as 'auto' | 'cpu' | 'cuda' });
      const inputs: Record<string, Record<string, Tensor>> = {};
      plan.tenants.forEach((t, i) => {
        inputs[t.id] = exampleInputs(t, 1 + (i % t.maxBatch), 1000 + i);
      });
      let outputs: Record<string, Record<string, Tensor>>;
      try {
        t0 = Date.now();
        outputs = await loaded.runTick(inputs);
        out(`one tick on the ${loaded.backend} backend: ${Date.now() - t0} ms for ${plan.tenants.length} tenants\n`);
      } finally {
        loaded.close();
      }

      const oracle = await loadOracle();
      if (!oracle.ok) {
        out(`check against onnxruntime skipped: ${oracle.reason}`);
        return;
      }
      const rows: string[][] = [];
      const failed: string[] = [];
      for (const [i, t] of plan.tenants.entries()) {
        const want = await oracle.run(path.join(dir, t.model), inputs[t.id]!);
        const got = outputs[t.id] ?? {};
        let worst = 0;
        let note = '';
        for (const [name, w] of Object.entries(want)) {
          const g = got[name];
          const e = g ? relativeError(g, w) : Infinity;
          if (!g) note = `no output '${name}'`;
          else if (!Number.isFinite(e) && g.shape.join(',') !== w.shape.join(',')) note = `'${name}' shape [${g.shape}] vs [${w.shape}]`;
          if (!(e <= worst)) worst = e;
        }
        const ok = worst <= TOLERANCE;
        if (!ok) failed.push(t.id);
        rows.push([
          t.id,
          t.model,
          String(1 + (i % t.maxBatch)),
          Object.keys(want).join(','),
          worst.toExponential(2),
          ok ? 'ok' : `FAIL${note ? ` (${note})` : ''}`,
        ]);
      }
      const header = ['tenant', 'model', 'rows', 'outputs', 'max rel. error', `vs onnxruntime (≤ ${TOLERANCE})`];
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
      const line = (r: readonly string[]) =>
        r
          .map((s, i) => s.padEnd(widths[i]!))
          .join('  ')
          .trimEnd();
      out([line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n'));
      if (failed.length > 0) fail('EVAL', `demo: ${failed.length} of ${plan.tenants.length} tenants differ from onnxruntime: ${failed.join(', ')}`);
      out(`\nall ${plan.tenants.length} tenants match onnxruntime`);
    });
}
