// Tenant authentication (`loom serve --auth FILE`) and TLS: bearer tokens stored as sha256 digests, each
// allowed some tenants (or "*") and optionally /metrics; 401 without or with an unknown token (with
// WWW-Authenticate: Bearer), 403 for a tenant the token may not use; health stays open; tokens never reach
// the logs. TLS with a self-signed certificate made by openssl at test time (skipped, saying why, without it).
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoadedPlan, loadPlan } from '../../runtime/index.js';
import { type AuthConfig, type LoomServer, createServer, loadAuthFile, parseAuthConfig } from '../../runtime/serve/index.js';
import { authWarnings } from '../../src/cli/serve.js';
import { compileTestFleet, oipBody, requestInputs } from './fleet.js';
import { hasOpenssl, httpsGet, selfSigned } from './tls.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const TOKEN_A = 'token-for-team-a-3f9c1e';
const TOKEN_ALL = 'token-for-ops-77b2d0';
const TOKEN_METRICS = 'token-for-prometheus-c41a';
const AUTH_FILE = {
  tokens: [
    { name: 'team-a', sha256: sha(TOKEN_A), tenants: ['mlp-a', 'lstm-a'] },
    { name: 'ops', sha256: sha(TOKEN_ALL).toUpperCase(), tenants: '*' },
    { name: 'prometheus', sha256: sha(TOKEN_METRICS), tenants: [], metrics: true },
  ],
};
const TENANTS = ['mlp-a', 'mlp-b', 'mlp-c', 'lstm-a', 'enc-a'];

let planDir = '';
let loaded: LoadedPlan;
let server: LoomServer;
let url = '';
let logs = '';

beforeAll(async () => {
  planDir = await compileTestFleet();
  loaded = await loadPlan(planDir, { backend: 'cpu' });
  const auth = parseAuthConfig(JSON.stringify(AUTH_FILE), 'auth.json', TENANTS);
  server = createServer({
    runner: await loadPlan(planDir, { backend: 'cpu' }),
    auth,
    logger: { level: 'trace', stream: { write: (s: string) => void (logs += s) } },
  });
  url = await server.listen(0, '127.0.0.1');
});
afterAll(async () => {
  await server?.shutdown();
  loaded?.close();
});

async function call(p: string, token: string | null, init: { method?: string; body?: string; authorization?: string } = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (init.authorization !== undefined) headers.authorization = init.authorization;
  const r = await fetch(url + p, { method: init.method ?? 'GET', headers, ...(init.body !== undefined ? { body: init.body } : {}) });
  const text = await r.text();
  return { status: r.status, text, headers: r.headers };
}

describe('the auth file', () => {
  const bad: Array<[unknown, RegExp]> = [
    ['{', /auth\.json: not JSON/],
    [{}, /auth\.json: 'tokens' must be a non-empty array/],
    [{ tokens: [{ name: 'x', sha256: 'abc', tenants: '*' }] }, /tokens\[0\] \('x'\)\.sha256 must be 64 hex digits/],
    [{ tokens: [{ name: 'x', sha256: sha('t'), tenants: ['nope'] }] }, /tokens\[0\] \('x'\)\.tenants: no tenant 'nope' in this plan/],
    [{ tokens: [{ name: 'x', sha256: sha('t'), tenants: 'some' }] }, /tokens\[0\] \('x'\)\.tenants must be "\*" or an array/],
    [{ tokens: [{ name: 'x', sha256: sha('t'), tenants: '*', metric: true }] }, /tokens\[0\] \('x'\): unknown field 'metric'/],
    [
      {
        tokens: [
          { name: 'x', sha256: sha('t'), tenants: '*' },
          { name: 'y', sha256: sha('t'), tenants: '*' },
        ],
      },
      /tokens\[1\] \('y'\)\.sha256: the same digest as token 'x'/,
    ],
  ];
  it.each(bad)('is refused with a message naming the field: %j', (content, message) => {
    expect(() => parseAuthConfig(typeof content === 'string' ? content : JSON.stringify(content), 'auth.json', TENANTS)).toThrow(message);
  });

  it('is read from a file; an unreadable one is a clear error', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'loom-auth-'));
    writeFileSync(path.join(dir, 'auth.json'), JSON.stringify(AUTH_FILE));
    expect(loadAuthFile(path.join(dir, 'auth.json'), TENANTS).tokens.map((t) => t.name)).toEqual(['team-a', 'ops', 'prometheus']);
    expect(() => loadAuthFile(path.join(dir, 'missing.json'), TENANTS)).toThrow(/cannot read the auth file .*missing\.json/);
  });
});

