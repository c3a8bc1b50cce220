import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readPlanDir, renderKernelsCu, writePlanDir } from '../../codegen/index.js';
import { compileCubin, findNvcc } from '../../codegen/nvcc.js';
import { isLoomError } from '../../ir/errors.js';
import { samplePlan } from './fixture.js';

const nvcc = findNvcc();
if (nvcc === null) console.log('test/codegen/nvcc: skipped, nvcc not found (PATH, $CUDA_HOME/bin, /usr/local/cuda/bin)');

const tmp = mkdtempSync(path.join(os.tmpdir(), 'loom-nvcc-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(nvcc === null)('nvcc', () => {
  it('compiles every generated kernel to a sm_90 cubin, then hits the cache', async () => {
    const cacheDir = path.join(tmp, 'cache');
    const dir = path.join(tmp, 'a');
    const progress: string[] = [];
    const first = await writePlanDir(samplePlan(), dir, { cacheDir, onProgress: (m) => progress.push(m) });
    expect(first.nvccSkipped).toBeNull();
    expect(first.cubinFromCache).toBe(false);
    expect(progress.some((m) => m.includes('nvcc -cubin -arch=sm_90 -O3'))).toBe(true);
    const cubin = readFileSync(path.join(dir, 'kernels.sm_90.cubin'));
    expect(cubin.subarray(0, 4)).toEqual(Buffer.from([0x7f, 0x45, 0x4c, 0x46])); // ELF
    for (const name of new Set(Object.values(first.plan.kernels.names))) expect(cubin.includes(Buffer.from(name))).toBe(true);
    expect(readPlanDir(dir).kernels).toMatchObject({ cubin: 'kernels.sm_90.cubin', arch: 'sm_90' });
    expect(readdirSync(cacheDir).filter((f) => f.endsWith('.cubin')).length).toBe(1);

    const t0 = performance.now();
    const again = await writePlanDir(samplePlan(), path.join(tmp, 'b'), { cacheDir });
    const ms = performance.now() - t0;
    expect(again.cubinFromCache).toBe(true);
    expect(readFileSync(path.join(tmp, 'b', 'kernels.sm_90.cubin'))).toEqual(cubin);
    expect(readFileSync(path.join(tmp, 'b', 'plan.json'))).toEqual(readFileSync(path.join(dir, 'plan.json')));
    console.log(`nvcc: cached recompile took ${ms.toFixed(0)} ms`);
    expect(ms).toBeLessThan(2000);
  });

  it('reports a kernel that nvcc rejects with its name and the compiler error', async () => {
    const src = renderKernelsCu(samplePlan());
    const victim = /extern "C" __global__ void __launch_bounds__\(256\) (loom_softmax_\w+)\(/.exec(src)![1]!;
    const broken = src.replace('const acc_t rs = (acc_t)1 / s;', 'const acc_t rs = (acc_t)1 / undefined_thing;');
    expect(broken).not.toBe(src);
    const e = await compileCubin(broken, nvcc!, path.join(tmp, 'cache')).catch((x: unknown) => x);
    expect(isLoomError(e) && e.code).toBe('CODEGEN');
    expect((e as Error).message).toContain(`nvcc failed to compile kernel ${victim}`);
    expect((e as Error).message).toMatch(/kernels\.cu\(\d+\): error: identifier "undefined_thing" is undefined/);
  });
});
