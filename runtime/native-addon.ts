// Loads the native addon (native/, built by cmake-js into native/build/Release/loom.node) on first use,
// so importing the runtime never fails on a machine where it is not built; only executing does.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fail } from '../ir/errors.js';

export interface AddonInfo {
  readonly backends: readonly string[]; // backends compiled into this addon ('cpu', and 'cuda' where built)
  readonly cuda: boolean; // LOOM_HAVE_CUDA: the CUDA toolkit with cuBLAS was found at build time
  readonly threads: number; // default CPU worker threads
  readonly napiVersion: number;
}

declare const handleBrand: unique symbol;
export type NativeHandle = { readonly [handleBrand]: true };

export interface NativeTickInput {
  readonly offset: number; // io arena byte offset
  readonly data: Uint8Array;
}
export interface NativeTickOutput {
  readonly offset: number;
  readonly bytes: number;
}

// The addon's whole surface (native/src/addon.cc). Errors it throws or rejects with carry code 'EVAL'.
export interface NativeAddon {
  create(plan: unknown, weights: Uint8Array, opts: { readonly backend: 'cpu' | 'cuda'; readonly threads?: number }): NativeHandle;
  runTick(handle: NativeHandle, inputs: readonly NativeTickInput[], outputs: readonly NativeTickOutput[], active: Uint8Array): Promise<Uint8Array[]>;
  destroy(handle: NativeHandle): void;
  info(): AddonInfo;
}

const ADDON_RELATIVE = path.join('native', 'build', 'Release', 'loom.node');

// The package root: the nearest folder above this file whose package.json is Loom's (works from the
// sources under tsx/vitest and from dist/).
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'loom') return dir;
      } catch {
        // not ours; keep walking
      }
    }
    const up = path.dirname(dir);
    if (up === dir) fail('IO', 'cannot find the loom package root to locate the native addon');
    dir = up;
  }
}

export function nativeAddonPath(): string {
  return process.env.LOOM_NATIVE_ADDON ?? path.join(packageRoot(), ADDON_RELATIVE);
}

let cached: NativeAddon | null = null;

export function loadNativeAddon(): NativeAddon {
  if (cached) return cached;
  const file = nativeAddonPath();
  if (!existsSync(file)) {
    fail('IO', `the native addon is not built (${file} is missing): run \`npm run build:native\` (needs cmake and a C++17 compiler; \`npm ci\` builds it too)`);
  }
  try {
    cached = createRequire(import.meta.url)(file) as NativeAddon;
  } catch (e) {
    fail('IO', `cannot load the native addon ${file}: ${(e as Error).message} (rebuild it with \`npm run build:native\`)`);
  }
  return cached;
}

export function nativeAddonInfo(): AddonInfo {
  return loadNativeAddon().info();
}
