import { isLoomError } from '../../ir/errors.js';

// CLI error policy: a LoomError is the user's problem — one line on stderr, exit 2.
// Anything else is Loom's bug — still one line unless --verbose, exit 1.
export function reportError(e: unknown, verbose: boolean): number {
  if (isLoomError(e)) {
    process.stderr.write(`loom: error [${e.code}]: ${e.message}\n`);
    if (verbose && e.stack) process.stderr.write(`${e.stack}\n`);
    return 2;
  }
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`loom: internal error: ${msg} (this is a bug in Loom; rerun with --verbose for the stack)\n`);
  if (verbose && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  return 1;
}
