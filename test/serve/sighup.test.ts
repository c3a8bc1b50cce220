// SIGHUP on a real `node bin/loom.js serve <link>` whose plan directory is a symbolic link switched between
// plans: client loops run throughout; kept tenants never fail and answer as the plan serving them; a reload
// onto a broken plan is reported on stderr and in /metrics while the old plan keeps serving; SIGTERM after the
// swaps still answers everything accepted. Run with HTTP on the tick thread (--intake-threads 0) and on two
// intake workers (--intake-threads 2: the switch reaches the workers' tenant tables; the repository index is
// asked through a worker). Needs dist/ (rebuilt here when older than the sources).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OipOutput, oipBody } from './fleet.js';
import { PlanOracle, type SwapTenant, brokenCopy, compileSwapPlan, requestFor, switchLink, tempRoot } from './swap-fleet.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SOURCES = [
  'src/cli/serve.ts',
  'src/cli/serve-reload.ts',
  'runtime/serve/server.ts',
  'runtime/serve/swap.ts',
  'runtime/serve/swap-metrics.ts',
  'runtime/serve/http-app.ts',
  'runtime/serve/repository.ts',
  'runtime/serve/intake/pool.ts',
  'runtime/serve/intake/worker.ts',
];

function ensureBuilt(): void {
  const built = path.join(ROOT, 'dist/src/cli/serve-reload.js');
  const newest = Math.max(...SOURCES.map((f) => statSync(path.join(ROOT, f)).mtimeMs));
  if (existsSync(built) && statSync(built).mtimeMs >= newest) return;
  try {
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'pipe' });
  } catch {
    // type errors elsewhere in the tree still emit JavaScript; the check below decides
  }
  if (!existsSync(built) || statSync(built).mtimeMs < newest) throw new Error('dist/ is stale and `npm run build` did not refresh it');
}

const A: SwapTenant[] = [
  { id: 'keep', seed: 31 },
  { id: 'gone', seed: 32 },
];
const B: SwapTenant[] = [
  { id: 'keep', seed: 41 },
  { id: 'added', seed: 43 },
];
const C: SwapTenant[] = [
  { id: 'keep', seed: 51 },
  { id: 'added', seed: 53 },
];

let root = '';
let dirs: string[] = [];
let oracle: PlanOracle;
let child: ChildProcess | null = null;

