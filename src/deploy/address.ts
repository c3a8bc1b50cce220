// HOST:PORT and k=HOST:PORT arguments of `loom deploy nginx`.
import { fail } from '../../ir/errors.js';

export interface HostPort {
  readonly host: string; // as written; IPv6 in brackets
  readonly port: number;
}

export function parseHostPort(s: string, flag: string): HostPort {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(s);
  if (!m) fail('USAGE', `${flag}: '${s}' is not HOST:PORT (e.g. 127.0.0.1:8000, loom-0.internal:8000, [::1]:8000)`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) fail('USAGE', `${flag}: port ${port} is not in 1..65535`);
  return { host: m[1]!, port };
}

export const hostPortText = (a: HostPort): string => `${a.host}:${a.port}`;

// "k=HOST:PORT" (repeatable: several addresses for one shard are its replicas).
export function parseShardAddresses(specs: readonly string[], shards: number, flag: string): HostPort[][] {
  const out: HostPort[][] = Array.from({ length: shards }, () => []);
  for (const spec of specs) {
    const m = /^(\d+)=(.+)$/.exec(spec);
    if (!m) fail('USAGE', `${flag}: '${spec}' is not k=HOST:PORT (k: the shard number in shards.json)`);
    const k = Number(m[1]);
    if (k >= shards) fail('USAGE', `${flag} ${spec}: there is no shard ${k} (the directory has shards 0..${shards - 1})`);
    out[k]!.push(parseHostPort(m[2]!, `${flag} ${k}`));
  }
  const missing = out.flatMap((a, k) => (a.length === 0 ? [k] : []));
  if (missing.length > 0)
    fail('USAGE', `${flag}: no address for shard${missing.length === 1 ? '' : 's'} ${missing.join(', ')}; give ${flag} k=HOST:PORT for every shard`);
  return out;
}

// Where nginx reaches its own listener (a wildcard address is reached on loopback).
export function selfAddress(a: HostPort): HostPort {
  if (a.host === '0.0.0.0' || a.host === '*') return { host: '127.0.0.1', port: a.port };
  if (a.host === '[::]') return { host: '[::1]', port: a.port };
  return a;
}
