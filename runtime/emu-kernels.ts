// The plan's generated CUDA kernels compiled for the host, for the cuda-emu backend (native/src/backend_emu.cc):
// kernels.cu with native/emu/cuda_emu.h included first, built by the host C++ compiler into a shared library.
// Libraries are cached by the hash of what went into them (source, emulation header, compiler, flags), so a
// plan loaded again (or a test's plan rebuilt the same) does not compile twice.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fail } from '../ir/errors.js';
import { packageRoot } from './native-addon.js';

// No fast math. The rounding need not match the GPU's (nvcc contracts a * b + c into FMAs; libm's exp is not
// CUDA's): the emulation is held to the CPU backend's and the simulator's results at their tolerances.
const FLAGS = ['-std=c++17', '-O1', '-shared', '-fPIC', '-pthread', '-ffp-contract=off', '-Wno-unknown-pragmas'];
const COMPILE_TIMEOUT_MS = 300_000;

export interface EmuCompileOptions {
  readonly cxx?: string; // the host compiler (default: $LOOM_EMU_CXX, else c++)
  readonly cacheDir?: string; // default: $LOOM_EMU_CACHE, else <tmp>/loom-emu-<uid>
}

export function emuHeaderDir(): string {
  return path.join(packageRoot(), 'native', 'emu');
}

// The path of the shared library built from `source` (kernels.cu). Throws a LoomError naming the compiler's
// first errors when the source does not build for the host.
export function compileEmuKernels(source: string, opts: EmuCompileOptions = {}): string {
  const cxx = opts.cxx ?? process.env.LOOM_EMU_CXX ?? 'c++';
  const include = emuHeaderDir();
  const header = path.join(include, 'cuda_emu.h');
  if (!existsSync(header)) fail('IO', `the CUDA emulation header is missing (${header})`);
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  const cache = opts.cacheDir ?? process.env.LOOM_EMU_CACHE ?? path.join(os.tmpdir(), `loom-emu-${uid}`);
  const key = createHash('sha256')
    .update(source)
    .update('\0')
    .update(readFileSync(header))
    .update('\0')
    .update([cxx, ...FLAGS].join(' '))
    .digest('hex');
  const lib = path.join(cache, `${key.slice(0, 32)}.so`);
  if (existsSync(lib)) return lib;
  mkdirSync(cache, { recursive: true });
  const tmp = `${lib}.${process.pid}.${Date.now()}`;
  const src = `${tmp}.cu.cc`;
  writeFileSync(src, source);
  try {
    execFileSync(cxx, [...FLAGS, `-I${include}`, '-include', 'cuda_emu.h', src, '-o', tmp], {
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: COMPILE_TIMEOUT_MS,
      maxBuffer: 16 << 20,
    });
    renameSync(tmp, lib); // atomic: a concurrent loader sees the whole library or none
  } catch (e) {
    rmSync(tmp, { force: true });
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer; signal?: string };
    if (err.code === 'ENOENT')
      fail('UNSUPPORTED_FEATURE', `backend 'cuda-emu' compiles the plan's kernels with a host C++ compiler: '${cxx}' is not on PATH (set LOOM_EMU_CXX)`);
    if (err.signal) fail('EVAL', `compiling the plan's kernels for the host: ${cxx} was stopped (${err.signal}; limit ${COMPILE_TIMEOUT_MS / 1000} s)`);
    const lines = (err.stderr?.toString() ?? '').split('\n').filter((l) => /error/.test(l));
    fail('EVAL', `compiling the plan's kernels for the host (${cxx}) failed: ${lines.slice(0, 5).join('; ') || err.message}`);
  } finally {
    rmSync(src, { force: true });
  }
  return lib;
}
