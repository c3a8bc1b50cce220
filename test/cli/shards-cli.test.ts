// The sharding commands as users type them (bin/loom.js, so dist/ must be built): compile --shards, inspect of
// a shards directory, and the usage errors of compile, serve --devices and deploy.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MIXED, writeFleet } from '../fleet/shard-fleet.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const loom = (...args: string[]) => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/loom.js'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

describe('loom compile --shards / inspect / serve --devices / deploy', () => {
  const manifest = writeFleet(MIXED.slice(0, 3));
  const dir = path.join(path.dirname(manifest), 'shards');

  it('compiles shards and shows them side by side', () => {
    const c = loom('compile', manifest, '--shards', '2', '--device-memory', '1', '--no-nvcc', '-o', dir);
    expect(c.code, c.err).toBe(0);
    expect(c.err).toContain(`compiled 12 tenants into 2 shards`);
    const i = loom('inspect', dir);
    expect(i.code, i.err).toBe(0);
    expect(i.out).toMatch(/^2 shards of .* device memory budget 1 GB \(953\.67 MiB\) per shard/);
    expect(i.out).toMatch(/predicted tick\s+\S+ µs\s+\S+ µs/);
    const j = JSON.parse(loom('inspect', dir, '--json').out) as { shards: { tenants: string[] }[] };
    expect(j.shards.flatMap((s) => s.tenants)).toHaveLength(12);
    const one = loom('inspect', path.join(dir, 'shard-0'));
    expect(one.out).toContain('launches'); // a shard is an ordinary plan directory
  });

  it("plans each shard as one plan is planned: --lanes, --branching, --no-residual-epilogue reach every shard's plan", () => {
    type P = { lanes?: number; launches: { kind: string; problem?: { residual?: boolean } }[]; cost: { branches?: unknown } };
    const shardPlans = (out: string): P[] => [0, 1].map((k) => JSON.parse(readFileSync(path.join(out, `shard-${k}`, 'plan.json'), 'utf8')) as P);
    const one = `${dir}-one-lane`;
    const c = loom('compile', manifest, '--shards', '2', '--no-nvcc', '--quiet', '--lanes', '1', '--no-residual-epilogue', '-o', one);
    expect(c.code, c.err).toBe(0);
    for (const p of shardPlans(one)) {
      expect(p.lanes ?? 1).toBe(1);
      expect(p.launches.some((l) => l.problem?.residual === true)).toBe(false);
    }
    const branched = `${dir}-branched`;
    const b = loom('compile', manifest, '--shards', '2', '--no-nvcc', '--quiet', '--branching', 'auto', '-o', branched);
    expect(b.code, b.err).toBe(0);
    expect(
      shardPlans(branched).some((p) => p.cost.branches !== undefined),
      'a shard with equal tenants branches them',
    ).toBe(true);
  });

  it('refuses what does not fit, and flags that do not combine', () => {
    const r = loom('compile', manifest, '--shards', '1', '--device-memory', '0.00001', '--no-nvcc', '--quiet', '-o', `${dir}-x`);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /error \[LIMIT\]: cannot shard: tenant '\S+' alone needs .*\(\d+ bytes\) of device memory, more than --device-memory 9\.8 KiB \(10000 bytes\)/,
    );
    expect(loom('compile', manifest, '--shards', '2', '--emit', 'ir', '-o', `${dir}-y`).err).toContain('--emit does not combine with --shards');
    expect(loom('compile', manifest, '--device-memory', '4', '-o', `${dir}-z`).err).toContain('give --shards as well');
    expect(loom('compile', manifest, '--shards', '0', '-o', `${dir}-z`).err).toContain('--shards must be a positive integer');
  });

  it('checks --devices against the shards and deploy against the directory', () => {
    const s = loom('serve', dir, '--devices', 'cpu', '--port', '0');
    expect(s.code).toBe(2);
    expect(s.err).toContain("--devices 'cpu' names 1 device, but there are 2 shards");
    const d = loom('deploy', 'nginx', path.join(dir, 'shard-0'), '--listen', '127.0.0.1:8080', '-o', `${dir}-n/nginx.conf`);
    expect(d.err).toContain('has no shards.json');
    const m = loom('deploy', 'nginx', dir, '--listen', '127.0.0.1:8080', '--shard', '0=127.0.0.1:8001', '-o', `${dir}-n/nginx.conf`);
    expect(m.err).toContain('no address for shard 1');
    const k = loom('deploy', 'k8s', dir, '--image', 'x', '--name', 'Bad_Name', '-o', `${dir}-k.yaml`);
    expect(k.err).toContain("--name 'Bad_Name' must be a DNS label");
  });
});