describe('with --auth', () => {
  const body = () => oipBody(requestInputs(loaded.plan, 'mlp-a', 1, 1));

  it('health stays open', async () => {
    expect((await call('/v2/health/live', null)).status).toBe(200);
    expect((await call('/v2/health/ready', null)).status).toBe(200);
  });

  it('no token, an unknown one or a malformed header: 401 with WWW-Authenticate: Bearer and an OIP error', async () => {
    for (const [token, authorization] of [
      [null, undefined],
      ['wrong-token', undefined],
      [null, `Basic ${Buffer.from('a:b').toString('base64')}`],
      [null, 'Bearer'],
    ] as const) {
      for (const [p, method] of [
        ['/v2/models/mlp-a/infer', 'POST'],
        ['/v2/models/mlp-a', 'GET'],
        ['/v2/models/mlp-a/ready', 'GET'],
        ['/v2/models/mlp-a/versions/1/infer', 'POST'],
        ['/metrics', 'GET'],
      ] as const) {
        const r = await call(p, token, { method, ...(method === 'POST' ? { body: body() } : {}), ...(authorization ? { authorization } : {}) });
        expect(r.status, `${p} ${token} ${authorization}`).toBe(401);
        expect(r.headers.get('www-authenticate')).toMatch(/^Bearer realm="loom"/);
        expect(JSON.parse(r.text).error).toMatch(/token/);
      }
    }
  });

  it("a token used for a tenant it does not cover: 403 (unknown models too, so names don't leak)", async () => {
    for (const p of ['/v2/models/mlp-b/infer', '/v2/models/mlp-b', '/v2/models/mlp-b/ready', '/v2/models/secret-tenant']) {
      const r = await call(p, TOKEN_A, p.endsWith('infer') ? { method: 'POST', body: body() } : {});
      expect(r.status, p).toBe(403);
      expect(JSON.parse(r.text).error).toMatch(/token 'team-a' may not use model/);
      expect(r.text).not.toContain('mlp-c'); // no list of the server's models
    }
    expect((await call('/metrics', TOKEN_A)).status).toBe(403);
    expect((await call('/v2/models/mlp-a/infer', TOKEN_METRICS, { method: 'POST', body: body() })).status).toBe(403);
  });

  it('an allowed token is served: tenant lists, "*", and "metrics": true for /metrics', async () => {
    expect((await call('/v2/models/mlp-a/infer', TOKEN_A, { method: 'POST', body: body() })).status).toBe(200);
    expect((await call('/v2/models/mlp-a', TOKEN_A)).status).toBe(200);
    expect((await call('/v2/models/lstm-a/ready', TOKEN_A)).status).toBe(200);
    expect((await call('/v2/models/mlp-a/infer', TOKEN_ALL, { method: 'POST', body: body() })).status).toBe(200);
    expect((await call('/v2/models/enc-a', TOKEN_ALL)).status).toBe(200);
    expect((await call('/v2/models/nope', TOKEN_ALL)).status).toBe(404);
    const m = await call('/metrics', TOKEN_METRICS);
    expect(m.status).toBe(200);
    expect(m.text).toMatch(/loom_auth_failures_total\{code="401"\} [1-9]/);
    expect(m.text).toMatch(/loom_auth_failures_total\{code="403"\} [1-9]/);
  });

  it('tokens and the Authorization header never reach the logs', () => {
    expect(logs.length).toBeGreaterThan(0);
    for (const secret of [TOKEN_A, TOKEN_ALL, TOKEN_METRICS, 'wrong-token', Buffer.from('a:b').toString('base64')]) expect(logs).not.toContain(secret);
    expect(logs.toLowerCase()).not.toMatch(/"authorization"\s*:\s*"(?!\[redacted\])/i);
  });
});

describe('warnings at startup', () => {
  it('once, for a non-loopback address without --auth; tokens in clear without TLS', () => {
    expect(authWarnings({ host: '127.0.0.1', auth: false, tls: false })).toEqual([]);
    expect(authWarnings({ host: '::1', auth: false, tls: false })).toEqual([]);
    expect(authWarnings({ host: 'localhost', auth: false, tls: false })).toEqual([]);
    expect(authWarnings({ host: '127.0.0.1', auth: true, tls: false })).toEqual([]);
    const open = authWarnings({ host: '0.0.0.0', auth: false, tls: false });
    expect(open).toHaveLength(1);
    expect(open[0]).toMatch(/0\.0\.0\.0 without --auth/);
    expect(authWarnings({ host: '10.1.2.3', auth: true, tls: false })[0]).toMatch(/without --tls-cert/);
    expect(authWarnings({ host: '::', auth: true, tls: true })).toEqual([]);
  });
});

const openssl = hasOpenssl();
if (!openssl) console.log('skipping the TLS tests: no openssl binary on PATH to make a self-signed certificate');

describe.skipIf(!openssl)('TLS', () => {
  it('serves https with the given certificate and key, auth on top', async () => {
    const { cert, key } = selfSigned();
    const auth: AuthConfig = parseAuthConfig(JSON.stringify(AUTH_FILE), 'auth.json', TENANTS);
    const s = createServer({ runner: await loadPlan(planDir, { backend: 'cpu' }), auth, tls: { cert: readFileSync(cert), key: readFileSync(key) } });
    try {
      const u = await s.listen(0, '127.0.0.1');
      expect(u).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const ca = readFileSync(cert, 'utf8');
      expect((await httpsGet(`${u}/v2/health/ready`, ca)).status).toBe(200);
      expect((await httpsGet(`${u}/v2/models/mlp-a`, ca)).status).toBe(401);
      expect((await httpsGet(`${u}/v2/models/mlp-a`, ca, { authorization: `Bearer ${TOKEN_A}` })).status).toBe(200);
      // plain HTTP to the TLS port gets no answer
      const plain = await fetch(`${u.replace('https', 'http')}/v2/health/live`, { signal: AbortSignal.timeout(2000) }).then(
        (r) => r.status,
        () => 'failed',
      );
      expect(plain).not.toBe(200);
    } finally {
      await s.shutdown();
    }
  });
});
