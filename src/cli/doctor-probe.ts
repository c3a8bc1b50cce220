import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { nativeAddonInfo, nativeAddonPath } from '../../runtime/native-addon.js';

// What this machine offers Loom, as far as TypeScript can see (no native code involved).
export interface DoctorReport {
  readonly node: { version: string; ok: boolean; required: string };
  readonly platform: string;
  readonly cpus: number;
  readonly memoryGiB: number;
  readonly cudaToolkit: { found: boolean; nvcc?: string; version?: string; home?: string };
  readonly cublas: { found: boolean; path?: string };
  readonly gpu: { found: boolean; devices: string[]; driver?: string; note: string };
  readonly addon: { built: boolean; path: string; backends: readonly string[]; note?: string };
  readonly backend: { auto: 'cpu' | 'cuda'; reason: string };
}

function run(cmd: string, args: string[]): string | undefined {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function findNvcc(): { nvcc?: string; home?: string } {
  const candidates = [process.env.CUDA_HOME, process.env.CUDA_PATH, '/usr/local/cuda'].filter((x): x is string => !!x);
  for (const home of candidates) {
    const nvcc = path.join(home, 'bin', 'nvcc');
    if (existsSync(nvcc)) return { nvcc, home };
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const nvcc = path.join(dir, 'nvcc');
    if (dir && existsSync(nvcc)) return { nvcc, home: path.dirname(dir) };
  }
  return {};
}

function findCublas(home?: string): string | undefined {
  const dirs = [
    home && path.join(home, 'lib64'),
    home && path.join(home, 'lib'),
    home && path.join(home, 'targets/x86_64-linux/lib'),
    '/usr/lib/x86_64-linux-gnu',
  ];
  for (const d of dirs) {
    if (!d || !existsSync(d)) continue;
    const hit = readdirSync(d).find((f) => /^libcublas\.so/.test(f));
    if (hit) return path.join(d, hit);
  }
  const ld = run('ldconfig', ['-p']);
  const m = ld?.split('\n').find((l) => l.includes('libcublas.so'));
  return m ? m.split('=>').pop()?.trim() : undefined;
}

function probeAddon(): DoctorReport['addon'] {
  const file = nativeAddonPath();
  if (!existsSync(file)) return { built: false, path: file, backends: [], note: 'not built: run npm run build:native' };
  try {
    return { built: true, path: file, backends: nativeAddonInfo().backends };
  } catch (e) {
    return { built: false, path: file, backends: [], note: (e as Error).message };
  }
}

export function probeMachine(): DoctorReport {
  const major = Number(process.versions.node.split('.')[0]);
  const { nvcc, home } = findNvcc();
  const nvccOut = nvcc ? run(nvcc, ['--version']) : undefined;
  const version = nvccOut?.match(/release ([\d.]+)/)?.[1];
  const cublas = findCublas(home);
  const smi = run('nvidia-smi', ['--query-gpu=name,driver_version', '--format=csv,noheader']);
  const devices = smi
    ? smi
        .split('\n')
        .map((l) => l.split(',')[0]!.trim())
        .filter(Boolean)
    : [];
  const driver = smi?.split('\n')[0]?.split(',')[1]?.trim();
  const devNodes = existsSync('/dev') ? readdirSync('/dev').filter((f) => /^nvidia\d+$/.test(f)) : [];
  const gpuFound = devices.length > 0 || devNodes.length > 0;
  const addon = probeAddon();
  // auto picks what the built addon can run, not what the machine could build
  const canCuda = gpuFound && addon.backends.includes('cuda');
  return {
    node: { version: process.versions.node, ok: major >= 20, required: '>= 20' },
    platform: `${process.platform}-${process.arch}`,
    cpus: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    cudaToolkit: { found: !!nvcc, ...(nvcc ? { nvcc } : {}), ...(version ? { version } : {}), ...(home ? { home } : {}) },
    cublas: { found: !!cublas, ...(cublas ? { path: cublas } : {}) },
    gpu: {
      found: gpuFound,
      devices,
      ...(driver ? { driver } : {}),
      note: smi
        ? 'from nvidia-smi'
        : devNodes.length
          ? `device nodes ${devNodes.join(', ')} (nvidia-smi missing)`
          : 'no NVIDIA GPU visible (no nvidia-smi, no /dev/nvidia*)',
    },
    addon,
    backend: canCuda
      ? { auto: 'cuda', reason: 'a GPU is visible and the native addon has the CUDA backend' }
      : {
          auto: 'cpu',
          reason: !addon.built
            ? 'the native addon is not built (npm run build:native)'
            : !gpuFound
              ? 'no GPU visible'
              : !nvcc || !cublas
                ? 'the CUDA toolkit with cuBLAS is missing, so the addon was built without the CUDA backend'
                : 'the native addon was built without a CUDA backend (this version has none yet)',
        },
  };
}
