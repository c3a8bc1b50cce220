// `loom deploy nginx`: a complete nginx configuration in front of the shards of a `loom compile --shards N`
// directory. Every path in it is relative to nginx's prefix (run as `nginx -p PREFIX -c nginx.conf -e error.log`),
// so nothing is written outside PREFIX. Routing: /v2/models/<tenant>/… goes to the shard serving the tenant
// (a hash map on the model name); an unknown tenant gets the OIP error body; /v2/health/ready is ready only when
// every shard is (one probe per shard, chained through nginx itself: auth_request runs once per request);
// gRPC (optional) routes on the `loom-model` request metadata, because the model name inside a protobuf body is
// out of nginx's reach.
import type { ShardsFile } from '../fleet/shards-file.js';
import { type HostPort, hostPortText, selfAddress } from './address.js';

export interface NginxOptions {
  readonly listen: HostPort;
  readonly shards: readonly (readonly HostPort[])[]; // per shard, its servers (replicas)
  readonly grpcListen?: HostPort;
  readonly grpcShards?: readonly (readonly HostPort[])[];
  readonly maxBodyMb: number;
  readonly workerConnections?: number;
}

export const GRPC_MODEL_HEADER = 'loom-model';

// JSON inside an nginx single-quoted string: tenant ids are [A-Za-z0-9._-], so only the quoting matters.
const q = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
const up = (k: number) => `loom_shard_${k}`;
const grpcUp = (k: number) => `loom_grpc_shard_${k}`;

export function renderNginxConf(file: ShardsFile, o: NginxOptions): string {
  const ids = file.shards.flatMap((s) => s.tenants);
  const list = ids.length <= 20 ? ids.join(', ') : `${ids.slice(0, 20).join(', ')}, … (${ids.length} models)`;
  const self = selfAddress(o.listen);
  const n = file.shards.length;
  const L: string[] = [];
  const add = (indent: number, ...lines: string[]) => L.push(...lines.map((l) => (l === '' ? '' : `${'  '.repeat(indent)}${l}`)));
  add(
    0,
    `# Written by \`loom deploy nginx\` for ${n} shards of ${file.manifest} (${ids.length} models).`,
    '# Run: nginx -p PREFIX -c nginx.conf -e error.log   (PREFIX: the folder holding this file; every path below is',
    '# relative to it). Stop: nginx -p PREFIX -c nginx.conf -e error.log -s quit',
    'daemon off; # in the foreground, for a supervisor (systemd, a container)',
    'pid nginx.pid;',
    'error_log error.log warn;',
    'worker_processes auto;',
    `events { worker_connections ${o.workerConnections ?? 4096}; }`,
    '',
    'http {',
  );
  add(
    1,
    'access_log access.log;',
    'client_body_temp_path client_body_temp;',
    'proxy_temp_path proxy_temp;',
    'fastcgi_temp_path fastcgi_temp;',
    'uwsgi_temp_path uwsgi_temp;',
    'scgi_temp_path scgi_temp;',
    `client_max_body_size ${o.maxBodyMb}m; # loom serve --max-body-mb`,
    'server_tokens off;',
    '',
  );
  for (const [k, servers] of o.shards.entries()) {
    add(1, `upstream ${up(k)} { # shard ${k}: ${file.shards[k]!.tenants.length} models`);
    for (const s of servers) add(2, `server ${hostPortText(s)} max_fails=1 fail_timeout=2s;`);
    add(2, 'keepalive 32;');
    add(1, '}');
  }
  add(1, `upstream loom_self { server ${hostPortText(self)}; } # this nginx: the readiness chain`, '');
  add(1, '# the model name of /v2/models/<name>[/…]; names Loom could not have are left empty', 'map $uri $loom_model {');
  add(2, 'default "";', '"~^/v2/models/(?<m>[A-Za-z0-9][A-Za-z0-9._-]*)(/|$)" $m;');
  add(1, '}', 'map $loom_model $loom_shard {', '  default "";');
  for (const s of file.shards) for (const t of s.tenants) add(2, `${t} ${up(s.id)};`);
  add(1, '}', 'map $loom_shard $loom_shard_id {', '  default "";');
  for (const s of file.shards) add(2, `${up(s.id)} ${s.id};`);
  add(1, '}', '');

  add(1, 'server {');
  add(2, `listen ${hostPortText(o.listen)};`, 'default_type application/json;', 'proxy_http_version 1.1;', 'proxy_set_header Connection "";');
  add(2, 'proxy_set_header Host $host;', 'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;', 'proxy_next_upstream error timeout;', '');
  add(2, 'location /v2/models/ {');
  add(3, 'if ($loom_shard = "") {');
  add(4, `return 404 ${q(`{"error":"unknown model '$loom_model' (this deployment has: ${list})"}`)};`);
  add(3, '}', 'error_page 502 504 = @shard_down;', 'proxy_pass http://$loom_shard;', '}');
  add(2, 'location @shard_down {', '  add_header Retry-After 1 always;');
  add(
    3,
    `return 503 ${q(`{"error":"model '$loom_model' is served by shard $loom_shard_id, which is not answering (no server of upstream $loom_shard took the request); the other shards' models are unaffected"}`)};`,
  );
  add(2, '}', '');

  add(2, '# ready only when every shard is: each step probes one shard, then asks this nginx for the next step');
  for (let k = 0; k < n; k++) {
    add(2, `location = ${k === 0 ? '/v2/health/ready' : `/_loom/ready/${k}`} {`);
    add(3, `auth_request /_loom/probe/${k};`, 'error_page 500 502 503 504 = @not_ready;');
    if (k + 1 < n) add(3, 'proxy_intercept_errors on;', `proxy_pass http://loom_self/_loom/ready/${k + 1};`);
    else add(3, 'try_files /.loom-no-such-file @ready; # content after the access phase: `return` would skip the probe');
    add(2, '}');
    add(2, `location = /_loom/probe/${k} {`, '  internal;', '  proxy_pass_request_body off;', '  proxy_set_header Content-Length "";');
    add(3, `proxy_pass http://${up(k)}/v2/health/ready;`);
    add(2, '}');
  }
  add(2, `location @ready { return 200 '{"ready":true}'; }`);
  add(2, `location @not_ready { return 503 '{"ready":false}'; }`);
  for (let k = 0; k < n; k++) add(2, `location = /v2/health/ready/shard-${k} { proxy_pass http://${up(k)}/v2/health/ready; }`);
  add(2, `location = /v2/health/live { return 200 '{"live":true}'; }`);
  add(2, `location = /v2 { proxy_pass http://${up(0)}; }`);
  add(2, "# Prometheus: scrape every shard (these pass one shard's /metrics through)");
  for (let k = 0; k < n; k++) add(2, `location = /metrics/shard-${k} { proxy_pass http://${up(k)}/metrics; }`);
  add(2, 'location / {');
  add(
    3,
    `return 404 ${q(`{"error":"no route $request_method $uri (Open Inference Protocol v2 through loom's nginx: /v2, /v2/health/live, /v2/health/ready, /v2/health/ready/shard-<k>, /v2/models/{model}[/ready|/infer], /metrics/shard-<k>)"}`)};`,
  );
  add(2, '}');
  add(1, '}');

  if (o.grpcListen && o.grpcShards) renderGrpc(add, file, o.grpcListen, o.grpcShards);
  add(0, '}');
  return `${L.join('\n')}\n`;
}

