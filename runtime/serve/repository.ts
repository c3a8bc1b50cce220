// The repository routes of `loom serve`: KServe's repository extension index (POST /v2/repository/index: the
// tenants and their state) and Loom's admin route for the hot plan swap (POST /v2/repository/reload, swap.ts).
// Who may call them: with --auth the hook in http-app.ts checks the token (reload: an "admin" entry; index: any
// known token, which then sees its own tenants); without --auth the reload answers loopback clients only.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type AuthConfig, authorize } from './auth.js';
import type { ReloadReport, RepositoryEntry } from './swap.js';

export const RELOAD_ROUTE = '/v2/repository/reload';
export const INDEX_ROUTE = '/v2/repository/index';

// What answers the repository routes: the PlanSwitch on the tick thread (server.ts), or, from an intake worker,
// the tick thread asked over its message port (intake/worker.ts); either may answer later (a promise).
export interface RepositoryBackend {
  // the index as the server sees it (every tenant served now, then those a reload removed); the route filters
  // it by the caller's token
  index(readyOnly: boolean): RepositoryEntry[] | Promise<RepositoryEntry[]>;
  reload(): Promise<ReloadReport>;
}

export interface RepositoryRoutes extends RepositoryBackend {
  readonly auth: () => AuthConfig | null; // the current one (a reload may re-read the auth file)
}

// Without --auth the admin route answers only a client on this machine: a loopback peer that is not a
// proxy passing on someone else's request (no Forwarded / X-Forwarded-For / X-Real-IP header). null: allowed.
export function adminWithoutAuth(req: FastifyRequest): string | null {
  const peer = (req.socket.remoteAddress ?? '').toLowerCase();
  const loopback = peer === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(peer);
  const forwarded = ['forwarded', 'x-forwarded-for', 'x-real-ip'].find((h) => req.headers[h] !== undefined);
  if (loopback && forwarded === undefined) return null;
  const why = loopback ? `it came through a proxy (header ${forwarded})` : `it came from ${peer || 'an unknown address'}`;
  return `${RELOAD_ROUTE} is an admin route: without --auth it answers only clients on this machine (loopback, not through a proxy), and ${why}; start loom serve with --auth FILE and call it with a token whose entry has "admin": true, or send SIGHUP to the loom serve process`;
}

// An optional JSON object body (the repository index's {"ready": …}); undefined when it is not one.
function parseJsonBody(body: unknown): Record<string, unknown> | undefined {
  if (body === undefined || body === null || (Buffer.isBuffer(body) && body.length === 0)) return {};
  try {
    const v: unknown = JSON.parse(Buffer.isBuffer(body) ? body.toString('utf8') : String(body));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export function registerRepositoryRoutes(app: FastifyInstance, o: RepositoryRoutes): void {
  // every tenant served now and those a reload removed, with their state; with --auth, a token sees the
  // tenants it may use (all: "*" or an admin token)
  app.post(INDEX_ROUTE, async (req, reply) => {
    const body = parseJsonBody(req.body);
    if (body === undefined) return reply.code(400).send({ error: `${INDEX_ROUTE}: the body must be empty or a JSON object {"ready": true|false}` });
    if (body.ready !== undefined && typeof body.ready !== 'boolean') return reply.code(400).send({ error: `${INDEX_ROUTE}: 'ready' must be true or false` });
    let entries: RepositoryEntry[] = await o.index(body.ready === true);
    const auth = o.auth();
    const d = auth ? authorize(auth, req.headers.authorization, { kind: 'any' }) : null;
    if (d?.ok && !d.entry.admin && d.entry.tenants !== '*') {
      const may = d.entry.tenants;
      entries = entries.filter((e) => may.has(e.name));
    }
    return entries;
  });

  app.post(RELOAD_ROUTE, async (req, reply) => {
    if (!o.auth()) {
      const refused = adminWithoutAuth(req);
      if (refused !== null) return reply.code(403).send({ error: refused });
    }
    const r = await o.reload();
    const status = r.ok ? 200 : r.failure === 'busy' ? 409 : r.failure === 'closing' ? 503 : 422;
    return reply.code(status).send(r);
  });
}
