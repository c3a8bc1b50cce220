import { writeFileSync } from 'node:fs';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { fail } from '../../ir/errors.js';
import { type BenchProgress, benchFleet, benchOccupancy, formatBench, formatOccupancy, parseOccupancy } from '../measure/index.js';

const BACKENDS = ['auto', 'cpu', 'cuda'] as const;

interface BenchFlags {
  backend: string;
  ticks: string;
  warmup: string;
  threads?: string;
  json?: string;
  manifest?: string;
  allowOutsidePaths?: boolean;
  occupancy?: string;
  quiet?: boolean;
  allLaunches?: boolean;
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('time a compiled fleet three ways on one backend: time-only, space-only and space-time (the plan); prints a table')
    .argument('<plan-dir>', 'a directory written by `loom compile`')
    .option('--backend <name>', `execution backend: ${BACKENDS.join(' | ')}`, 'auto')
    .option('--ticks <n>', 'timed ticks per mode', '200')
    .option('--warmup <n>', 'untimed ticks per mode before timing', '20')
    .option('--threads <n>', "CPU backend: worker threads per loaded plan (default: the backend's)")
    .option('--json <file>', 'also write the results as JSON (every sample, the fleet, the device, the date)')
    .option('--manifest <fleet.json>', "the fleet's manifest, when <plan-dir>/manifest.json is missing or its model paths moved")
    .option('--allow-outside-paths', "with --manifest: let its relative model paths lead out of its folder ('..', or symlinks to elsewhere)")
    .option('--occupancy <fractions>', 'instead: time the plan with only some tenants live, e.g. 0.1,0.5,1 (each in (0, 1]; rows relative to the full tick)')
    .option('--all-launches', 'in "predicted vs measured", list every launch (default: the ones the cost model misses most)')
    .option('--quiet', 'no progress output')
    .addHelpText(
      'after',
      [
        '',
        "The baselines are re-planned from the tenants' models (<plan-dir>/manifest.json, written by `loom compile`):",
        '  time-only   one launch per tenant step, tenants one after another, no batching across tenants',
        "  space-only  each tenant planned alone; all tenants' ticks in flight at once",
        '  space-time  the plan itself',
        'Every tenant runs at maxBatch rows; the three modes must compute the same outputs (checked first).',
        'With --occupancy, each fraction f runs ceil(f x tenants) live tenants (round robin over model kinds, each',
        'at maxBatch) through the plan and compares the tick with the full one; target: 10% costs <= 0.4x full.',
        'Example:',
        '  loom bench plan/ --backend cpu --ticks 100 --json bench.json',
        '  loom bench plan/ --occupancy 0.1,0.5,1',
        '',
      ].join('\n'),
    )
    .action(async (dir: string, flags: BenchFlags) => {
      if (!(BACKENDS as readonly string[]).includes(flags.backend)) fail('USAGE', `--backend must be one of ${BACKENDS.join(', ')}, got '${flags.backend}'`);
      const ticks = positiveInt(flags.ticks, '--ticks', 1);
      const warmup = positiveInt(flags.warmup, '--warmup', 0);
      const threads = flags.threads !== undefined ? positiveInt(flags.threads, '--threads', 1) : undefined;
      if (flags.occupancy !== undefined) {
        const fractions = parseOccupancy(flags.occupancy);
        const r = await benchOccupancy(dir, {
          fractions,
          backend: flags.backend as (typeof BACKENDS)[number],
          ticks,
          warmup,
          ...(threads !== undefined ? { threads } : {}),
        });
        process.stdout.write(`${formatOccupancy(r)}\n`);
        writeJson(flags, r);
        return;
      }
      const progress = benchProgress(flags.quiet === true);
      let result;
      try {
        result = await benchFleet(dir, {
          backend: flags.backend as (typeof BACKENDS)[number],
          ticks,
          warmup,
          ...(threads !== undefined ? { threads } : {}),
          ...(flags.manifest !== undefined ? { manifest: flags.manifest } : {}),
          ...(flags.allowOutsidePaths ? { allowOutsidePaths: true } : {}),
          onProgress: progress.onProgress,
        });
      } finally {
        progress.finish();
      }
      process.stdout.write(`${formatBench(result, { allLaunches: flags.allLaunches === true })}\n`);
      writeJson(flags, result);
    });
}

function writeJson(flags: BenchFlags, result: unknown): void {
  if (flags.json === undefined) return;
  try {
    writeFileSync(flags.json, `${JSON.stringify(result, null, 1)}\n`);
  } catch (e) {
    fail('IO', `cannot write '${flags.json}': ${(e as Error).message}`);
  }
  if (!flags.quiet) process.stderr.write(`loom: wrote ${flags.json}\n`);
}

function positiveInt(v: string, flag: string, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) fail('USAGE', `${flag} must be an integer >= ${min}, got '${v}'`);
  return n;
}

// A bar per phase on a terminal; nothing when stderr is not one (logs and pipes get only the table).
function benchProgress(quiet: boolean): { onProgress: (p: BenchProgress) => void; finish: () => void } {
  const stream = process.stderr;
  if (quiet || !stream.isTTY) return { onProgress: () => {}, finish: () => {} };
  let bar: cliProgress.SingleBar | null = null;
  let phase = '';
  return {
    onProgress: (p) => {
      if (p.phase !== phase) {
        bar?.stop();
        phase = p.phase;
        bar = new cliProgress.SingleBar(
          { format: `loom: bench ${p.phase.padEnd(10)} [{bar}] {value}/{total} {label}`, stream, hideCursor: true, clearOnComplete: false },
          cliProgress.Presets.shades_classic,
        );
        bar.start(p.total, p.done, { label: p.label });
      } else bar?.update(p.done, { label: p.label });
    },
    finish: () => bar?.stop(),
  };
}
