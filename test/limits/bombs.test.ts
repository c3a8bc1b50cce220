// Resource bombs (issue 14, defect 3): tiny models whose Tile, Expand or ConstantOfShape asks for huge
// tensors, a batch dim of 10^15, a Cos over a huge constant. `loom compile` must refuse each within seconds, in
// bounded memory, with exit 2 and a LIMIT error naming the tenant and the node, and never write a plan that
// cannot load. Runs the real CLI (needs a fresh dist/: `npm run build`); a preload records the child's peak RSS.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fromNumbers } from '../../ir/tensor.js';
import { type ModelSpec, encodeModel } from '../../src/onnx/write.js';
import { compileFleet } from '../../src/fleet/compile.js';
import { isLoomError } from '../../ir/errors.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'loom-bombs-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const RSS = path.join(tmp, 'rss.cjs');
writeFileSync(RSS, `process.on('exit', () => require('node:fs').writeFileSync(process.env.LOOM_RSS_FILE, String(process.resourceUsage().maxRSS * 1024)));\n`);

const i64 = (v: number[]) => fromNumbers('i64', [v.length], v);
const f32 = (shape: number[]) =>
  fromNumbers(
    'f32',
    shape,
    Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i),
  );

// y = x + ReduceSum(<bomb>, axis 1): the bomb's only use is a reduction, so the model's I/O stays tiny.
function reduced(bomb: ModelSpec['nodes'], initializers: ModelSpec['initializers']): ModelSpec {
  return {
    inputs: [{ name: 'x', dtype: 'f32', shape: ['N', 1] }],
    outputs: [{ name: 'y', dtype: 'f32', shape: ['N', 1] }],
    nodes: [
      ...bomb,
      { op: 'ReduceSum', name: 'rs', inputs: ['t', 'ax'], outputs: ['s'], attrs: { keepdims: 1 } },
      { op: 'Add', name: 'add', inputs: ['x', 's'], outputs: ['y'] },
    ],
    initializers: { ...initializers, ax: i64([1]) },
  };
}

const fill = { value: fromNumbers('f32', [1], [0.5]) };
const BOMBS: Record<string, { spec: ModelSpec; node: string; mentions: string[] }> = {
  // the probe's: 300 bytes, 22 s and 6.3 GB of RSS, a 1.6 GB weights.bin
  tile: {
    spec: reduced([{ op: 'Tile', name: 'big_tile', inputs: ['c', 'r'], outputs: ['t'] }], { c: f32([1, 4]), r: i64([1, 1e8]) }),
    node: 'big_tile',
    mentions: ['--max-constant-mb'],
  },
  'tile 10^10': {
    spec: reduced([{ op: 'Tile', name: 'big_tile', inputs: ['c', 'r'], outputs: ['t'] }], { c: f32([1, 4]), r: i64([1, 1e10]) }),
    node: 'big_tile',
    mentions: ['elements'],
  },
  expand: {
    spec: reduced([{ op: 'Expand', name: 'big_expand', inputs: ['c', 'r'], outputs: ['t'] }], { c: f32([1, 1]), r: i64([1, 1e12]) }),
    node: 'big_expand',
    mentions: ['elements'],
  },
  'ConstantOfShape + Cos': {
    spec: reduced(
      [
        { op: 'ConstantOfShape', name: 'big_fill', inputs: ['r'], outputs: ['t0'], attrs: fill },
        { op: 'Cos', name: 'cos', inputs: ['t0'], outputs: ['t'] },
      ],
      { r: i64([1, 1e10]) },
    ),
    node: 'big_fill',
    mentions: ['37.3 GiB', '--max-activations-mb'],
  },
  'batch dim 10^15': {
    spec: {
      inputs: [{ name: 'x', dtype: 'f32', shape: [1e15, 7] }],
      outputs: [{ name: 'y', dtype: 'f32', shape: [1e15, 7] }],
      nodes: [{ op: 'Relu', name: 'relu', inputs: ['x'], outputs: ['y'] }],
    },
    node: "input 'x'",
    mentions: ['PiB', '--max-io-mb'],
  },
};

