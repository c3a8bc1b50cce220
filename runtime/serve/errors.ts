// The one error type the serving runtime raises on purpose: it carries the HTTP status the server answers
// with, so the HTTP layer maps errors without knowing why they happened.
// 499: the client closed the connection before the answer (nginx's convention; nobody reads it).
export type ServeStatus = 400 | 404 | 413 | 429 | 499 | 500 | 503;

export class ServeError extends Error {
  override readonly name = 'ServeError';
  constructor(
    readonly status: ServeStatus,
    message: string,
    readonly retryAfterS: number | null = null, // 429 only: when the tenant's queue should have room again
  ) {
    super(message);
  }
}

export function isServeError(e: unknown): e is ServeError {
  return e instanceof ServeError;
}

export function refuse(status: ServeStatus, message: string, retryAfterS: number | null = null): never {
  throw new ServeError(status, message, retryAfterS);
}

const LISTED_MODELS = 20;

// The 404 for a model name the server does not have, naming a few it has: at thousands of tenants the full
// list would make every mistyped name a page-long answer (and a cost per bad request).
export function unknownModelMessage(name: string, ids: readonly string[]): string {
  const shown = ids.slice(0, LISTED_MODELS).join(', ');
  const more = ids.length > LISTED_MODELS ? `, … ${ids.length - LISTED_MODELS} more; GET /v2/models/{model} asks for one` : '';
  return `unknown model '${name}' (this server has ${ids.length}: ${shown}${more})`;
}

// A model a plan reload (swap.ts) removed: which generation removed it, and when (ISO time).
export interface RemovedModel {
  readonly generation: number;
  readonly at: string;
}

// The 404 for a model the server does not serve now, saying when a reload removed it (if one did).
export function notServedMessage(name: string, ids: readonly string[], removed: RemovedModel | undefined): string {
  const base = unknownModelMessage(name, ids);
  return removed ? `${base}; it was removed by the plan reload of ${removed.at} (generation ${removed.generation})` : base;
}
