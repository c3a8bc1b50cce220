// `loom deploy k8s`: the manifests parsed by an independent YAML parser (python3's PyYAML; .ci/run installs
// python3-yaml) and checked structurally: a Deployment and a Service per shard, one GPU each, the shard's plan
// mounted, probes and a grace period covering the drain, every tenant routed by the Ingress exactly once, to the
// Service of its shard. Skips, saying why, without python3-yaml.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../src/fleet/manifest.js';
import { compileShards } from '../../src/fleet/shard-compile.js';
import { type ShardsFile, readShardsFile } from '../../src/fleet/shards-file.js';
import { toYamlDocuments } from '../../src/deploy/yaml.js';
import { MIXED, writeFleet } from '../fleet/shard-fleet.js';
import { ROOT } from './processes.js';

const probe = spawnSync('python3', ['-c', 'import yaml'], { encoding: 'utf8' });
const noYaml =
  probe.status !== 0 ? `python3 with PyYAML is not available (${(probe.error?.message ?? probe.stderr).trim()}); apt-get install python3-yaml` : null;
if (noYaml) console.warn(`test/deploy/k8s.test.ts skipped: ${noYaml}`);

// Every document of a YAML stream, as JSON values.
function parseYaml(text: string): unknown[] {
  const out = execFileSync('python3', ['-c', 'import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(sys.stdin))))'], {
    input: text,
    encoding: 'utf8',
  });
  return JSON.parse(out) as unknown[];
}

// biome-ignore lint/suspicious/noExplicitAny: parsed manifests are walked by field name
type Doc = any;

let file: ShardsFile;
let dir: string;
let docs: Doc[];

beforeAll(async () => {
  if (noYaml) return;
  const manifest = writeFleet(MIXED.slice(0, 4));
  dir = path.join(path.dirname(manifest), 'shards');
  await compileShards(readManifest(manifest), dir, { shards: 3, nvcc: 'off' });
  file = readShardsFile(dir);
  const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'loom-k8s-')), 'loom.yaml');
  execFileSync(
    process.execPath,
    [path.join(ROOT, 'bin/loom.js'), 'deploy', 'k8s', dir, '--image', 'registry.example/loom:1.0', '--grpc-port', '9000', '--namespace', 'ml', '-o', out],
    { cwd: ROOT, stdio: 'pipe' },
  );
  docs = parseYaml(readFileSync(out, 'utf8')) as Doc[];
});

describe.skipIf(noYaml !== null)('loom deploy k8s', () => {
  it('writes a Deployment and a Service per shard and one Ingress', () => {
    expect(docs.map((d) => d.kind)).toEqual([...file.shards.flatMap(() => ['Deployment', 'Service']), 'Ingress']);
    for (const d of docs) expect(d.metadata.namespace).toBe('ml');
  });

  it('gives each shard one GPU, its plan mounted read-only, probes and a grace period covering the drain', () => {
    for (const s of file.shards) {
      const dep = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === `loom-shard-${s.id}`);
      expect(dep, `shard ${s.id}`).toBeDefined();
      const pod = dep.spec.template.spec;
      expect(dep.spec.selector.matchLabels).toEqual(expect.objectContaining({ 'loom.shard': String(s.id) }));
      expect(dep.spec.template.metadata.labels).toEqual(expect.objectContaining(dep.spec.selector.matchLabels));
      const [c] = pod.containers;
      expect(c.image).toBe('registry.example/loom:1.0');
      expect(c.resources.limits['nvidia.com/gpu']).toBe(1);
      expect(c.resources.requests.memory).toMatch(/^\d+Mi$/);
      expect(c.readinessProbe.httpGet).toEqual({ path: '/v2/health/ready', port: 'http' });
      expect(c.livenessProbe.httpGet.path).toBe('/v2/health/live');
      expect(c.startupProbe.httpGet.path).toBe('/v2/health/live');
      const timeout = Number(c.args[c.args.indexOf('--request-timeout-ms') + 1]);
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(timeout / 1000);
      const mount = c.volumeMounts.find((m: Doc) => m.name === 'plan');
      expect(mount).toEqual({ name: 'plan', mountPath: c.args[1], subPath: s.dir, readOnly: true });
      expect(pod.volumes).toEqual([{ name: 'plan', persistentVolumeClaim: { claimName: 'loom-plans', readOnly: true } }]);
      expect(c.args.slice(0, 2)).toEqual(['serve', '/plan']);
      expect(c.ports.map((p: Doc) => [p.name, p.containerPort])).toEqual([
        ['http', 8000],
        ['grpc', 9000],
      ]);
      const svc = docs.find((d) => d.kind === 'Service' && d.metadata.name === `loom-shard-${s.id}`);
      expect(svc.spec.selector).toEqual(dep.spec.selector.matchLabels);
    }
  });

  it("routes every tenant exactly once, to its shard's Service", () => {
    const ingress = docs.find((d) => d.kind === 'Ingress');
    const paths = ingress.spec.rules.flatMap((r: Doc) => r.http.paths) as Doc[];
    const routed = paths.map((p) => p.path);
    const tenants = file.shards.flatMap((s) => s.tenants);
    expect([...routed].sort()).toEqual(tenants.map((t) => `/v2/models/${t}`).sort());
    expect(new Set(routed).size).toBe(routed.length);
    for (const p of paths) {
      const tenant = p.path.slice('/v2/models/'.length);
      const shard = file.shards.find((s) => s.tenants.includes(tenant))!.id;
      expect(p.pathType).toBe('Prefix');
      expect(p.backend.service).toEqual({ name: `loom-shard-${shard}`, port: { name: 'http' } });
    }
  });

  it('quotes strings so YAML reads them back unchanged', () => {
    const tricky = { a: 'yes', b: '0x10', c: '1e3', d: 'null', e: ': x', f: '#no', g: 'multi\nline', h: ['-', '*x', "'q'"], 'k:y': 1 };
    expect(parseYaml(toYamlDocuments([{ value: tricky }]))).toEqual([tricky]);
  });
});
