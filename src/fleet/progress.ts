// Progress of a long compile on stderr: a cli-progress bar on a terminal once the work has taken more than
// a moment; one line per step when stderr is not a terminal (logs, CI).
import cliProgress from 'cli-progress';
import type { CompileProgress } from './compile.js';

const BAR_DELAY_MS = 400; // short compiles finish before any bar appears

export interface ProgressReporter {
  readonly onProgress: (p: CompileProgress) => void;
  finish(): void;
}

export function createProgressReporter(opts: { quiet?: boolean; stream?: NodeJS.WriteStream } = {}): ProgressReporter {
  const stream = opts.stream ?? process.stderr;
  if (opts.quiet) return { onProgress: () => {}, finish: () => {} };
  if (!stream.isTTY) {
    return {
      onProgress: (p) => {
        if (p.done < p.total) stream.write(`loom: [${p.done + 1}/${p.total}] ${p.label}\n`);
      },
      finish: () => {},
    };
  }
  const startedAt = Date.now();
  let bar: cliProgress.SingleBar | null = null;
  return {
    onProgress: (p) => {
      if (!bar && Date.now() - startedAt < BAR_DELAY_MS) return;
      if (!bar) {
        bar = new cliProgress.SingleBar(
          { format: 'loom: compile [{bar}] {value}/{total} {label}', stream, hideCursor: true, clearOnComplete: false },
          cliProgress.Presets.shades_classic,
        );
        bar.start(p.total, p.done, { label: p.label });
      } else bar.update(p.done, { label: p.label });
    },
    finish: () => bar?.stop(),
  };
}
