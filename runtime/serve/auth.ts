// `loom serve --auth FILE`: bearer tokens per tenant. The file holds only sha256 digests of the tokens
// ({"tokens":[{"name","sha256","tenants":[…] | "*","metrics"?,"admin"?}]}), so it reveals no token; a request's token
// is hashed and compared with every entry's digest in constant time (crypto.timingSafeEqual, no early exit),
// so the time taken says neither which entry matched nor how much of a digest did.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fail } from '../../ir/errors.js';

export interface AuthToken {
  readonly name: string; // for logs and messages; never the token
  readonly digest: Buffer; // sha256 of the token, 32 bytes
  readonly tenants: '*' | ReadonlySet<string>;
  readonly metrics: boolean; // may read /metrics
  readonly admin: boolean; // may reload the plan (POST /v2/repository/reload)
}

export interface AuthConfig {
  readonly source: string; // the file, for messages
  readonly tokens: readonly AuthToken[];
}

// What a request may do: a tenant's routes (metadata, ready, infer), /metrics, the admin routes (reload), or
// any route a known token may call (the repository index, which then lists the token's tenants only).
export type AuthScope =
  | { readonly kind: 'tenant'; readonly tenant: string }
  | { readonly kind: 'metrics' }
  | { readonly kind: 'admin' }
  | { readonly kind: 'any' };

export type AuthDecision =
  | { readonly ok: true; readonly token: string; readonly entry: AuthToken }
  | { readonly ok: false; readonly status: 401 | 403; readonly message: string };

const FIELDS = new Set(['name', 'sha256', 'tenants', 'metrics', 'admin']);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// `tenants`: the plan's tenant ids; an entry naming another is an error (a typo would otherwise be a 403
// nobody can explain).
export function parseAuthConfig(text: string, source: string, tenants: readonly string[]): AuthConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    fail('USAGE', `${source}: not JSON (${(e as Error).message}); expected {"tokens":[{"name":…,"sha256":…,"tenants":[…] or "*"}]}`);
  }
  if (!isObject(raw) || !Array.isArray(raw.tokens) || raw.tokens.length === 0)
    fail('USAGE', `${source}: 'tokens' must be a non-empty array of {"name", "sha256", "tenants", "metrics"?, "admin"?}`);
  for (const k of Object.keys(raw)) if (k !== 'tokens') fail('USAGE', `${source}: unknown field '${k}' (only 'tokens')`);
  const known = new Set(tenants);
  const names = new Set<string>();
  const digests = new Map<string, string>();
  const out = raw.tokens.map((t: unknown, i: number): AuthToken => {
    if (!isObject(t)) fail('USAGE', `${source}: tokens[${i}] must be an object {"name", "sha256", "tenants", "metrics"?, "admin"?}`);
    if (typeof t.name !== 'string' || t.name.length === 0) fail('USAGE', `${source}: tokens[${i}].name must be a non-empty string`);
    const at = `${source}: tokens[${i}] ('${t.name}')`;
    if (names.has(t.name)) fail('USAGE', `${at}.name: another token has this name`);
    names.add(t.name);
    for (const k of Object.keys(t)) if (!FIELDS.has(k)) fail('USAGE', `${at}: unknown field '${k}' (fields: ${[...FIELDS].join(', ')})`);
    if (typeof t.sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(t.sha256))
      fail('USAGE', `${at}.sha256 must be 64 hex digits: the sha256 of the token (e.g. printf %s "$TOKEN" | sha256sum), not the token`);
    const hex = t.sha256.toLowerCase();
    const same = digests.get(hex);
    if (same !== undefined) fail('USAGE', `${at}.sha256: the same digest as token '${same}'`);
    digests.set(hex, t.name);
    let allowed: AuthToken['tenants'];
    if (t.tenants === '*') allowed = '*';
    else if (Array.isArray(t.tenants) && t.tenants.every((x) => typeof x === 'string')) {
      const list = t.tenants as string[];
      if (list.includes('*')) allowed = '*';
      else {
        for (const x of list) if (!known.has(x)) fail('USAGE', `${at}.tenants: no tenant '${x}' in this plan (its tenants: ${tenants.join(', ')})`);
        allowed = new Set(list);
      }
    } else fail('USAGE', `${at}.tenants must be "*" or an array of tenant ids`);
    if (t.metrics !== undefined && typeof t.metrics !== 'boolean') fail('USAGE', `${at}.metrics must be true or false`);
    if (t.admin !== undefined && typeof t.admin !== 'boolean') fail('USAGE', `${at}.admin must be true or false`);
    return { name: t.name, digest: Buffer.from(hex, 'hex'), tenants: allowed, metrics: t.metrics === true, admin: t.admin === true };
  });
  return { source, tokens: out };
}

export function loadAuthFile(file: string, tenants: readonly string[]): AuthConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    fail('IO', `cannot read the auth file ${file}: ${(e as Error).message}`);
  }
  return parseAuthConfig(text, file, tenants);
}

// The token a request carries: `Authorization: Bearer <token>` (scheme case-insensitive), or null.
function bearer(header: string | string[] | undefined): string | null {
  if (typeof header !== 'string') return null;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return m ? m[1]! : null;
}

export function authorize(config: AuthConfig, header: string | string[] | undefined, scope: AuthScope): AuthDecision {
  const token = bearer(header);
  if (token === null) return { ok: false, status: 401, message: "this server requires a bearer token: send 'Authorization: Bearer <token>'" };
  const digest = createHash('sha256').update(token, 'utf8').digest();
  let found: AuthToken | null = null;
  for (const t of config.tokens) if (timingSafeEqual(t.digest, digest) && found === null) found = t; // every entry compared
  if (found === null) return { ok: false, status: 401, message: 'the bearer token is not one this server knows' };
  const allowed =
    scope.kind === 'any' ||
    (scope.kind === 'metrics' ? found.metrics : scope.kind === 'admin' ? found.admin : found.tenants === '*' || found.tenants.has(scope.tenant));
  if (!allowed) {
    const what =
      scope.kind === 'metrics'
        ? '/metrics (its entry needs "metrics": true)'
        : scope.kind === 'admin'
          ? 'the admin routes (POST /v2/repository/reload; its entry needs "admin": true)'
          : `model '${scope.kind === 'tenant' ? scope.tenant : ''}'`;
    return { ok: false, status: 403, message: `token '${found.name}' may not use ${what}` };
  }
  return { ok: true, token: found.name, entry: found };
}
