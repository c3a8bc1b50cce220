// Whether the cuda-emu tests can run here: the native addon must have the cuda-emu backend (POSIX builds) and a
// host C++ compiler must build the emulation (the one the addon was built with, on any machine that ran
// `npm ci`). Elsewhere they skip with a printed reason.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { nativeAddonInfo, nativeAddonPath } from '../../runtime/native-addon.js';

function probe(): string | null {
  if (!existsSync(nativeAddonPath())) return `the native addon is not built (${nativeAddonPath()})`;
  try {
    if (!nativeAddonInfo().backends.includes('cuda-emu')) return 'the native addon was built without the cuda-emu backend (not POSIX)';
  } catch (e) {
    return `the native addon does not load: ${(e as Error).message}`;
  }
  const cxx = process.env.LOOM_EMU_CXX ?? 'c++';
  try {
    execFileSync(cxx, ['--version'], { stdio: 'ignore' });
  } catch {
    return `no host C++ compiler ('${cxx}'; set LOOM_EMU_CXX)`;
  }
  return null;
}

export const EMU_SKIP_REASON = probe();
if (EMU_SKIP_REASON) process.stdout.write(`cuda-emu: skipped: ${EMU_SKIP_REASON}\n`);
