// Whether the GPU tests can run here: the native addon must be built with the CUDA backend AND the CUDA
// runtime must see a GPU. Elsewhere (CI, developer machines without a GPU) they skip with a printed reason.
import { existsSync } from 'node:fs';
import { nativeAddonInfo, nativeAddonPath } from '../../runtime/native-addon.js';

function probe(): string | null {
  if (!existsSync(nativeAddonPath())) return `the native addon is not built (${nativeAddonPath()})`;
  let info;
  try {
    info = nativeAddonInfo();
  } catch (e) {
    return `the native addon does not load: ${(e as Error).message}`;
  }
  if (!info.backends.includes('cuda')) return 'the native addon was built without the CUDA backend (no CUDA toolkit with cuBLAS at build time)';
  if (!info.cudaDevices) return 'no CUDA GPU is visible';
  return null;
}

export const GPU_SKIP_REASON = probe();
if (GPU_SKIP_REASON) process.stdout.write(`test/gpu: skipped: ${GPU_SKIP_REASON}\n`);
