import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { fail } from '../../ir/errors.js';
import {
  DEFAULT_BODY_LIMIT,
  DEFAULT_LIMITS,
  DEFAULT_TOP_K,
  type ReloadReport,
  createServer,
  defaultIntakeThreads,
  reusePortUnsupported,
} from '../../runtime/serve/index.js';
import { loadServeSource } from './serve-reload.js';
import { DEVICES_HELP } from './serve-shards.js';

interface ServeFlags {
  port: string;
  host: string;
  backend: string;
  threads?: string;
  queueTicks?: string;
  defaultSloMs?: string;
  checkFinite?: boolean;
  pipeline?: boolean;
  maxBodyMb: string;
  logLevel: string;
  requestTimeoutMs: string;
  headersTimeoutMs: string;
  keepAliveTimeoutMs: string;
  maxConnections: string;
  auth?: string;
  tlsCert?: string;
  tlsKey?: string;
  grpcPort: string;
  grpcHost?: string;
  metricsPerTenant?: boolean;
  metricsTopK: string;
  devices?: string;
  intakeThreads?: string;
}

const BACKENDS = ['auto', 'cpu', 'cuda'] as const;
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function positive(flag: string, value: string, integer: boolean): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n)))
    fail('USAGE', `${flag} must be a positive ${integer ? 'integer' : 'number'}, got '${value}'`);
  return n;
}

// 127.0.0.0/8, ::1, localhost: only this machine can connect.
function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:127\.\d+\.\d+\.\d+$/.test(h);
}

// What `loom serve` warns about once at startup (stderr): other machines can call every model, or tokens
// cross the network in clear.
export function authWarnings(o: { host: string; auth: boolean; tls: boolean }): string[] {
  if (isLoopback(o.host)) return [];
  if (!o.auth) return [`listening on ${o.host} without --auth: any client that can reach this address may call every model (see --auth FILE)`];
  if (!o.tls) return [`listening on ${o.host} with --auth but without --tls-cert/--tls-key: bearer tokens cross the network in clear`];
  return [];
}

function readPem(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    fail('IO', `${flag}: cannot read ${file}: ${(e as Error).message}`);
  }
}

const RELOAD_HELP = [
  'Changing the plan without a restart (hot swap): kill -HUP <pid>, or POST /v2/repository/reload, re-reads <plan-dir>',
  '(point a symbolic link at the new plan with an atomic rename first), loads it beside the old one and switches to it;',
  'the old plan answers the requests it accepted, then is freed. A plan that fails to load leaves the old one serving',
  '(stderr, the JSON log, loom_plan_reloads_total{result="error"}). With --auth the auth file is re-read too.',
  '  POST /v2/repository/reload   with --auth: a token whose entry has "admin": true; without: loopback clients only',
  '  POST /v2/repository/index    the tenants and their state: [{name, version, state: READY|UNAVAILABLE, reason}]',
  '  loom serve shards/ reloads the whole shard set on the same --devices.',
  '  With --intake-threads N the switch reaches every worker before the reload reports (either route works on any worker).',
];

