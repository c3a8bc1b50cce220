// The device profiles shipped with Loom (profiles/ at the package root, one per card, named as `loom calibrate`
// names them) and how `loom compile --profile` finds one: a file, a shipped profile's name, or `auto` — the shipped
// profile of this host's GPU, else the roofline (said, never silent).
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fail } from '../../ir/errors.js';

// "NVIDIA H100 80GB HBM3" → "nvidia-h100-80gb-hbm3" (a CPU profile gets a "-cpu" suffix)
export function profileSlug(name: string, backend: 'cpu' | 'cuda' = 'cuda'): string {
  const s = name
    .toLowerCase()
    .replace(/\(r\)|\(tm\)/g, '')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 80);
  return `${s || 'device'}${backend === 'cpu' ? '-cpu' : ''}`;
}

// profiles/ beside package.json above this file (src/calibrate under tsx, dist/src/calibrate when built)
export function shippedProfilesDir(): string {
  for (let dir = import.meta.dirname; path.dirname(dir) !== dir; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'profiles'))) return path.join(dir, 'profiles');
  }
  return path.resolve(import.meta.dirname, '..', '..', 'profiles');
}

// The shipped profiles' names (file names without .json), sorted.
export function shippedProfiles(dir = shippedProfilesDir()): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -'.json'.length))
      .sort();
  } catch {
    return [];
  }
}

export interface ProfileChoice {
  readonly file: string | null; // null: plan with the roofline
  readonly note: string; // what was chosen and why, for the compile summary
}

// `--profile ARG`: ARG is a file (used as given), `auto` (this host's GPU, named by `hostGpu`: null without one),
// or a shipped profile's name (with or without .json). Anything else fails naming the shipped profiles.
export function chooseProfile(arg: string, hostGpu: () => string | null, dir = shippedProfilesDir()): ProfileChoice {
  const shipped = shippedProfiles(dir);
  const list = shipped.length > 0 ? shipped.join(', ') : 'none';
  if (arg === 'auto') {
    const gpu = hostGpu();
    if (gpu === null) return { file: null, note: 'profile auto: no GPU on this host; the roofline prices the plan' };
    const name = profileSlug(gpu);
    if (shipped.includes(name)) return { file: path.join(dir, `${name}.json`), note: `profile auto: ${gpu} → the shipped profile ${name}` };
    return {
      file: null,
      note: `profile auto: no shipped profile for ${gpu} (shipped: ${list}); the roofline prices the plan — \`loom calibrate\` writes one for this card`,
    };
  }
  if (existsSync(arg)) return { file: arg, note: `profile ${arg}` };
  const name = arg.endsWith('.json') ? arg.slice(0, -'.json'.length) : arg;
  if (!name.includes('/') && !name.includes(path.sep) && shipped.includes(name)) {
    return { file: path.join(dir, `${name}.json`), note: `profile ${name} (shipped)` };
  }
  return fail('USAGE', `--profile: no file '${arg}' and no shipped profile of that name (shipped: ${list}; or auto: this host's GPU's)`);
}
