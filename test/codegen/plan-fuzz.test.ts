// Plan-directory fuzz: mutations of a small compiled plan's plan.json (values and structure) and weights.bin
// (bytes and length, with and without a matching sha256) must either load and run a tick on the CPU backend
// or fail with a LoomError: no crash, no hang, no untyped error. The cases run in a child process
// (plan-fuzz-child.ts), so a native crash or a hang is pinned to its case instead of taking vitest down.
// CI: 200 mutations; LOOM_PLAN_FUZZ_ITERS for more (the long run: 2000), LOOM_PLAN_FUZZ_SEED for another run.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writePlanDir } from '../../codegen/index.js';
import { generateModel } from '../../models/index.js';
import { loadPlan } from '../../runtime/index.js';
import { planFleet } from '../../src/planner/index.js';
import { tenantFromBytes } from '../planner/fleet-helpers.js';

const ITERS = Number(process.env.LOOM_PLAN_FUZZ_ITERS ?? 200);
const SEED = Number(process.env.LOOM_PLAN_FUZZ_SEED ?? 7);
// One case (load + one tick of a tiny plan) taking longer counts as a hang. Not less: a mutation that declares a
// multi-GiB arena is a valid plan whose arena the backend allocates and zeroes (~10 s for 4 GiB on a 2-core box).
const CASE_MS = 30_000;
const ROOT = path.resolve(import.meta.dirname, '../..');

let dir = '';
let work = '';

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'loom-planfuzz-'));
  work = mkdtempSync(path.join(tmpdir(), 'loom-planfuzz-work-'));
  const tenants = [
    tenantFromBytes('mlp', generateModel('mlp', { seed: 3, sizes: [8, 12, 4] }).bytes, 2),
    tenantFromBytes('mlp2', generateModel('mlp', { seed: 4, sizes: [8, 12, 4] }).bytes, 2),
    tenantFromBytes('lstm', generateModel('lstm', { seed: 5, hidden: 4, inputSize: 3, seqLen: 2, classes: 2 } as never).bytes, 2),
    tenantFromBytes(
      'enc',
      generateModel('encoder', { seed: 6, layers: 1, hidden: 8, heads: 2, ffn: 16, seq: 4, vocabSize: 10, maxPositions: 8 } as never).bytes,
      1,
    ),
  ];
  await writePlanDir(planFleet(tenants.map((t) => t.input)), dir, { nvcc: 'off' });
});
afterAll(() => {
  for (const d of [dir, work]) if (d) rmSync(d, { recursive: true, force: true });
});

interface CaseResult {
  i: number;
  desc: string;
  outcome?: string;
  ms?: number;
}

// Runs cases [first, first + count) in one child; resolves with every case seen and how the child ended.
function runChild(
  first: number,
  count: number,
): Promise<{ cases: Map<number, CaseResult>; code: number | null; signal: string | null; stderr: string; hung: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(ROOT, 'test/codegen/plan-fuzz-child.ts'), dir, work, String(SEED), String(first), String(count)],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const cases = new Map<number, CaseResult>();
    let out = '';
    let stderr = '';
    let hung = false;
    let watchdog: NodeJS.Timeout;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        hung = true;
        child.kill('SIGKILL');
      }, CASE_MS + 20_000); // + start-up time
    };
    arm();
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      let nl = out.indexOf('\n');
      while (nl >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        nl = out.indexOf('\n');
        if (!line.startsWith('{')) continue;
        const o = JSON.parse(line) as Partial<CaseResult> & { done?: boolean };
        if (o.i === undefined) continue;
        const c = cases.get(o.i) ?? { i: o.i, desc: '' };
        Object.assign(c, o);
        cases.set(o.i, c);
        arm();
      }
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr = (stderr + c.toString('utf8')).slice(-4000);
    });
    child.on('close', (code, signal) => {
      clearTimeout(watchdog);
      resolve({ cases, code, signal, stderr, hung });
    });
  });
}

describe('fuzz: mutated plan directories load and run, or fail with LoomError', () => {
  it('the unmutated plan loads and runs on the CPU backend', async () => {
    const p = await loadPlan(dir, { backend: 'cpu', threads: 1 });
    p.close();
  });

  it(
    `${ITERS} plan.json / weights.bin mutations (seed ${SEED})`,
    async () => {
      const r = await runChild(0, ITERS);
      const last = [...r.cases.values()].at(-1);
      const where = last && last.outcome === undefined ? ` during case ${last.i} (${last.desc})` : '';
      expect(r.hung, `a case hung${where}`).toBe(false);
      expect(r.code, `the child exited with ${r.code} / ${r.signal}${where}\n${r.stderr}`).toBe(0);
      const outcomes: Record<string, number> = {};
      const untyped: CaseResult[] = [];
      let slowest = 0;
      for (const c of r.cases.values()) {
        const key = c.outcome!.startsWith('untyped:') ? 'untyped' : c.outcome!;
        outcomes[key] = (outcomes[key] ?? 0) + 1;
        if (key === 'untyped') untyped.push(c);
        slowest = Math.max(slowest, c.ms ?? 0);
      }
      process.stdout.write(`plan fuzz: ${ITERS} mutations (seed ${SEED}): ${JSON.stringify(outcomes)}, slowest ${slowest} ms\n`);
      expect(r.cases.size).toBe(ITERS);
      expect(untyped.map((c) => `case ${c.i} (${c.desc}): ${c.outcome}`)).toEqual([]);
      expect(slowest).toBeLessThan(CASE_MS);
      expect(outcomes.ran ?? 0).toBeGreaterThan(0);
      expect(outcomes['loom:PLAN_INVALID'] ?? 0).toBeGreaterThan(ITERS / 10);
    },
    120_000 + ITERS * 500,
  );
});
