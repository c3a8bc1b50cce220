import { defineConfig } from 'vitest/config';

// Node 24 ships Float16Array; onnxruntime-common then hands float16 tensor data to onnxruntime-node 1.30's
// binding as a Float16Array, which the binding reads as empty ("not enough space"). The oracle tests feed f16
// tensors, so their workers run without Float16Array where the runtime has it (the flag is unknown to Node 20).
const WITHOUT_FLOAT16ARRAY = typeof (globalThis as { Float16Array?: unknown }).Float16Array === 'function' ? ['--no-js-float16array'] : [];

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    execArgv: WITHOUT_FLOAT16ARRAY,
    reporters: ['default'],
  },
});
