// The `loom demo` fleet (full size: 8 MLPs, 4 LSTMs, 2 ResNet-18, 2 encoders, maxBatch 4) written and compiled
// under <work>/demo/, reused while the zoo's and the compiler's sources (src/fleet/demo.ts among them) are unchanged.
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { compileFleet } from '../../src/fleet/compile.js';
import type { CompileBranching as Branching } from '../../src/fleet/branch-measure.js';
import { demoFleet, writeDemoFleet } from '../../src/fleet/demo.js';
import { createProgressReporter } from '../../src/fleet/progress.js';
import { COMPILER_SOURCES, ZOO_SOURCES, readStamp, sourcesFingerprint, writeStamp } from '../fleet-table/prepare.js';

export const DEMO_NAME = 'demo';
const STAMP = 'demo-stamp.json';

export function describeDemo(): string {
  const counts = new Map<string, number>();
  for (const t of demoFleet(false)) counts.set(t.kind, (counts.get(t.kind) ?? 0) + 1);
  return `loom demo: ${[...counts].map(([k, n]) => `${n} ${k}`).join(' + ')} (maxBatch 4)`;
}

export async function prepareDemo(
  work: string,
  opts: {
    readonly nvcc: 'auto' | 'off';
    readonly branching?: Branching;
    readonly fresh?: boolean;
    readonly quietProgress?: boolean;
    readonly log?: (m: string) => void;
  },
): Promise<{ planDir: string; reused: boolean; seconds: number }> {
  const dir = path.join(work, DEMO_NAME);
  const planDir = path.join(dir, 'plan');
  const fleet = demoFleet(false);
  const hash = createHash('sha256')
    .update(JSON.stringify({ v: 1, fleet, nvcc: opts.nvcc, branching: opts.branching ?? 'never' }))
    .update(sourcesFingerprint([...ZOO_SOURCES, ...COMPILER_SOURCES]))
    .digest('hex')
    .slice(0, 16);
  const t0 = Date.now();
  if (!opts.fresh && readStamp(path.join(dir, STAMP), hash)) {
    opts.log?.(`${DEMO_NAME}: reusing the compiled plan ${planDir}`);
    return { planDir, reused: true, seconds: 0 };
  }
  rmSync(dir, { recursive: true, force: true });
  const manifest = writeDemoFleet(dir, fleet);
  const progress = createProgressReporter({ quiet: opts.quietProgress ?? false });
  try {
    await compileFleet(manifest, planDir, { nvcc: opts.nvcc, onProgress: progress.onProgress, ...(opts.branching ? { branching: opts.branching } : {}) });
  } finally {
    progress.finish();
  }
  writeStamp(path.join(dir, STAMP), hash, {});
  const seconds = (Date.now() - t0) / 1e3;
  opts.log?.(`${DEMO_NAME}: models and plan in ${seconds.toFixed(1)} s`);
  return { planDir, reused: false, seconds };
}
