// The fleet table's fleets as data and on the CPU backend: the zoo mix (issue 13: 3 MobileNetV3 + 3 SqueezeNet +
// 3 LSTM + 3 MLP at batch 1) has tenants of different weights; every fleet compiles, runs, and its space-only
// baseline computes what the plan computes (the big fleets at one tenant per group, the zoo mix in full); the
// precision rows and their flags; and the Python peer agrees with the zoo on every kind's initializers and
// accepts the zoo mix's hand-off (python3 without torch: parsing and validation only).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateModel } from '../../models/index.js';
import { decodeModel } from '../../src/onnx/decode.js';
import { readManifest } from '../../src/fleet/manifest.js';
import {
  DEFAULT_EXTRA_FLEETS,
  FLEETS,
  type FleetSpec,
  checkPeerFleet,
  fleetDirName,
  fleetTenants,
  parseFleetTableArgs,
  runFleetTable,
  scaleFleet,
  tableRows,
} from '../../bench/fleet-table.js';

const PEERS_DIR = path.resolve(import.meta.dirname, '../../bench/peers');
const ZOO_MIX = FLEETS['zoo-mix']!;

function initializers(kind: string, options: object, seed: number): Map<string, { shape: number[]; bytes: Buffer }> {
  const graph = decodeModel(generateModel(kind as never, { ...options, seed } as never).bytes).graph!;
  return new Map(
    (graph.initializer ?? []).map((i) => [i.name ?? '', { shape: (i.dims ?? []).map(Number), bytes: Buffer.from(i.rawData ?? new Uint8Array()) }]),
  );
}

const python = (() => {
  const r = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' });
  return r.status === 0 ? 'python3' : null;
})();
if (!python) console.log('fleet-definitions: python3 with numpy is not available here; the peer checks are skipped');

