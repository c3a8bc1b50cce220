// `loom deploy nginx|k8s <shards-dir>`: routing and deployment configs for the shards of `loom compile --shards N`.
import path from 'node:path';
import type { Command } from 'commander';
import { fail } from '../../ir/errors.js';
import { parseHostPort, parseShardAddresses } from '../deploy/address.js';
import { renderK8s } from '../deploy/k8s.js';
import { GRPC_MODEL_HEADER, renderNginxConf } from '../deploy/nginx.js';
import { type ShardsFile, isShardsDir, readShardsFile } from '../fleet/shards-file.js';
import { ensureDir, writeText } from '../fleet/stage-dump.js';

const repeat = (v: string, prev: string[] = []): string[] => [...prev, v];

function shardsOf(dir: string): ShardsFile {
  if (!isShardsDir(dir))
    fail('USAGE', `'${dir}' has no shards.json: deploy takes a directory written by \`loom compile <manifest> --shards N -o DIR\` (--shards 1 for one GPU)`);
  return readShardsFile(dir);
}

function write(file: string, text: string, what: string): void {
  ensureDir(path.dirname(path.resolve(file)));
  writeText(file, text);
  process.stderr.write(`loom: wrote ${file}: ${what}\n`);
}

function int(flag: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) fail('USAGE', `${flag} must be an integer in ${min}..${max}, got '${v}'`);
  return n;
}

interface NginxFlags {
  listen: string;
  shard?: string[];
  grpcListen?: string;
  grpcShard?: string[];
  maxBodyMb: string;
  output: string;
}

interface K8sFlags {
  image: string;
  output: string;
  name: string;
  namespace?: string;
  port: string;
  grpcPort: string;
  replicas: string;
  gpuResource: string;
  planClaim?: string;
  planHostPath?: string;
  ingressHost?: string;
  ingressClass?: string;
  requestTimeoutMs: string;
  loomCommand: string;
}

