// Graceful shutdown of the real CLI process: `node bin/loom.js serve` under load gets SIGTERM; it stops
// accepting (503), finishes the ticks in flight, answers every request it accepted, and exits 0. Needs a
// dist/ that includes the serve command: rebuilt here when older than the sources.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tensor } from '../../ir/tensor.js';
import { type LoadedPlan, loadPlan } from '../../runtime/index.js';
import { FLEET, type OipOutput, compileTestFleet, expectedOutputs, oipBody, requestInputs, sameValues } from './fleet.js';
import { hasOpenssl, httpsGet, selfSigned } from './tls.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SOURCES = [
  'src/cli/serve.ts',
  'src/cli/main.ts',
  'runtime/serve/server.ts',
  'runtime/serve/oip.ts',
  'runtime/serve/scheduler.ts',
  'runtime/serve/validate.ts',
  'runtime/serve/batch.ts',
  'runtime/serve/metrics.ts',
  'runtime/serve/auth.ts',
  'runtime/serve/http-app.ts',
  'runtime/serve/intake/pool.ts',
  'runtime/serve/intake/worker.ts',
  'runtime/serve/intake/protocol.ts',
];

function ensureBuilt(): void {
  const built = path.join(ROOT, 'dist/src/cli/serve.js');
  const newest = Math.max(...SOURCES.map((f) => statSync(path.join(ROOT, f)).mtimeMs));
  if (existsSync(built) && statSync(built).mtimeMs >= newest) return;
  try {
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'pipe' });
  } catch {
    // type errors elsewhere in the tree still emit JavaScript; the check below decides
  }
  if (!existsSync(built) || statSync(built).mtimeMs < newest) throw new Error('dist/ is stale and `npm run build` did not refresh it');
}

let planDir: string;
let reference: LoadedPlan;
let child: ChildProcess | null = null;

beforeAll(async () => {
  ensureBuilt();
  planDir = await compileTestFleet();
  reference = await loadPlan(planDir, { backend: 'cpu' });
});
afterAll(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  reference?.close();
});

interface Job {
  readonly tenant: string;
  readonly body: string;
  readonly want: Record<string, Tensor>;
}

type Outcome = { kind: 'http'; status: number; job: Job; body: { error?: string; outputs?: OipOutput[] } } | { kind: 'network'; code: string };

describe('SIGTERM', () => {
  // 0: HTTP on the tick thread; 2: two intake worker threads in front of it
  it.each(['0', '2'])('during load (--intake-threads %s): every accepted request is answered, then exit 0', async (intakeThreads) => {
    const jobs: Job[] = [];
    for (let i = 0; i < 60; i++) {
      const t = FLEET[i % FLEET.length]!;
      const x = requestInputs(reference.plan, t.id, 1 + (i % t.maxBatch), 500 + i);
      jobs.push({ tenant: t.id, body: oipBody(x), want: await expectedOutputs(reference, t.id, x) });
    }
    const proc = spawn(
      process.execPath,
      [path.join(ROOT, 'bin/loom.js'), 'serve', planDir, '--port', '0', '--backend', 'cpu', '--log-level', 'info', '--intake-threads', intakeThreads],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
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

    expect(stderr).toContain(intakeThreads === '0' ? 'HTTP on the tick thread' : 'HTTP intake on 2 worker threads');
    const outcomes: Outcome[] = [];
    let ok = 0;
    let k = 0;
    const client = async () => {
      for (;;) {
        const job = jobs[k++ % jobs.length]!;
        try {
          const r = await fetch(`${url}/v2/models/${job.tenant}/infer`, { method: 'POST', body: job.body, signal: AbortSignal.timeout(10_000) });
          const body = (await r.json()) as { error?: string; outputs?: OipOutput[] };
          outcomes.push({ kind: 'http', status: r.status, job, body });
          if (r.status === 200) ok++;
          else return; // 503: the server is going away
        } catch (e) {
          const cause = (e as { cause?: { code?: string } }).cause;
          outcomes.push({ kind: 'network', code: cause?.code ?? String(e) });
          return;
        }
      }
    };
    const clients = Array.from({ length: 16 }, client);
    while (ok < 200) await new Promise((r) => setTimeout(r, 5));
    proc.kill('SIGTERM');
    const code = await exited;
    await Promise.all(clients);

    expect(code, stderr).toBe(0);
    const http = outcomes.filter((o): o is Extract<Outcome, { kind: 'http' }> => o.kind === 'http');
    const answered = http.filter((o) => o.status === 200);
    for (const o of answered) for (const out of o.body.outputs!) expect(sameValues(out, o.job.want[out.name]!), o.job.tenant).toBe(true);
    for (const o of http.filter((x) => x.status !== 200)) {
      expect(o.status).toBe(503);
      expect(o.body.error).toMatch(/shutting down|closing|Unavailable/i);
    }
    // No request meets a reset: answers during the drain say Connection: close, and idle keep-alive sockets
    // stay open for the drain grace, so a request already on its way gets a 503. Only a connection the
    // listener refused (closed) carries no answer.
    for (const o of outcomes.filter((x) => x.kind === 'network')) expect(['ECONNREFUSED']).toContain((o as { code: string }).code);
    // the server's own count: everything it accepted was answered, and the clients got all those answers
    const m = /stopped; (\d+) accepted requests: (\d+) answered, (\d+) failed/.exec(stderr);
    expect(m, stderr).not.toBeNull();
    expect(Number(m![1])).toBe(Number(m![2]));
    expect(Number(m![3])).toBe(0);
    expect(Number(m![2])).toBe(answered.length);
    // structured logs: JSON lines with levels
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: number; msg: string });
    expect(lines.some((l) => l.msg.startsWith('shut down'))).toBe(true);
    expect(lines.every((l) => typeof l.level === 'number')).toBe(true);
  });
});

