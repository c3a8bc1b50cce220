import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

// The layering rule itself (tools/check-layers.mjs, run by `npm run lint`), on small fake trees.
const SCRIPT = path.resolve(import.meta.dirname, '..', '..', 'tools', 'check-layers.mjs');
const dirs: string[] = [];

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(tmpdir(), 'loom-layers-'));
  dirs.push(root);
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  }
  return root;
}

function check(root: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [SCRIPT, root], { encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

const CLEAN = {
  'ir/graph.ts': 'export const graph = 1;\n',
  'src/onnx/import.ts': "import { graph } from '../../ir/graph.js';\nexport const imported = graph;\n",
  'src/planner/plan.ts': "import type { imported } from '../onnx/import.js';\nexport const plan = 2;\n",
  'codegen/emit.ts': "import { graph } from '../ir/graph.js';\nexport const emitted = graph;\n",
  'runtime/load.ts': "import { graph } from '../ir/graph.js';\nexport const loaded = graph;\n",
  'src/cli/main.ts': "import { loaded } from '../../runtime/load.js';\nimport fs from 'node:fs';\nexport { loaded, fs };\n",
  'test/cli.test.ts':
    "import { loaded } from '../src/cli/main.js';\n// import { x } from '../bench/nothing.js' (a comment, not an import)\nexport { loaded };\n",
};

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('tools/check-layers.mjs', () => {
  it('passes a tree whose imports all point down, with one summary line', () => {
    const r = check(tree(CLEAN));
    expect(r.status).toBe(0);
    expect(r.out.trim().split('\n')).toHaveLength(1);
    expect(r.out).toMatch(/none backward/);
  });

  it('fails on one backward import and names its file and line', () => {
    const r = check(tree({ ...CLEAN, 'ir/verify.ts': "export const ok = 1;\n\nimport { plan } from '../src/planner/plan.js';\nexport { plan };\n" }));
    expect(r.status).toBe(1);
    expect(r.out).toContain('ir/verify.ts:3: imports src/planner/plan.js');
    expect(r.out).toMatch(/1 backward import/);
  });

  it('catches dynamic imports, runtime → src/, imports of native/ and of test/ from below', () => {
    const r = check(
      tree({
        ...CLEAN,
        'src/planner/late.ts': "export const later = () => import('../../codegen/emit.js');\n",
        'runtime/uses-app.ts': "import { graph } from '../src/onnx/import.js';\nexport { graph };\n",
        'runtime/addon.ts': "import x from '../native/src/addon.cc';\nexport { x };\n",
        'src/fleet/fixture.ts': "export * from '../../test/cli.test.js';\n",
      }),
    );
    expect(r.status).toBe(1);
    expect(r.out).toContain('src/planner/late.ts:1: imports codegen/emit.js');
    expect(r.out).toContain('runtime/uses-app.ts:1: imports src/onnx/import.js');
    expect(r.out).toContain('runtime/addon.ts:1: imports native/src/addon.cc');
    expect(r.out).toContain('src/fleet/fixture.ts:1: imports test/cli.test.js');
    expect(r.out).toMatch(/4 backward import/);
  });
});