beforeAll(async () => {
  ensureBuilt();
  root = tempRoot();
  dirs = [await compileSwapPlan(root, 'a', A), await compileSwapPlan(root, 'b', B), await compileSwapPlan(root, 'c', C)];
  oracle = await PlanOracle.load(dirs);
}, 120_000);
afterAll(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  oracle?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('loom serve: SIGHUP', () => {
  it('--help says how to reload and who may', () => {
    const help = execFileSync(process.execPath, [path.join(ROOT, 'bin/loom.js'), 'serve', '--help'], { cwd: ROOT, encoding: 'utf8' });
    expect(help).toContain('kill -HUP <pid>, or POST /v2/repository/reload');
    expect(help).toMatch(/POST \/v2\/repository\/reload +with --auth: a token whose entry has "admin": true; without: loopback clients only/);
    expect(help).toContain('POST /v2/repository/index');
    expect(help).toContain('"admin"?:true');
  });

  it.each([0, 2])(
    '--intake-threads %i: reloads the plan behind a symbolic link under load; a broken plan is reported and the old one keeps serving',
    async (intake) => {
      const link = path.join(root, `current-${intake}`);
      switchLink(link, dirs[0]!);
      const args = ['serve', link, '--port', '0', '--backend', 'cpu', '--threads', '1', '--intake-threads', String(intake)];
      const proc = spawn(process.execPath, [path.join(ROOT, 'bin/loom.js'), ...args], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child = proc;
      let stderr = '';
      let stdout = '';
      proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
      const url = await new Promise<string>((resolve, reject) => {
        proc.stderr!.on('data', (d: Buffer) => {
          stderr += d.toString();
          const m = /serving .* at (http:\/\/[^\s]+) /.exec(stderr);
          if (m) resolve(m[1]!);
        });
        void exited.then((code) => reject(new Error(`loom serve exited early (${code}): ${stderr}`)));
      });
      const waitFor = async (re: RegExp, after: number) => {
        for (let i = 0; i < 400; i++) {
          const m = re.exec(stderr.slice(after));
          if (m) return m;
          await sleep(25);
        }
        throw new Error(`no ${re} on stderr: ${stderr}`);
      };
      const hangup = async (target: string, expect: RegExp) => {
        switchLink(link, target);
        const at = stderr.length;
        proc.kill('SIGHUP');
        return waitFor(expect, at);
      };

      expect(stderr).toContain(intake === 0 ? 'HTTP on the tick thread' : `HTTP intake on ${intake} worker threads`);
      const results: Array<{ tenant: string; status: number; plans: number[]; error?: string; by: string }> = [];
      let stop = false;
      const loop = async (k: number) => {
        for (let i = 0; !stop; i++) {
          const tenant = i % 3 === 2 ? 'keep' : ['keep', 'gone', 'added'][(i + k) % 3]!;
          const plan = oracle.plans.find((p) => p.loaded.plan.tenants.some((t) => t.id === tenant))!.loaded.plan;
          const inputs = requestFor(plan, tenant, 1 + (i % 4), 100 * k + i);
          const r = await fetch(`${url}/v2/models/${tenant}/infer`, { method: 'POST', body: oipBody(inputs) });
          const body = (await r.json()) as { outputs?: OipOutput[]; error?: string };
          const plans = r.status === 200 ? await oracle.whichPlans(tenant, inputs, body.outputs!) : [];
          const by = /^w\d+/.exec(r.headers.get('x-request-id') ?? '')?.[0] ?? 'tick thread';
          results.push({ tenant, status: r.status, plans, by, ...(body.error ? { error: body.error } : {}) });
        }
      };
      const loops = [0, 1, 2, 3].map(loop);
      await sleep(300);
      const first = await hangup(dirs[1]!, /reloaded: generation 2 from .* -> (\S+) \(plan sha256 [0-9a-f]{12}…\): 1 added, 1 removed, 1 kept/);
      expect(first[1]).toBe(dirs[1]);
      await sleep(300);
      const failed = await hangup(brokenCopy(root, dirs[2]!, 'corrupt-weights'), /reload failed; generation 2 keeps serving: (.*)/);
      expect(failed[1]).toMatch(/the new plan did not load: .*weights\.bin is corrupt/);
      await sleep(200);
      await hangup(dirs[2]!, /reloaded: generation 3 from /);
      await sleep(300);
      stop = true;
      await Promise.all(loops);

      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toContain('loom_plan_generation 3');
      expect(metrics).toContain('loom_plan_reloads_total{result="ok"} 2');
      expect(metrics).toContain('loom_plan_reloads_total{result="error"} 1');
      const indexed = await fetch(`${url}/v2/repository/index`, { method: 'POST' });
      expect(/^w\d+r/.test(indexed.headers.get('x-request-id') ?? '')).toBe(intake > 0);
      const index = (await indexed.json()) as Array<{ name: string; state: string }>;
      expect(index.map((e) => `${e.name}:${e.state}`)).toEqual(['keep:READY', 'added:READY', 'gone:UNAVAILABLE']);

      proc.kill('SIGTERM');
      expect(await exited, stderr).toBe(0);
      const keep = results.filter((r) => r.tenant === 'keep');
      expect(keep.filter((r) => r.status !== 200)).toEqual([]);
      for (const r of keep) expect(r.plans).toHaveLength(1);
      const seen = new Set(keep.map((r) => r.plans[0]));
      expect([...seen].sort()).toEqual([1, 2, 3]);
      for (const r of results) expect([200, 404]).toContain(r.status);
      for (const r of results.filter((x) => x.status === 404)) expect(r.error).toMatch(/unknown model '(gone|added)'/);
      expect(results.some((r) => r.tenant === 'added' && r.status === 200)).toBe(true);
      // with workers every answer came through one (and 'added', which only the reloads brought, through them)
      if (intake > 0) {
        expect(results.filter((r) => r.by === 'tick thread')).toEqual([]);
        expect(results.some((r) => r.tenant === 'added' && r.status === 200 && r.by.startsWith('w'))).toBe(true);
      } else expect(new Set(results.map((r) => r.by))).toEqual(new Set(['tick thread']));
      const m = /stopped; (\d+) accepted requests: (\d+) answered, (\d+) failed/.exec(stderr);
      expect(Number(m![1])).toBe(Number(m![2]));
      expect(Number(m![3])).toBe(0);
      // the JSON log has the reloads too
      const lines = stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { msg: string });
      expect(lines.filter((l) => l.msg.startsWith('plan reloaded: ')).length).toBe(2);
      expect(lines.filter((l) => l.msg.startsWith('plan reload failed')).length).toBe(1);
    },
    120_000,
  );
});