// gRPC (HTTP/2, plaintext): ModelInfer/ModelMetadata/ModelReady carry the model in the protobuf body, which
// nginx cannot read, so clients send it again as the `loom-model` metadata; calls without it (ServerLive,
// ServerReady, ServerMetadata) go to shard 0; an unknown model gets gRPC NOT_FOUND from nginx itself.
function renderGrpc(add: (indent: number, ...l: string[]) => void, file: ShardsFile, listen: HostPort, shards: readonly (readonly HostPort[])[]): void {
  add(1, '');
  for (const [k, servers] of shards.entries()) {
    add(1, `upstream ${grpcUp(k)} {`);
    for (const s of servers) add(2, `server ${hostPortText(s)};`);
    add(1, '}');
  }
  add(1, `map $http_${GRPC_MODEL_HEADER.replace(/-/g, '_')} $loom_grpc_shard {`, `  "" ${grpcUp(0)};`, '  default "";');
  for (const s of file.shards) for (const t of s.tenants) add(2, `${t} ${grpcUp(s.id)};`);
  add(1, '}');
  add(1, 'server {', `  listen ${hostPortText(listen)} http2;`, '  default_type application/grpc;');
  add(2, 'location / {');
  add(3, 'if ($loom_grpc_shard = "") {', '  add_header grpc-status 5 always;');
  add(4, `add_header grpc-message "unknown model (${GRPC_MODEL_HEADER} metadata names no model of this deployment)" always;`);
  add(4, 'return 200;');
  add(3, '}', 'grpc_pass grpc://$loom_grpc_shard;', '}');
  add(1, '}');
}
