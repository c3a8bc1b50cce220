// `loom …` run in process (so the sources under test run, not dist/), its stdout and stderr captured.
import { vi } from 'vitest';
import { runCli } from '../../src/cli/main.js';

export async function loomInProcess(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  try {
    return { code: await runCli(['node', 'loom', ...args]), out, err };
  } finally {
    vi.restoreAllMocks();
  }
}