function compile(name: string, spec: ModelSpec, ...flags: string[]) {
  const file = path.join(tmp, `${name}.onnx`);
  writeFileSync(file, encodeModel(spec));
  const out = path.join(tmp, `plan-${name}`);
  const rssFile = path.join(tmp, `${name}.rss`);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--require', RSS, path.join(ROOT, 'bin/loom.js'), 'compile', file, '-o', out, '--no-nvcc', '--quiet', ...flags], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, LOOM_RSS_FILE: rssFile },
  });
  return { ...r, seconds: (performance.now() - t0) / 1000, rss: Number(readFileSync(rssFile, 'utf8')), out };
}

describe('resource bombs', () => {
  for (const [name, b] of Object.entries(BOMBS)) {
    it(`${name}: exit 2, LIMIT naming the tenant and node, in seconds and bounded memory, no plan written`, () => {
      const id = name.replace(/[^a-z0-9]+/gi, '-');
      const r = compile(id, b.spec);
      expect(r.stderr).toMatch(/^loom: error \[LIMIT\]: /);
      expect(r.stderr).toContain(`tenant '${id}'`);
      expect(r.stderr).toContain(b.node);
      for (const m of b.mentions) expect(r.stderr).toContain(m);
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.seconds).toBeLessThan(20); // a few seconds on a 2-core machine; the Tile took 22 s before
      expect(r.rss).toBeLessThan(1024 ** 3); // it took 6.3 GB before
      expect(existsSync(path.join(r.out, 'plan.json'))).toBe(false);
    });
  }

  const fill12 = reduced([{ op: 'ConstantOfShape', name: 'fill12', inputs: ['r'], outputs: ['t'], attrs: fill }], { r: i64([1, 3e9]) });
  it('--max-activations-mb lowers the activation limit', () => {
    const r = compile('fill12', fill12, '--max-activations-mb', '1024');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("node 'fill12' (ConstantOfShape): activation 't' would take 11.2 GiB");
  });

  it('the io arena is checked as a whole: names the biggest slots', () => {
    const big: ModelSpec = {
      inputs: [{ name: 'x', dtype: 'f32', shape: ['N', 150_000_000] }],
      outputs: [{ name: 'y', dtype: 'f32', shape: ['N', 150_000_000] }],
      nodes: [{ op: 'Relu', name: 'relu', inputs: ['x'], outputs: ['y'] }],
    };
    const r = compile('io', big, '--max-io-mb', '1000');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/the io arena would take 1\.1 GiB .*past the limit of 1000 MiB .*\(--max-io-mb\); biggest: 'io\/[xy]' 572\.2 MiB/);
  });

  it('bad limit flags are usage errors', () => {
    const r = compile('flag', fill12, '--max-weights-mb', '-3');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--max-weights-mb must be a positive number');
  });

  it('the library takes the limits in bytes (CompileOptions.limits)', async () => {
    const file = path.join(tmp, 'lib.onnx');
    const spec: ModelSpec = {
      inputs: [{ name: 'x', dtype: 'f32', shape: ['N', 1000] }],
      outputs: [{ name: 'y', dtype: 'f32', shape: ['N', 1000] }],
      nodes: [{ op: 'Relu', name: 'relu', inputs: ['x'], outputs: ['y'] }],
    };
    writeFileSync(file, encodeModel(spec));
    const out = path.join(tmp, 'plan-lib');
    const err = await compileFleet([file], out, { nvcc: 'off', limits: { maxIoBytes: 1000 } }).catch((e: unknown) => e);
    expect(isLoomError(err) && err.code).toBe('LIMIT');
    expect((err as Error).message).toContain("tenant 'lib': input 'x' would take 3.9 KiB (4000 bytes), past the io limit of 1000 bytes (--max-io-mb)");
    expect(existsSync(path.join(out, 'plan.json'))).toBe(false);
    await compileFleet([file], out, { nvcc: 'off' }); // the default limits let it through
    expect(existsSync(path.join(out, 'plan.json'))).toBe(true);
  });
});
