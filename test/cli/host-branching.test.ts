// loom compile / loom demo's batch-or-branch default (src/cli/host-branching.ts): branched only where the plan will
// run on the CUDA backend of this host, batched for the CPU backend.
import { describe, expect, it } from 'vitest';
import { loadNativeAddon } from '../../runtime/native-addon.js';
import { hostBranching } from '../../src/cli/host-branching.js';

describe('the branching default of a plan compiled on this host', () => {
  it('never for the CPU backend; auto for auto only where the CUDA backend is built and a GPU is visible', () => {
    expect(hostBranching('cpu')).toMatchObject({ branching: 'never', reason: expect.stringContaining('CPU backend') });
    const info = loadNativeAddon().info();
    const cuda = info.backends.includes('cuda') && (info.cudaDevices === undefined || info.cudaDevices > 0);
    const auto = hostBranching('auto');
    expect(auto.branching).toBe(cuda ? 'auto' : 'never');
    expect(auto.otherwise).toContain(cuda ? '--branching never' : '--branching auto');
    if (!info.backends.includes('cuda')) expect(hostBranching('cuda').branching).toBe('never');
  });
});