function py(code: string): unknown {
  const r = spawnSync('python3', ['-c', code], { cwd: PEERS_DIR, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`python3 failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe('the zoo mix', () => {
  it('is 3 MobileNetV3 + 3 SqueezeNet + 3 LSTM + 3 MLP, every tenant at batch 1', () => {
    const tenants = fleetTenants(ZOO_MIX);
    expect(tenants.map((t) => t.id)).toEqual([
      'mobilenet-0',
      'mobilenet-1',
      'mobilenet-2',
      'squeezenet-0',
      'squeezenet-1',
      'squeezenet-2',
      'lstm-0',
      'lstm-1',
      'lstm-2',
      'mlp-0',
      'mlp-1',
      'mlp-2',
    ]);
    expect(new Set(tenants.map((t) => t.group.batch))).toEqual(new Set([1]));
    expect(new Set(tenants.map((t) => t.seed)).size).toBe(12);
    expect(Object.keys(FLEETS)).toContain('zoo-mix');
  });

  it('gives the tenants of one architecture different values in every weight tensor', () => {
    for (const group of ZOO_MIX.groups) {
      const models = fleetTenants(ZOO_MIX)
        .filter((t) => t.group === group)
        .map((t) => initializers(t.group.kind, t.group.options, t.seed));
      expect(models).toHaveLength(3);
      const [a, ...rest] = models;
      for (const b of rest) {
        expect([...b.keys()], group.kind).toEqual([...a!.keys()]); // same architecture
        for (const [name, w] of a!) {
          expect(b.get(name)!.shape, `${group.kind} ${name}`).toEqual(w.shape);
          expect(Buffer.compare(b.get(name)!.bytes, w.bytes), `${group.kind} ${name} is the same in two tenants`).not.toBe(0);
        }
      }
    }
  });
});

describe('every fleet on the CPU backend, with space-only', () => {
  let work: string;
  let result: Awaited<ReturnType<typeof runFleetTable>>;
  const small = Object.values(FLEETS).map((f) => (f.name === 'zoo-mix' ? f : scaleFleet(f, 1e-3)));
  const smallZooMix = scaleFleet(ZOO_MIX, 0.34); // one tenant of each kind

  beforeAll(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'loom-fleet-defs-'));
    result = await runFleetTable({
      fleets: small,
      work,
      backend: 'cpu',
      precision: 'fp32',
      extra: { precisions: ['bf16'], fleets: [smallZooMix] },
      iters: 1,
      warmup: 0,
      peers: { run: false, reason: '--no-peers' },
      nvcc: 'off',
      quietProgress: true,
    });
  }, 600_000);

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('compiles and runs every fleet, and then the precision rows, in that order', () => {
    const expected = [...small.map((f) => [`${f.name}@fp32`, fleetTenants(f).length]), ['zoo-mix@bf16', fleetTenants(smallZooMix).length]];
    expect(result.rows.map((r) => [`${r.fleet}@${r.precision}`, r.tenants])).toEqual(expected);
    expect(result.rows.find((r) => r.fleet === 'zoo-mix')!.tenants).toBe(12);
    for (const r of result.rows) {
      expect(r.loom.runTickUs.n, r.fleet).toBe(1);
      expect(r.loom.work.launches, r.fleet).toBeGreaterThan(0);
    }
  });

  it("writes a valid manifest at the row's precision, and a hand-off that follows the format", () => {
    for (const r of result.rows) {
      const dir = path.join(work, fleetDirName(r.fleet, r.precision));
      const m = readManifest(path.join(dir, 'manifest.json'));
      expect(m.precision, r.fleet).toBe(r.precision);
      expect(m.tenants.length, r.fleet).toBe(r.tenants);
      expect(checkPeerFleet(path.join(dir, 'peer')), `${r.fleet} ${r.precision}`).toEqual([]);
    }
  });

  it('space-only runs one plan per tenant and computes what the plan computes', () => {
    for (const r of result.rows) {
      const so = r.loom.spaceOnly!;
      expect(so.plans, r.fleet).toBe(r.tenants);
      expect(so.agrees, `${r.fleet} ${r.precision}: ${so.maxRelErrorVsPlan}`).toBe(true);
    }
  });

  it.skipIf(!python)("the peer parses and validates the zoo mix's hand-off (every tenant's initializers read)", () => {
    const fleetJson = path.join(work, 'zoo-mix', 'peer', 'fleet.json');
    const got = py(
      `import json; from fleet_peer.handoff import parse_fleet, tenant_arrays\np = parse_fleet(${JSON.stringify(fleetJson)})\nprint(json.dumps({"precision": p["precision"], "tenants": [[t["id"], t["kind"], sum(1 for _ in tenant_arrays(t))] for t in p["tenants"]]}))`,
    ) as { precision: string; tenants: Array<[string, string, number]> };
    expect(got.precision).toBe('fp32');
    expect(got.tenants.map((t) => t[1])).toEqual(fleetTenants(ZOO_MIX).map((t) => t.group.kind));
    expect(got.tenants.every((t) => t[2] > 0)).toBe(true);
  });
});

describe('the precision rows', () => {
  it('--extra-precisions adds the extra fleets at each precision after the --fleets rows, without repeats', () => {
    const { opts } = parseFleetTableArgs(['--fleets', 'mlp-b1,lstm', '--extra-precisions', 'bf16,tf32,fp32']);
    expect(tableRows(opts).map((r) => `${r.spec.name}@${r.precision}`)).toEqual([
      'mlp-b1@fp32',
      'lstm@fp32',
      'mlp-b1@bf16',
      'zoo-mix@bf16',
      'mlp-b1@tf32',
      'zoo-mix@tf32',
      'zoo-mix@fp32',
    ]);
    expect(DEFAULT_EXTRA_FLEETS).toEqual(['mlp-b1', 'zoo-mix']);
    const one = parseFleetTableArgs(['--fleets', 'lstm', '--extra-precisions', 'tf32', '--extra-fleets', 'resnet18', '--no-space-only']).opts;
    expect(tableRows(one).map((r) => `${r.spec.name}@${r.precision}`)).toEqual(['lstm@fp32', 'resnet18@tf32']);
    expect(one.spaceOnly).toBe(false);
    expect(parseFleetTableArgs([]).opts.extra).toBeUndefined(); // none by default: gpu-suite.sh passes PRECISIONS
    expect(parseFleetTableArgs(['--extra-precisions', '']).opts.extra).toBeUndefined();
  });

  it('refuses an unknown precision or fleet, naming it', () => {
    expect(() => parseFleetTableArgs(['--extra-precisions', 'bf16,int8'])).toThrow(/--extra-precisions must be one of .*'int8'/);
    expect(() => parseFleetTableArgs(['--precision', 'fp64'])).toThrow(/--precision must be one of/);
    expect(() => parseFleetTableArgs(['--extra-precisions', 'bf16', '--extra-fleets', 'nope'])).toThrow(/unknown fleet 'nope'/);
  });

  it('keeps each precision of a fleet in its own directory (fp32 where the occupancy part looks)', () => {
    expect(fleetDirName('mlp-b1', 'fp32')).toBe('mlp-b1');
    expect(fleetDirName('mlp-b1', 'bf16')).toBe('mlp-b1-bf16');
  });
});

describe.skipIf(!python)('the Python peer', () => {
  it('passes its self-test (parsing, validation, --precision, the mobilenet and squeezenet specs)', () => {
    const r = spawnSync('python3', [path.join(PEERS_DIR, 'fleet_torch.py'), '--self-test'], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toContain('self-test: ok');
    expect(r.status).toBe(0);
  });

  it("expects exactly the zoo's initializers, names and shapes, for every kind the fleets use", () => {
    const cases: Array<{ kind: string; options: object }> = [];
    for (const f of Object.values(FLEETS) as FleetSpec[]) for (const g of f.groups) cases.push({ kind: g.kind, options: g.options });
    cases.push({ kind: 'mobilenet', options: { resolution: 32, classes: 7, widthMult: 1 } });
    cases.push({ kind: 'squeezenet', options: { resolution: 48, classes: 4, headPool: 'average' } });
    const spec = py(
      `import json; from fleet_peer.spec import initializer_spec, normalize_options\ncases = json.loads(${JSON.stringify(JSON.stringify(cases))})\nprint(json.dumps([[[i["name"], i["shape"], i["optional"]] for i in initializer_spec(c["kind"], normalize_options(c["kind"], c["options"], "t"))] for c in cases]))`,
    ) as Array<Array<[string, number[], boolean]>>;
    cases.forEach((c, k) => {
      const zoo = initializers(c.kind, c.options, 1);
      const want = [...zoo].map(([name, w]) => [name, w.shape]);
      const got = spec[k]!.filter(([name, , optional]) => !optional || zoo.has(name)).map(([name, shape]) => [name, shape]);
      const byName = (a: unknown[][]) => [...a].sort((x, y) => String(x[0]).localeCompare(String(y[0])));
      expect(byName(got), `${c.kind} ${JSON.stringify(c.options)}`).toEqual(byName(want));
    });
  });

  it('reads the same precisions and tolerances as the Node side', async () => {
    const { PEER_MISMATCH } = await import('../../bench/fleet-table/peer.js');
    const t = py('import json; from fleet_peer.spec import TOLERANCE; print(json.dumps(TOLERANCE))');
    expect(t).toEqual(PEER_MISMATCH);
  });
});
