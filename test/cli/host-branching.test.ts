// loom compile / loom demo's batch-or-branch default (src/cli/host-branching.ts): measured (both plans timed) only
// where the plan will run on the CUDA backend of this host, batched for the CPU backend; `auto` where a compile
// cannot time a whole plan.
import { describe, expect, it } from 'vitest';
import { loadNativeAddon } from '../../runtime/native-addon.js';
import { hostBranching, unmeasured } from '../../src/cli/host-branching.js';

describe('the branching default of a plan compiled on this host', () => {
  it('never for the CPU backend; measure for auto only where the CUDA backend is built and a GPU is visible', () => {
    expect(hostBranching('cpu')).toMatchObject({ branching: 'never', reason: expect.stringContaining('CPU backend') });
    const info = loadNativeAddon().info();
    const cuda = info.backends.includes('cuda') && (info.cudaDevices === undefined || info.cudaDevices > 0);
    const auto = hostBranching('auto');
    expect(auto.branching).toBe(cuda ? 'measure' : 'never');
    expect(auto.otherwise).toContain(cuda ? '--branching auto' : '--branching auto branches for a GPU');
    if (!info.backends.includes('cuda')) expect(hostBranching('cuda').branching).toBe('never');
  });

  it('falls back from measure to the cost model where no whole plan is timed, and keeps never', () => {
    const gpu = { branching: 'measure', reason: 'the CUDA backend runs this plan here: both plans timed on it', otherwise: 'x' } as const;
    expect(unmeasured(gpu)).toMatchObject({ branching: 'auto', reason: expect.stringContaining('the cost model decides') });
    const cpu = hostBranching('cpu');
    expect(unmeasured(cpu)).toBe(cpu);
  });
});