// The stderr line of a reload (the JSON log has the same, with the lists of tenants added and removed).
export function reloadLine(r: ReloadReport): string {
  if (!r.ok) return `reload failed; generation ${r.generation} keeps serving: ${r.error}`;
  return (
    `reloaded: generation ${r.generation} from ${r.source} (plan sha256 ${r.sha!.slice(0, 12)}…): ${r.added.length} added, ${r.removed.length} removed, ` +
    `${r.kept} kept; loaded in ${Math.round(r.loadMs)} ms, the old plan drained and freed ${Math.round(r.drainMs)} ms after the switch`
  );
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve every tenant of a compiled plan over the Open Inference Protocol v2 (KServe/Triton HTTP), with Prometheus /metrics')
    .argument('<plan-dir>', 'a directory written by `loom compile` (or by `loom compile --shards N`: every shard, see below)')
    .option('--port <n>', 'TCP port (0: any free port)', '8000')
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--backend <name>', `execution backend: ${BACKENDS.join(' | ')}`, 'auto')
    .option('--devices <list>', 'where each shard runs, in shard order: GPU indices and/or cpu, e.g. 0,1 or cpu,cpu (see below)')
    .option('--threads <n>', 'CPU backend worker threads (default: all cores)')
    .option(
      '--queue-ticks <n>',
      'per-tenant queue quota, in full batches (maxBatch rows each), for every model (default: 4 for models without an SLO; a model with an SLO is admitted while its predicted completion is within it, up to 256 batches)',
    )
    .option('--default-slo-ms <ms>', 'deadline for tenants whose manifest gives no sloMs (default: none)')
    .option('--check-finite', 'refuse NaN/Inf in float inputs for every model (without it: only models whose manifest entry sets "checkFinite": true)')
    .option(
      '--pipeline',
      'batch the next tick while the current one runs, so it starts the moment that one ends (default off: on the CPU backend it did not raise throughput and made ticks smaller)',
    )
    .option('--max-body-mb <n>', 'largest accepted request body, MiB', String(DEFAULT_BODY_LIMIT / (1024 * 1024)))
    .option(
      '--request-timeout-ms <ms>',
      'a request (headers and body) must arrive in full within this, else 408 and the connection closes',
      String(DEFAULT_LIMITS.requestTimeoutMs),
    )
    .option('--headers-timeout-ms <ms>', 'its headers must arrive within this (capped at --request-timeout-ms)', String(DEFAULT_LIMITS.headersTimeoutMs))
    .option(
      '--keep-alive-timeout-ms <ms>',
      "an idle keep-alive connection is closed after this (keep it above a load balancer's idle timeout)",
      String(DEFAULT_LIMITS.keepAliveTimeoutMs),
    )
    .option(
      '--max-connections <n>',
      'open connections at most; more are closed at accept (0: no cap; keep it below `ulimit -n`)',
      String(DEFAULT_LIMITS.maxConnections),
    )
    .option(
      '--auth <file>',
      'require bearer tokens: JSON {"tokens":[{"name","sha256":"<hex sha256 of the token>","tenants":[ids] or "*","metrics"?:true,"admin"?:true}]} ("admin": may POST /v2/repository/reload; default: no authentication)',
    )
    .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (chain); needs --tls-key')
    .option('--tls-key <file>', 'the PEM private key for --tls-cert')
    .option('--grpc-port <n>', 'also serve the OIP v2 gRPC service (inference.GRPCInferenceService) on this TCP port (0: off)', '0')
    .option('--grpc-host <addr>', 'address for --grpc-port (default: --host)')
    .option(
      '--metrics-per-tenant',
      'label the request, latency, queue, refusal, SLO-miss and cancel series by tenant (about 40 series per tenant that saw traffic: 26 MB a scrape at 10,000 busy tenants); default: fleet-level series, about 17 KB a scrape at any fleet size',
    )
    .option(
      '--metrics-top-k <n>',
      'tenants named by the loom_top_tenant_* gauges (most rows queued, most refused, most SLO misses; 0: none)',
      String(DEFAULT_TOP_K),
    )
    .option(
      '--intake-threads <n>',
      `HTTP intake worker threads: they parse, decode, validate and encode requests on one shared port and hand them to the tick thread (0: HTTP on the tick thread; default: cores - 1, at most 16, here ${defaultIntakeThreads()})`,
    )
    .option('--log-level <level>', `JSON log level on stdout: ${LEVELS.join(' | ')}`, 'info')
    .addHelpText(
      'after',
      `\nExample:\n  loom serve plan/ --port 8000\n  curl -s localhost:8000/v2/models/fraud-a/infer -d '{"inputs":[{"name":"input","shape":[1,32],"datatype":"FP32","data":[...]}]}'\n  loom serve shards/ --devices 0,1 --port 8000\n\n${RELOAD_HELP.join('\n')}\n\n${DEVICES_HELP.join('\n')}\n`,
    )
    .action(async (dir: string, flags: ServeFlags) => {
      if (!(BACKENDS as readonly string[]).includes(flags.backend)) fail('USAGE', `--backend must be one of ${BACKENDS.join(', ')}, got '${flags.backend}'`);
      if (!(LEVELS as readonly string[]).includes(flags.logLevel)) fail('USAGE', `--log-level must be one of ${LEVELS.join(', ')}, got '${flags.logLevel}'`);
      const port = Number(flags.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) fail('USAGE', `--port must be 0..65535, got '${flags.port}'`);
      const queueTicks = flags.queueTicks === undefined ? undefined : positive('--queue-ticks', flags.queueTicks, false);
      const defaultSloMs = flags.defaultSloMs === undefined ? null : positive('--default-slo-ms', flags.defaultSloMs, false);
      const bodyLimit = Math.floor(positive('--max-body-mb', flags.maxBodyMb, false) * 1024 * 1024);
      const requestTimeoutMs = positive('--request-timeout-ms', flags.requestTimeoutMs, true);
      const headersTimeoutMs = positive('--headers-timeout-ms', flags.headersTimeoutMs, true);
      const keepAliveTimeoutMs = positive('--keep-alive-timeout-ms', flags.keepAliveTimeoutMs, true);
      const maxConnections = Number(flags.maxConnections);
      if (!Number.isInteger(maxConnections) || maxConnections < 0)
        fail('USAGE', `--max-connections must be a non-negative integer, got '${flags.maxConnections}'`);
      const grpcPort = Number(flags.grpcPort);
      if (!Number.isInteger(grpcPort) || grpcPort < 0 || grpcPort > 65535) fail('USAGE', `--grpc-port must be 0..65535 (0: off), got '${flags.grpcPort}'`);
      const grpcHost = flags.grpcHost ?? flags.host;
      if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) fail('USAGE', '--tls-cert and --tls-key go together: give both or neither');
      const tls = flags.tlsCert !== undefined ? { cert: readPem('--tls-cert', flags.tlsCert), key: readPem('--tls-key', flags.tlsKey!) } : null;
      const topK = Number(flags.metricsTopK);
      if (!Number.isInteger(topK) || topK < 0) fail('USAGE', `--metrics-top-k must be a non-negative integer, got '${flags.metricsTopK}'`);
      const threads = flags.threads === undefined ? undefined : positive('--threads', flags.threads, true);
      const intakeThreads = flags.intakeThreads === undefined ? defaultIntakeThreads() : Number(flags.intakeThreads);
      if (!Number.isInteger(intakeThreads) || intakeThreads < 0 || intakeThreads > 256)
        fail('USAGE', `--intake-threads must be an integer 0..256 (0: HTTP on the tick thread), got '${flags.intakeThreads}'`);

      // SIGHUP before the server listens (the plan still loading): ignored, said on stderr, never the default
      // action (which ends the process)
      let onHangup: () => void = () => process.stderr.write('loom: SIGHUP while starting: ignored (reload once the server listens)\n');
      const hangup = () => onHangup();
      process.on('SIGHUP', hangup);
      const source = {
        dir,
        backend: flags.backend as (typeof BACKENDS)[number],
        ...(flags.devices !== undefined ? { devices: flags.devices } : {}),
        ...(threads !== undefined ? { threads } : {}),
        ...(flags.auth !== undefined ? { auth: flags.auth } : {}),
      };
      const loaded = await loadServeSource(source);
      const auth = loaded.value.auth ?? null;
      const server = createServer({
        ...(loaded.value.runner ? { runner: loaded.value.runner } : { shards: loaded.value.shards! }),
        planSource: { source: loaded.source, sha: loaded.sha },
        reload: () => loadServeSource(source),
        scheduler: { queueTicks, defaultSloMs, checkFinite: flags.checkFinite === true, pipeline: flags.pipeline === true },
        bodyLimit,
        logger: { level: flags.logLevel },
        requestTimeoutMs,
        headersTimeoutMs,
        keepAliveTimeoutMs,
        maxConnections,
        auth,
        tls,
        grpc: grpcPort > 0,
        metrics: { perTenant: flags.metricsPerTenant === true, topK },
        intakeThreads,
      });
      let url: string;
      let grpcAt: string | null = null;
      try {
        url = await server.listen(port, flags.host);
      } catch (e) {
        loaded.close();
        fail('IO', `cannot listen on ${flags.host}:${port}: ${(e as Error).message}`);
      }
      if (grpcPort > 0) {
        try {
          grpcAt = await server.listenGrpc(grpcPort, grpcHost);
        } catch (e) {
          await server.shutdown();
          fail('IO', `--grpc-port: cannot listen on ${grpcHost}:${grpcPort}: ${(e as Error).message}`);
        }
      }
      const hosts = grpcPort > 0 && grpcHost !== flags.host ? [flags.host, grpcHost] : [flags.host];
      for (const h of hosts) for (const w of authWarnings({ host: h, auth: auth !== null, tls: tls !== null })) process.stderr.write(`loom: warning: ${w}\n`);
      const n = loaded.tenants.length;
      const shards = loaded.value.shards;
      const on = shards ? `${shards.length} shards (${shards.map((s) => `${s.id}: ${s.device}`).join(', ')})` : loaded.value.runner!.backend;
      const k = server.intakeThreads;
      if (intakeThreads > 0 && k === 0)
        process.stderr.write(
          `loom: warning: --intake-threads ${intakeThreads}: ${reusePortUnsupported() ?? 'not available'}; serving HTTP on the tick thread\n`,
        );
      const intake = k === 0 ? 'HTTP on the tick thread' : `HTTP intake on ${k} worker thread${k === 1 ? '' : 's'}`;
      // SIGHUP: reload the plan directory (a symbolic link may point at a new plan by now); registered before
      // the startup line, so a SIGHUP sent after it never kills the process
      onHangup = () => {
        process.stderr.write(`loom: SIGHUP: reloading ${dir}\n`);
        server.reload().then(
          (r) => process.stderr.write(`loom: ${reloadLine(r)}\n`),
          (e: unknown) => process.stderr.write(`loom: reload failed: ${e instanceof Error ? e.message : String(e)}\n`),
        );
      };
      process.stderr.write(
        `loom: serving ${n} model${n === 1 ? '' : 's'} on ${on} at ${url} (OIP v2: ${url}/v2/models/{model}/infer, metrics: ${url}/metrics; ${intake})${grpcAt ? `; gRPC (inference.GRPCInferenceService${tls ? ', TLS' : ''}) at ${grpcAt}` : ''}\n`,
      );
      await new Promise<void>((resolve, reject) => {
        const stop = (signal: string) => {
          process.stderr.write(`loom: ${signal}: finishing accepted requests, then exiting\n`);
          server.shutdown().then(resolve, reject);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
      process.off('SIGHUP', hangup);
      const { accepted, answered, failed, cancelled } = server.scheduler.stats;
      process.stderr.write(
        `loom: stopped; ${accepted} accepted requests: ${answered} answered, ${failed} failed by their tick, ${cancelled} dropped (client gone)\n`,
      );
    });
}
