// `loom deploy k8s`: Kubernetes manifests for the shards of a `loom compile --shards N` directory. Per shard a
// Deployment (one GPU, the shard's plan directory mounted read-only, readiness on /v2/health/ready, a SIGTERM
// grace period that covers loom serve's drain) and a Service; one Ingress routes each tenant's
// /v2/models/<tenant> paths to its shard's Service.
import type { ShardsFile } from '../fleet/shards-file.js';
import { type YamlValue, toYamlDocuments } from './yaml.js';

export interface K8sOptions {
  readonly image: string;
  readonly name: string; // object name prefix: <name>-shard-<k>
  readonly namespace?: string;
  readonly port: number; // loom serve --port inside the pod
  readonly grpcPort: number; // 0: no gRPC
  readonly replicas: number; // per shard
  readonly gpuResource: string; // e.g. nvidia.com/gpu
  readonly plans: { readonly claim: string } | { readonly hostPath: string }; // where DIR (shards.json's folder) lives
  readonly ingressHost?: string;
  readonly ingressClass?: string;
  readonly requestTimeoutMs: number; // loom serve --request-timeout-ms: the drain may wait this long for a slow client
  readonly loomCommand: readonly string[]; // how the image runs loom, e.g. ["loom"]
}

export const PLAN_MOUNT = '/plan';
const DRAIN_MARGIN_S = 15; // after the request timeout: the scheduler's queues, the keep-alive grace, endpoint removal

// Host memory the pod asks for: the weights are read into host memory before upload, plus Node and the addon.
function memoryRequest(weightsBytes: number): string {
  const mib = Math.ceil((2 * weightsBytes) / 2 ** 20) + 1024;
  return `${mib}Mi`;
}

export function renderK8s(file: ShardsFile, o: K8sOptions): string {
  const meta = (name: string, labels: Record<string, string>) => ({
    name,
    ...(o.namespace ? { namespace: o.namespace } : {}),
    labels: { 'app.kubernetes.io/name': 'loom', 'app.kubernetes.io/instance': o.name, ...labels },
  });
  const graceS = Math.ceil(o.requestTimeoutMs / 1000) + DRAIN_MARGIN_S;
  const docs: { comment?: string; value: YamlValue }[] = [];
  for (const s of file.shards) {
    const name = `${o.name}-shard-${s.id}`;
    const labels = { 'app.kubernetes.io/component': 'shard', 'loom.shard': String(s.id) };
    const selector = { 'app.kubernetes.io/instance': o.name, 'loom.shard': String(s.id) };
    const ports: YamlValue[] = [{ name: 'http', containerPort: o.port, protocol: 'TCP' }];
    if (o.grpcPort > 0) ports.push({ name: 'grpc', containerPort: o.grpcPort, protocol: 'TCP' });
    const args = [
      'serve',
      PLAN_MOUNT,
      '--host',
      '0.0.0.0',
      '--port',
      String(o.port),
      '--backend',
      'cuda',
      '--request-timeout-ms',
      String(o.requestTimeoutMs),
      ...(o.grpcPort > 0 ? ['--grpc-port', String(o.grpcPort)] : []),
    ];
    const mem = memoryRequest(s.weightsBytes);
    const probe = (path: string, periodSeconds: number, failureThreshold: number) => ({ httpGet: { path, port: 'http' }, periodSeconds, failureThreshold });
    docs.push({
      comment: `shard ${s.id}: ${s.tenants.length} models (${s.tenants.join(', ')}); predicted tick ${s.predictedTickUs.toFixed(1)} us, ${s.deviceBytes} bytes of device memory`,
      value: {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: meta(name, labels),
        spec: {
          replicas: o.replicas,
          selector: { matchLabels: selector },
          template: {
            metadata: { labels: { ...meta(name, labels).labels } },
            spec: {
              // loom serve drains on SIGTERM: accepted requests are answered, a slow client is cut off after
              // --request-timeout-ms; the grace period covers that and the margin after it
              terminationGracePeriodSeconds: graceS,
              containers: [
                {
                  name: 'loom',
                  image: o.image,
                  command: [...o.loomCommand],
                  args,
                  ports,
                  resources: { requests: { cpu: '2', memory: mem }, limits: { [o.gpuResource]: 1, memory: mem } },
                  startupProbe: probe('/v2/health/live', 5, 120), // loading a large plan takes a while: up to 10 minutes
                  readinessProbe: probe('/v2/health/ready', 2, 2),
                  livenessProbe: probe('/v2/health/live', 10, 3),
                  volumeMounts: [{ name: 'plan', mountPath: PLAN_MOUNT, subPath: s.dir, readOnly: true }],
                },
              ],
              volumes: [
                'claim' in o.plans
                  ? { name: 'plan', persistentVolumeClaim: { claimName: o.plans.claim, readOnly: true } }
                  : { name: 'plan', hostPath: { path: o.plans.hostPath, type: 'Directory' } },
              ],
            },
          },
        },
      },
    });
    const svcPorts: YamlValue[] = [{ name: 'http', port: o.port, targetPort: 'http', protocol: 'TCP' }];
    if (o.grpcPort > 0) svcPorts.push({ name: 'grpc', port: o.grpcPort, targetPort: 'grpc', protocol: 'TCP', appProtocol: 'grpc' });
    docs.push({
      value: { apiVersion: 'v1', kind: 'Service', metadata: meta(name, labels), spec: { selector, ports: svcPorts } },
    });
  }
  const backend = (k: number) => ({ service: { name: `${o.name}-shard-${k}`, port: { name: 'http' } } });
  const paths: YamlValue[] = file.shards.flatMap((s) => s.tenants.map((t) => ({ path: `/v2/models/${t}`, pathType: 'Prefix', backend: backend(s.id) })));
  docs.push({
    comment:
      "every tenant's /v2/models/<tenant>[/…] to its shard (Prefix matches whole path segments: /v2/models/a does not take /v2/models/ab).\nHealth is per shard (each Deployment's readiness); `loom deploy nginx` gives one aggregated /v2/health/ready.",
    value: {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: meta(o.name, { 'app.kubernetes.io/component': 'router' }),
      spec: {
        ...(o.ingressClass ? { ingressClassName: o.ingressClass } : {}),
        rules: [{ ...(o.ingressHost ? { host: o.ingressHost } : {}), http: { paths } }],
      },
    },
  });
  return toYamlDocuments(docs);
}
