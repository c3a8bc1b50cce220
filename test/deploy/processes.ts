// Child processes for the deploy tests: `loom serve` shards (bin/loom.js, so dist/ must be built) and nginx.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '../..');

// The nginx binary (Debian's nginx-light / nginx packages), or why there is none.
export function findNginx(): { bin: string } | { reason: string } {
  for (const bin of ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx']) if (existsSync(bin)) return { bin };
  try {
    return { bin: execFileSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).trim() || '' };
  } catch {
    return { reason: 'no nginx binary (apt-get install nginx-light; .ci/run installs it)' };
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface Shard {
  readonly proc: ChildProcess;
  readonly url: string;
  readonly exited: Promise<number | null>;
}

// `loom serve <plan-dir>` on the CPU backend; resolves once it listens.
export async function startShard(planDir: string, port: number, grpcPort: number): Promise<Shard> {
  const args = ['serve', planDir, '--port', String(port), '--grpc-port', String(grpcPort), '--backend', 'cpu', '--threads', '1', '--log-level', 'warn'];
  const proc = spawn(process.execPath, [path.join(ROOT, 'bin/loom.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    proc.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /serving .* at (http:\/\/\S+) /.exec(stderr);
      if (m) resolve(m[1]!);
    });
    void exited.then((code) => reject(new Error(`loom serve ${planDir} exited early (${code}): ${stderr}`)));
  });
  return { proc, url, exited };
}

export async function stop(p: { proc: ChildProcess; exited: Promise<number | null> }): Promise<number | null> {
  if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGTERM');
  return p.exited;
}

// nginx in the foreground (the config says daemon off), every file under `prefix`.
export function startNginx(bin: string, prefix: string): { proc: ChildProcess; exited: Promise<number | null>; stderr: () => string } {
  const proc = spawn(bin, ['-p', prefix, '-c', 'nginx.conf', '-e', 'error.log'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, exited, stderr: () => stderr };
}

// Polls `url` until `ok(status)` or the deadline.
export async function waitFor(url: string, ok: (status: number) => boolean, ms = 15_000): Promise<number> {
  const end = Date.now() + ms;
  let last = 0;
  while (Date.now() < end) {
    try {
      last = (await fetch(url, { signal: AbortSignal.timeout(2000) })).status;
      if (ok(last)) return last;
    } catch {
      last = -1;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url}: still ${last} after ${ms} ms`);
}
