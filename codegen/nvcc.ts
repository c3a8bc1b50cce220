// Compiles kernels.cu to a cubin with nvcc when the toolkit is present, so kernel errors surface at plan
// compile time even on a machine without a GPU. Cubins are cached by content hash (source + nvcc version
// + flags): recompiling an unchanged fleet does not run nvcc again.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fail } from '../ir/errors.js';

export const ARCH = 'sm_90';
const FLAGS = ['-cubin', `-arch=${ARCH}`, '-O3', '-std=c++17'];

function run(file: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) || (err && code !== 0 && !stderr ? err.message : '') });
    });
  });
}

export function findNvcc(): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && existsSync(path.join(dir, 'nvcc'))) return path.join(dir, 'nvcc');
  }
  const cudaHome = process.env.CUDA_HOME ?? process.env.CUDA_PATH;
  for (const p of [cudaHome ? path.join(cudaHome, 'bin/nvcc') : '', '/usr/local/cuda/bin/nvcc']) if (p && existsSync(p)) return p;
  return null;
}

const versions = new Map<string, string>();

async function nvccVersion(nvcc: string): Promise<string> {
  let v = versions.get(nvcc);
  if (v === undefined) {
    const r = await run(nvcc, ['--version']);
    if (r.code !== 0) fail('IO', `'${nvcc} --version' failed: ${r.stderr.trim()}`);
    v = r.stdout.trim();
    versions.set(nvcc, v);
  }
  return v;
}

export function defaultCacheDir(): string {
  return process.env.LOOM_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'loom', 'kernels');
}

// Which kernel a compiler error line falls in: the last kernel whose definition starts at or before it.
function kernelAtLine(source: string, line: number): string | null {
  let found: string | null = null;
  source.split('\n').forEach((text, i) => {
    const m = /^extern "C" __global__ void __launch_bounds__\(\d+\) (\w+)\(/.exec(text);
    if (m && i + 1 <= line) found = m[1]!;
  });
  return found;
}

export interface CompileResult {
  readonly cubin: Uint8Array;
  readonly fromCache: boolean;
}

export async function compileCubin(source: string, nvcc: string, cacheDir: string, onProgress?: (msg: string) => void): Promise<CompileResult> {
  const version = await nvccVersion(nvcc);
  const hash = createHash('sha256').update(source).update('\0').update(version).update('\0').update(FLAGS.join(' ')).digest('hex');
  const cached = path.join(cacheDir, `${hash}.${ARCH}.cubin`);
  if (existsSync(cached)) {
    onProgress?.(`kernels: cubin from cache (${hash.slice(0, 12)})`);
    return { cubin: readFileSync(cached), fromCache: true };
  }
  try {
    mkdirSync(cacheDir, { recursive: true });
  } catch (e) {
    fail('IO', `cannot create the kernel cache directory '${cacheDir}': ${(e as Error).message}`);
  }
  const work = path.join(cacheDir, `tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  mkdirSync(work);
  try {
    const src = path.join(work, 'kernels.cu');
    const out = path.join(work, 'kernels.cubin');
    writeFileSync(src, source);
    onProgress?.(`kernels: nvcc ${FLAGS.join(' ')}`);
    const r = await run(nvcc, [...FLAGS, '-o', out, src]);
    if (r.code !== 0 || !existsSync(out)) {
      const lines = (r.stderr + r.stdout).split('\n').filter((l) => l.trim() !== '');
      const errors = lines.filter((l) => /error/i.test(l));
      const first = (errors.length ? errors : lines).slice(0, 6).map((l) => l.replace(src, 'kernels.cu'));
      const lineNo = /kernels\.cu\((\d+)\)/.exec(first.join('\n'));
      const kernel = lineNo ? kernelAtLine(source, Number(lineNo[1])) : null;
      fail('CODEGEN', `nvcc failed to compile ${kernel ? `kernel ${kernel}` : 'kernels.cu'} (exit ${r.code}):\n${first.join('\n')}`);
    }
    const cubin = readFileSync(out);
    renameSync(out, cached); // atomic: a concurrent compile of the same source writes the same bytes
    return { cubin, fromCache: false };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
