// The host emulation of CUDA kernels itself (native/emu/cuda_emu.h, the cuda-emu backend): hand-written kernels
// with the generated kernels' signature, launched through a one-launch plan, check what the emulation
// promises — a block's threads meet at __syncthreads, lanes exchange values through __shfl_xor_sync, blocks
// see their own shared memory, a barrier some threads never reach is an error, not a hang — and the errors
// of a source that does not build or a backend created without its library.
import { describe, expect, it } from 'vitest';
import type { KernelGrid } from '../../ir/contract/launch-plan.js';
import { isLoomError } from '../../ir/errors.js';
import { planKernels, renderKernelSource } from '../../codegen/kernels.js';
import { compileEmuKernels } from '../../runtime/emu-kernels.js';
import { loadNativeAddon } from '../../runtime/native-addon.js';
import { EMU_SKIP_REASON } from './emu-env.js';
import { ArenaBuilder, info } from './helpers.js';

// Two kernels of the generated signature, writing float results to segs[0].out.
const KERNELS = `
extern "C" __global__ void emu_test_reduce(const LoomSegment* segs, int, const LoomView*, long long) {
  // out[2b] = the sum of threadIdx.x over the block (shuffles + shared memory), out[2b+1] = what thread 0
  // reads from the slot the last thread wrote before the barrier
  __shared__ float slots[1024];
  float* out = (float*)segs[0].out;
  slots[threadIdx.x] = (float)(blockIdx.x * 1000 + threadIdx.x);
  __syncthreads();
  const float mirror = slots[blockDim.x - 1 - threadIdx.x];
  const float sum = loom_block_reduce((float)threadIdx.x, LoomSumOp());
  if (threadIdx.x == 0) {
    out[2 * blockIdx.x] = sum;
    out[2 * blockIdx.x + 1] = mirror;
  }
}
extern "C" __global__ void emu_test_stray(const LoomSegment* segs, int, const LoomView*, long long) {
  // thread 5 writes 20 floats past the end of its segment's output (2048 floats): inside the io arena (1.0f: its
  // first two bytes are 0, so the first changed byte is 8274)
  if (blockIdx.x == 0 && threadIdx.x == 5) ((float*)segs[0].out)[2048 + 20] = 1.0f;
}
extern "C" __global__ void emu_test_stuck(const LoomSegment* segs, int, const LoomView*, long long) {
  // odd lanes shuffle while even ones wait at the block barrier: neither can complete
  float v = 1.0f;
  if (threadIdx.x & 1) v = __shfl_xor_sync(0xffffffffu, v, 1);
  else __syncthreads();
  ((float*)segs[0].out)[threadIdx.x] = v;
}
`;

async function runKernel(symbol: string, grid: number, block: number): Promise<Float32Array> {
  const b = new ArenaBuilder();
  const out = b.alloc('io', 'f32', 2048);
  b.alloc('io', 'f32', 64); // someone else's bytes after the output
  b.launches.push({
    kind: 'kernel',
    id: 0,
    kernel: 'k0',
    op: { op: 'fill', value: 0 },
    segments: [{ tenant: 0, count: 2048, inputs: [], out: out.ref, outDType: 'f32' }],
    info: info('emu test'),
  });
  const plan = b.plan();
  const table = planKernels(plan.launches);
  const g: KernelGrid = { ...table.grids['0']!, name: symbol, grid, block };
  const addon = loadNativeAddon();
  const handle = addon.create({ ...plan, kernels: { names: { '0': symbol }, grids: { '0': g } } }, b.initialBytes().weights, {
    backend: 'cuda-emu',
    threads: 2,
    emuLibrary: compileEmuKernels(renderKernelSource(table) + KERNELS),
  });
  try {
    const io = await addon.runTick(handle, [], [{ offset: 0, bytes: plan.arenas.io }], new Uint8Array(b.tenants).fill(1));
    return new Float32Array(io[0]!.buffer, io[0]!.byteOffset + out.ref.offset, 2048);
  } finally {
    addon.destroy(handle);
  }
}

describe.skipIf(EMU_SKIP_REASON !== null)(`CUDA kernels emulated on the host${EMU_SKIP_REASON ? ` (skipped: ${EMU_SKIP_REASON})` : ''}`, () => {
  it('threads of a block meet at __syncthreads and reduce across warps; blocks keep their own shared memory', async () => {
    for (const block of [32, 256, 1024]) {
      const out = await runKernel('emu_test_reduce', 5, block);
      for (let b = 0; b < 5; b++) {
        expect(out[2 * b], `block ${b} of ${block} threads: sum`).toBe((block * (block - 1)) / 2);
        expect(out[2 * b + 1], `block ${b} of ${block} threads: the last thread's slot`).toBe(b * 1000 + block - 1);
      }
    }
  });

  it('a barrier that some live threads never reach is an error naming the block', async () => {
    await expect(runKernel('emu_test_stuck', 2, 64)).rejects.toThrow(/emu_test_stuck.*block \d: threads wait at a __syncthreads or __shfl_xor_sync/);
  });

  it("a write outside the launch's outputs fails the launch, naming the arena and the byte", async () => {
    await expect(runKernel('emu_test_stray', 1, 32)).rejects.toThrow(
      /emu_test_stray' \(host emulation\) wrote byte 8274 of the io arena, outside every output/,
    );
  });

  it('a kernel missing from the library is named', async () => {
    await expect(runKernel('no_such_kernel', 1, 32)).rejects.toThrow(/kernel 'no_such_kernel' is not in the host-compiled kernels/);
  });

  it('a source that does not build is a LoomError quoting the compiler', () => {
    let err: unknown;
    try {
      compileEmuKernels('extern "C" void broken( { this is not C++ }');
    } catch (e) {
      err = e;
    }
    expect(isLoomError(err) && err.code).toBe('EVAL');
    expect(String((err as Error).message)).toMatch(/compiling the plan's kernels for the host .* failed: .*error/);
  });

  it('the library is built once per source', () => {
    const src = `${renderKernelSource(planKernels([]))}\n// cache probe ${process.pid}\n`;
    const t0 = performance.now();
    const a = compileEmuKernels(src);
    const first = performance.now() - t0;
    const t1 = performance.now();
    expect(compileEmuKernels(src)).toBe(a);
    expect(performance.now() - t1).toBeLessThan(first);
  });

  it('the backend needs the library', () => {
    const b = new ArenaBuilder();
    b.alloc('io', 'f32', 4);
    expect(() => loadNativeAddon().create(b.plan(), b.initialBytes().weights, { backend: 'cuda-emu' })).toThrow(/emuLibrary/);
  });
});
