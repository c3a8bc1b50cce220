// The addon's backend registry (native/src/backend.h, backend_registry.cc): every built-in backend with what
// it runs, the CPU backend always; a plan is checked against the chosen backend at load.
import { describe, expect, it } from 'vitest';
import { KERNEL_OPS, LAUNCH_KINDS } from '../../ir/contract/launch.js';
import { loadNativeAddon } from '../../runtime/native-addon.js';
import { ArenaBuilder, info } from './helpers.js';

describe('native backend registry', () => {
  it('info().registry lists the built-in backends; cpu runs every launch kind and KernelOp', () => {
    const i = loadNativeAddon().info();
    const registry = i.registry ?? [];
    expect(registry.map((b) => b.name)).toEqual(i.backends);
    const cpu = registry.find((b) => b.name === 'cpu')!;
    expect(cpu.available).toBe(true);
    expect(cpu.abi).toBeGreaterThan(0);
    expect(cpu.launchKinds).toEqual([...LAUNCH_KINDS]);
    expect(cpu.kernelOps).toEqual([...KERNEL_OPS]);
    // the executor drives its tick launch by launch: nothing to replay or profile; its stats (gemmRows) and the test-only fault hook
    expect(cpu.extensions).toEqual(['stats', 'test_fault', 'host_arena']);
    const cuda = registry.find((b) => b.name === 'cuda');
    expect(i.cuda).toBe(cuda !== undefined);
    if (cuda) {
      expect(cuda.kernelOps).toEqual([...KERNEL_OPS]);
      expect(cuda.extensions).toEqual(expect.arrayContaining(['stats', 'bench', 'profile', 'bench_concurrent', 'device_info', 'test_fault']));
      expect(cuda.available).toBe((i.cudaDevices ?? 0) > 0);
    }
  });

  it('unknown and unbuilt backends keep their messages', () => {
    const b = new ArenaBuilder();
    const x = b.alloc('io', 'f32', 4);
    b.launches.push({
      kind: 'kernel',
      id: 0,
      kernel: 'k',
      op: { op: 'fill', value: 1 },
      segments: [{ tenant: 0, count: 4, inputs: [], out: x.ref, outDType: 'f32' }],
      info: info('fill'),
    });
    const addon = loadNativeAddon();
    expect(() => addon.create(b.plan(), new Uint8Array(0), { backend: 'tpu' as never })).toThrow(/unknown backend 'tpu' \(expected cpu, cuda-emu or cuda\)/);
    if (!addon.info().cuda) {
      expect(() => addon.create(b.plan(), new Uint8Array(0), { backend: 'cuda' })).toThrow(
        /backend 'cuda' is not built into this addon \(no CUDA toolkit with cuBLAS at build time\); use backend 'cpu'/,
      );
    }
    const h = addon.create(b.plan(), new Uint8Array(0), { backend: 'cpu', threads: 1 });
    // the CPU backend times each launch on the host clock (executor::profile)
    const prof = addon.profileTick(h);
    expect(prof.map((p) => p.id)).toEqual([0]);
    expect(prof[0]!.us).toBeGreaterThanOrEqual(0);
    expect(addon.handleInfo(h)).toMatchObject({ backend: 'cpu', planLaunches: 1 });
    addon.destroy(h);
  });
});
