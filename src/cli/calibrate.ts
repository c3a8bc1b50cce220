import { renameSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { fail } from '../../ir/errors.js';
import { calibrate, remeasureTickIo } from '../calibrate/run.js';
import { formatProfile } from '../calibrate/summary.js';
import { profileJson, readProfile } from '../calibrate/profile.js';
import { refitProfile } from '../calibrate/refit.js';
import { profileSlug } from '../calibrate/shipped.js';

const BACKENDS = ['auto', 'cpu', 'cuda'] as const;

interface CalibrateFlags {
  backend: string;
  out?: string;
  quick?: boolean;
  threads?: string;
  quiet?: boolean;
  refit?: string;
  tickIo?: string;
}

export function registerCalibrate(program: Command): void {
  program
    .command('calibrate')
    .description(
      "measure this device's launch costs (GEMMs by shape and precision, generated kernels, launch overhead, overlap) and write a device profile for `loom compile --profile`",
    )
    .option('--backend <name>', `the backend to calibrate: ${BACKENDS.join(' | ')}`, 'auto')
    .option('--out <file.json>', 'where to write the profile (default: <device>.json in the current folder)')
    .option('--quick', 'a coarse grid: under a minute on a GPU, seconds on a CPU')
    .option('--threads <n>', "CPU backend: worker threads (default: the backend's)")
    .option('--quiet', 'no progress output')
    .option('--refit <profile.json>', "instead: fit a profile's kinds again from its own measurements by today's kinds (no GPU), written to --out or over it")
    .option(
      '--tick-io <profile.json>',
      "instead: measure only the tick's own cost (tick.io, full ticks of one-tenant plans: seconds) on this device into a profile of this card, written to --out or over it",
    )
    .addHelpText(
      'after',
      [
        '',
        'The profile (JSON, format loom-device-profile version 1) is named by the card (or CPU) and dated; it holds every',
        'measurement and, per launch kind, the fitted cost function the planner then uses:',
        '  us = (overhead + max(FLOPs / FLOP/s, bytes / bytes/s)) x correction     (README "Calibrating the cost model")',
        'Recalibrate after a driver, CUDA or Loom upgrade, or on another card model.',
        'Examples:',
        '  loom calibrate --quick --out profiles/h100-quick.json',
        '  loom calibrate --backend cuda --out profiles/nvidia-h100-80gb-hbm3.json',
        '  loom compile fleet.json -o plan/ --profile profiles/nvidia-h100-80gb-hbm3.json',
        '',
      ].join('\n'),
    )
    .action(async (flags: CalibrateFlags) => {
      if (flags.refit !== undefined && flags.tickIo !== undefined) fail('USAGE', '--refit and --tick-io each rewrite a profile: give one');
      if (flags.tickIo !== undefined) {
        const { profile } = readProfile(flags.tickIo);
        const before = profile.kinds['tick.io']?.fit;
        const next = await remeasureTickIo(profile, { onProgress: progressLine(flags.quiet === true, Date.now()) });
        const after = next.kinds['tick.io']!.fit;
        const out = flags.out ?? flags.tickIo;
        writeAtomically(out, profileJson(next));
        const line = (f: typeof after | undefined) => (f ? `${f.overheadUs.toFixed(2)} µs + bytes at ${(f.bytesPerS / 1e9).toFixed(1)} GB/s` : 'none');
        process.stdout.write(`tick.io: ${line(before)} → ${line(after)}\nwrote ${out}\n`);
        return;
      }
      if (flags.refit !== undefined) {
        const { profile } = readProfile(flags.refit);
        const { profile: refit, changed } = refitProfile(profile);
        const out = flags.out ?? flags.refit;
        writeAtomically(out, profileJson(refit));
        process.stdout.write(`${changed.length === 0 ? "every kind already fitted by today's kinds" : `refitted ${changed.join(', ')}`}\nwrote ${out}\n`);
        return;
      }
      if (!(BACKENDS as readonly string[]).includes(flags.backend)) fail('USAGE', `--backend must be one of ${BACKENDS.join(', ')}, got '${flags.backend}'`);
      let threads: number | undefined;
      if (flags.threads !== undefined) {
        threads = Number(flags.threads);
        if (!Number.isInteger(threads) || threads < 1) fail('USAGE', `--threads must be a positive integer, got '${flags.threads}'`);
      }
      const started = Date.now();
      const say = progressLine(flags.quiet === true, started);
      const profile = await calibrate({
        backend: flags.backend as (typeof BACKENDS)[number],
        quick: flags.quick === true,
        ...(threads !== undefined ? { threads } : {}),
        onProgress: say,
        loomVersion: program.version() ?? 'unknown',
      });
      const out = flags.out ?? `${profileSlug(profile.name, profile.backend)}.json`;
      writeAtomically(out, profileJson(profile));
      process.stdout.write(
        `${formatProfile(profile)}\nwrote ${out} (${((Date.now() - started) / 1000).toFixed(1)} s); use it with: loom compile <fleet> -o <plan-dir> --profile ${out}\n`,
      );
    });
}

// "[  12.3 s] msg" on stderr, seconds since `started`; nothing when quiet.
function progressLine(quiet: boolean, started: number): (msg: string) => void {
  return (msg) => {
    if (!quiet) process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${msg}\n`);
  };
}

function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  } catch (e) {
    fail('IO', `cannot write the profile '${file}': ${(e as Error).message}`);
  }
}