// `loom serve` with flags: starts, returns its URL and a way to stop it.
async function serveCli(args: readonly string[]): Promise<{ url: string; stderr: () => string; stop: () => Promise<number | null> }> {
  const proc = spawn(process.execPath, [path.join(ROOT, 'bin/loom.js'), 'serve', planDir, '--port', '0', '--backend', 'cpu', '--log-level', 'warn', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child = proc;
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    proc.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /serving .* at (https?:\/\/[^\s]+) /.exec(stderr);
      if (m) resolve(m[1]!);
    });
    void exited.then((code) => reject(new Error(`loom serve exited early (${code}): ${stderr}`)));
  });
  return {
    url,
    stderr: () => stderr,
    stop: () => {
      proc.kill('SIGTERM');
      return exited;
    },
  };
}

describe('timeout and connection flags', () => {
  it('--request-timeout-ms, --headers-timeout-ms, --keep-alive-timeout-ms, --max-connections take effect', async () => {
    const s = await serveCli(['--request-timeout-ms', '400', '--headers-timeout-ms', '200', '--keep-alive-timeout-ms', '200', '--max-connections', '50']);
    try {
      const { port } = new URL(s.url);
      const sock = net.connect(Number(port), '127.0.0.1');
      let got = '';
      sock.on('data', (d) => (got += d.toString()));
      sock.on('error', () => {});
      sock.write('POST /v2/models/mlp-a/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"inputs":');
      const closed = await Promise.race([
        new Promise<boolean>((r) => sock.on('close', () => r(true))),
        new Promise<boolean>((r) => setTimeout(() => r(false), 4000)),
      ]);
      sock.destroy();
      expect(closed).toBe(true);
      expect(got).toMatch(/^HTTP\/1\.1 408 /);
      expect(got).toContain('400 ms');
    } finally {
      expect(await s.stop()).toBe(0);
    }
  });

  it('refuses bad values', () => {
    for (const [flag, value] of [
      ['--request-timeout-ms', '0'],
      ['--keep-alive-timeout-ms', 'x'],
      ['--max-connections', '-1'],
      ['--intake-threads', '-1'],
      ['--intake-threads', '1.5'],
    ] as const) {
      let err = '';
      try {
        execFileSync(process.execPath, [path.join(ROOT, 'bin/loom.js'), 'serve', planDir, flag, value], { cwd: ROOT, stdio: 'pipe' });
      } catch (e) {
        err = String((e as { stderr?: Buffer }).stderr);
      }
      expect(err).toContain(flag);
    }
  });
});

describe('--auth, --tls-cert, --tls-key', () => {
  it('a bad auth file or half the TLS pair is a usage error', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'loom-auth-cli-'));
    writeFileSync(path.join(dir, 'auth.json'), '{"tokens":[{"name":"x","sha256":"zz","tenants":"*"}]}');
    const run = (args: string[]) => {
      try {
        execFileSync(process.execPath, [path.join(ROOT, 'bin/loom.js'), 'serve', planDir, '--port', '0', '--backend', 'cpu', ...args], {
          cwd: ROOT,
          stdio: 'pipe',
        });
        return '';
      } catch (e) {
        return String((e as { stderr?: Buffer }).stderr);
      }
    };
    expect(run(['--auth', path.join(dir, 'auth.json')])).toMatch(/auth\.json: tokens\[0\] \('x'\)\.sha256 must be 64 hex digits/);
    expect(run(['--auth', path.join(dir, 'missing.json')])).toMatch(/cannot read the auth file/);
    expect(run(['--tls-cert', path.join(dir, 'auth.json')])).toMatch(/--tls-cert and --tls-key go together/);
  });

  it.skipIf(!hasOpenssl())('serves HTTPS with bearer tokens; no warning on loopback', async () => {
    const { cert, key, dir } = selfSigned();
    const token = 'cli-token-0d2f';
    writeFileSync(
      path.join(dir, 'auth.json'),
      JSON.stringify({ tokens: [{ name: 'cli', sha256: createHash('sha256').update(token).digest('hex'), tenants: ['mlp-a'] }] }),
    );
    const s = await serveCli(['--auth', path.join(dir, 'auth.json'), '--tls-cert', cert, '--tls-key', key]);
    try {
      expect(s.url).toMatch(/^https:/);
      const ca = readFileSync(cert, 'utf8');
      expect((await httpsGet(`${s.url}/v2/health/ready`, ca)).status).toBe(200);
      expect((await httpsGet(`${s.url}/v2/models/mlp-a`, ca)).status).toBe(401);
      expect((await httpsGet(`${s.url}/v2/models/mlp-a`, ca, { authorization: `Bearer ${token}` })).status).toBe(200);
      expect((await httpsGet(`${s.url}/v2/models/mlp-b`, ca, { authorization: `Bearer ${token}` })).status).toBe(403);
      expect(s.stderr()).not.toContain('warning');
    } finally {
      expect(await s.stop()).toBe(0);
    }
  });
});