export function registerDeploy(program: Command): void {
  const deploy = program.command('deploy').description('write routing and deployment configs for the shards of `loom compile --shards N` (nginx, Kubernetes)');
  deploy
    .command('nginx')
    .description('a complete nginx.conf routing /v2/models/<tenant>/… to the shard serving it, with aggregated health')
    .argument('<shards-dir>', 'a directory written by `loom compile <manifest> --shards N -o DIR`')
    .requiredOption('--listen <host:port>', 'where nginx listens for OIP v2 HTTP')
    .option('--shard <k=host:port>', 'where shard k (`loom serve DIR/shard-<k>`) answers HTTP; repeatable, every shard once or more (more: replicas)', repeat)
    .option('--grpc-listen <host:port>', `also route gRPC (HTTP/2, plaintext) on this address, by the "${GRPC_MODEL_HEADER}" request metadata`)
    .option('--grpc-shard <k=host:port>', 'where shard k answers gRPC (its loom serve --grpc-port); repeatable, with --grpc-listen', repeat)
    .option('--max-body-mb <n>', "largest request body nginx passes on, MiB (keep it at the shards' --max-body-mb)", '32')
    .requiredOption('-o, --output <nginx.conf>', "the file to write; its folder is nginx's prefix")
    .addHelpText(
      'after',
      [
        '',
        'Example (two shards on two hosts):',
        '  loom deploy nginx shards/ --listen 0.0.0.0:8000 --shard 0=10.0.0.1:8000 --shard 1=10.0.0.2:8000 -o /srv/loom-nginx/nginx.conf',
        '  nginx -p /srv/loom-nginx -c nginx.conf -e error.log      (foreground; every file it writes stays in /srv/loom-nginx)',
        'Routes: /v2/models/<tenant>[/ready|/infer|/versions/…] → its shard; unknown tenants 404 with the OIP error body; a shard that does',
        'not answer: 503 with an error body for its tenants only; /v2/health/ready: 200 only when every shard is ready',
        "(/v2/health/ready/shard-<k> per shard); /v2/health/live: nginx itself; /metrics/shard-<k>: one shard's metrics.",
        `gRPC: nginx cannot read the model name inside a protobuf body: clients send it again as "${GRPC_MODEL_HEADER}: <tenant>" metadata;`,
        'calls without it (ServerLive/ServerReady/ServerMetadata) go to shard 0; an unknown model gets NOT_FOUND from nginx.',
        '',
      ].join('\n'),
    )
    .action((dir: string, flags: NginxFlags) => {
      const file = shardsOf(dir);
      const n = file.shards.length;
      const listen = parseHostPort(flags.listen, '--listen');
      const shards = parseShardAddresses(flags.shard ?? [], n, '--shard');
      if ((flags.grpcListen === undefined) !== (flags.grpcShard === undefined))
        fail('USAGE', '--grpc-listen and --grpc-shard go together: give both or neither');
      const grpc =
        flags.grpcListen !== undefined
          ? { grpcListen: parseHostPort(flags.grpcListen, '--grpc-listen'), grpcShards: parseShardAddresses(flags.grpcShard ?? [], n, '--grpc-shard') }
          : {};
      const maxBodyMb = int('--max-body-mb', flags.maxBodyMb, 1, 1 << 20);
      const conf = renderNginxConf(file, { listen, shards, maxBodyMb, ...grpc });
      const prefix = path.dirname(path.resolve(flags.output));
      write(
        flags.output,
        conf,
        `${n} shards, ${file.shards.reduce((a, s) => a + s.tenants.length, 0)} models; run: nginx -p ${prefix} -c ${path.basename(flags.output)} -e error.log`,
      );
    });

  deploy
    .command('k8s')
    .description('Kubernetes manifests: per shard a Deployment (one GPU) and a Service, and an Ingress routing each tenant to its shard')
    .argument('<shards-dir>', 'a directory written by `loom compile <manifest> --shards N -o DIR`')
    .requiredOption('--image <image>', 'the container image with loom (and the CUDA runtime)')
    .requiredOption('-o, --output <loom.yaml>', 'the file to write (apply with kubectl apply -f)')
    .option('--name <name>', 'object name prefix: <name>-shard-<k>', 'loom')
    .option('--namespace <ns>', 'namespace of every object (default: none, kubectl picks)')
    .option('--port <n>', 'loom serve --port in the pods', '8000')
    .option('--grpc-port <n>', 'also serve gRPC on this port (0: off)', '0')
    .option('--replicas <n>', 'pods per shard', '1')
    .option('--gpu-resource <name>', 'the extended resource a pod asks one of', 'nvidia.com/gpu')
    .option('--plan-claim <pvc>', `a PersistentVolumeClaim holding the shards directory (each pod mounts its shard-<k> at ${'/plan'}); default loom-plans`)
    .option('--plan-host-path <dir>', 'or: the shards directory on every node (hostPath)')
    .option('--ingress-host <host>', "the Ingress rule's host (default: any)")
    .option('--ingress-class <class>', "ingressClassName (default: the cluster's default class)")
    .option('--request-timeout-ms <ms>', 'loom serve --request-timeout-ms; the SIGTERM grace period is this plus 15 s', '30000')
    .option('--loom-command <cmd>', 'how the image runs loom (split on spaces)', 'loom')
    .action((dir: string, flags: K8sFlags) => {
      const file = shardsOf(dir);
      if (flags.planClaim !== undefined && flags.planHostPath !== undefined)
        fail('USAGE', '--plan-claim and --plan-host-path are two places for the plans: give one');
      if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(flags.name) || flags.name.length > 50)
        fail('USAGE', `--name '${flags.name}' must be a DNS label (lowercase letters, digits, '-'), at most 50 characters`);
      const port = int('--port', flags.port, 1, 65535);
      const grpcPort = int('--grpc-port', flags.grpcPort, 0, 65535);
      if (grpcPort === port) fail('USAGE', `--grpc-port ${grpcPort} is --port too; give them different ports`);
      const yaml = renderK8s(file, {
        image: flags.image,
        name: flags.name,
        ...(flags.namespace !== undefined ? { namespace: flags.namespace } : {}),
        port,
        grpcPort,
        replicas: int('--replicas', flags.replicas, 1, 1000),
        gpuResource: flags.gpuResource,
        plans: flags.planHostPath !== undefined ? { hostPath: path.resolve(flags.planHostPath) } : { claim: flags.planClaim ?? 'loom-plans' },
        ...(flags.ingressHost !== undefined ? { ingressHost: flags.ingressHost } : {}),
        ...(flags.ingressClass !== undefined ? { ingressClass: flags.ingressClass } : {}),
        requestTimeoutMs: int('--request-timeout-ms', flags.requestTimeoutMs, 1, 3_600_000),
        loomCommand: flags.loomCommand.split(' ').filter((s) => s !== ''),
      });
      write(flags.output, yaml, `${file.shards.length} Deployments and Services, 1 Ingress; apply: kubectl apply -f ${flags.output}`);
    });
}
