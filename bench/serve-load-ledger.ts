// bench/serve-load.ts's accounting (shared by its HTTP and gRPC clients): request bodies' tenant shapes, the
// ledger of sent and answered ids, a phase's summary and the merge of the phases of several client processes.

// json, binary: HTTP bodies (the binary tensor extension); grpc: ModelInfer with raw_input_contents
export type BodyKind = 'json' | 'binary' | 'grpc';

export interface TenantShape {
  readonly id: string;
  readonly input: string; // the input's name
  readonly width: number; // features per row
  readonly output: string;
}

// The id an answer names: the JSON body's (or the binary answer's JSON header's) "id".
export function answerId(body: string): string | null {
  const m = /"id"\s*:\s*"([^"]*)"/.exec(body);
  return m ? m[1]! : null;
}

// ---------------------------------------------------------------------------------------------------------
// Accounting: every request's id, sent once; every answer checked against the request it answers.

export class Ledger {
  sent = 0;
  answers = 0; // responses of any status
  ok = 0; // 2xx
  refused = 0; // 429
  other = 0; // any other status
  errors = 0; // transport errors (no response)
  readonly errorCodes: Record<string, number> = {}; // transport errors by code (ECONNRESET, EPIPE, ...)
  mismatched = 0; // a 2xx whose id is not its request's
  duplicated = 0; // a request answered more than once
  readonly latenciesMs: number[] = []; // of 2xx answers
  private readonly pending = new Set<string>();
  private readonly answered = new Set<string>();

  send(id: string): void {
    this.sent++;
    this.pending.add(id);
  }

  // status 0: a transport error (`code` says which). body: the answer (only its id is read, for 2xx).
  answer(sentId: string, status: number, body: string, latencyMs: number, code = 'unknown'): void {
    if (status === 0) {
      this.errors++;
      this.errorCodes[code] = (this.errorCodes[code] ?? 0) + 1;
      return;
    }
    this.answers++;
    if (this.answered.has(sentId) || !this.pending.has(sentId)) this.duplicated++;
    this.pending.delete(sentId);
    this.answered.add(sentId);
    if (status >= 200 && status < 300) {
      this.ok++;
      this.latenciesMs.push(latencyMs);
      if (answerId(body) !== sentId) this.mismatched++;
    } else if (status === 429) this.refused++;
    else this.other++;
  }

  get unanswered(): number {
    return this.pending.size;
  }
}

// Nearest-rank quantile of sorted samples (q in [0, 1]); NaN when empty.
function q(sorted: readonly number[], p: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

export interface PhaseResult {
  readonly target: string;
  readonly body: BodyKind;
  readonly mode: 'closed' | 'open';
  readonly connections: number | null;
  readonly rate: number | null;
  readonly seconds: number;
  readonly sent: number;
  readonly answers: number;
  readonly ok: number;
  readonly refused429: number;
  readonly other: number;
  readonly errors: number;
  readonly errorCodes: Record<string, number>; // transport errors by code
  readonly timeouts: number;
  readonly okPerS: number;
  readonly answersPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly inFlightAtStop: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly mismatched: number;
  readonly rejectedByReason: Record<string, number> | null; // loom's loom_admission_rejected_total deltas
  readonly sloMissed: number | null; // loom_slo_missed_total delta
  readonly intakeThreads: number | null; // loom serve --intake-threads (null: the floor)
  readonly clientProcs: number; // load-generating processes of the phase
}

// A phase as a client measures it (the server-side columns are added by the caller).
export type ClientPhase = Omit<PhaseResult, 'rejectedByReason' | 'sloMissed' | 'intakeThreads' | 'clientProcs'>;

export function summarize(
  base: Pick<PhaseResult, 'target' | 'body' | 'mode' | 'connections' | 'rate'>,
  ledger: Ledger,
  seconds: number,
  inFlightAtStop: number,
  timeouts: number,
): ClientPhase {
  const s = [...ledger.latenciesMs].sort((a, b) => a - b);
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  return {
    ...base,
    seconds: r3(seconds),
    sent: ledger.sent,
    answers: ledger.answers,
    ok: ledger.ok,
    refused429: ledger.refused,
    other: ledger.other,
    errors: ledger.errors,
    errorCodes: { ...ledger.errorCodes },
    timeouts,
    okPerS: Math.round(ledger.ok / seconds),
    answersPerS: Math.round(ledger.answers / seconds),
    p50Ms: r3(q(s, 0.5)),
    p99Ms: r3(q(s, 0.99)),
    p999Ms: r3(q(s, 0.999)),
    inFlightAtStop,
    lost: Math.max(0, ledger.unanswered - inFlightAtStop),
    duplicated: ledger.duplicated,
    mismatched: ledger.mismatched,
  };
}

// One phase from the phases several client processes ran at once (each with its own ids): counts add up,
// latencies are pooled for the quantiles, the rate is over the longest of them.
export function mergePhases(parts: ReadonlyArray<{ readonly phase: ClientPhase; readonly latenciesMs: ArrayLike<number> }>): ClientPhase {
  if (parts.length === 0) throw new Error('mergePhases: no phases');
  const first = parts[0]!.phase;
  const sum = (k: 'sent' | 'answers' | 'ok' | 'refused429' | 'other' | 'errors' | 'timeouts' | 'inFlightAtStop' | 'lost' | 'duplicated' | 'mismatched') =>
    parts.reduce((a, p) => a + p.phase[k], 0);
  const seconds = Math.max(...parts.map((p) => p.phase.seconds));
  const all = new Float64Array(parts.reduce((a, p) => a + p.latenciesMs.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(Array.from(p.latenciesMs), at);
    at += p.latenciesMs.length;
  }
  all.sort();
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  const sorted = Array.from(all);
  return {
    target: first.target,
    body: first.body,
    mode: first.mode,
    connections: first.connections === null ? null : parts.reduce((a, p) => a + (p.phase.connections ?? 0), 0),
    rate: first.rate === null ? null : parts.reduce((a, p) => a + (p.phase.rate ?? 0), 0),
    seconds,
    sent: sum('sent'),
    answers: sum('answers'),
    ok: sum('ok'),
    refused429: sum('refused429'),
    other: sum('other'),
    errors: sum('errors'),
    errorCodes: parts.reduce<Record<string, number>>((a, p) => {
      for (const [k, n] of Object.entries(p.phase.errorCodes ?? {})) a[k] = (a[k] ?? 0) + n;
      return a;
    }, {}),
    timeouts: sum('timeouts'),
    okPerS: Math.round(sum('ok') / seconds),
    answersPerS: Math.round(sum('answers') / seconds),
    p50Ms: r3(q(sorted, 0.5)),
    p99Ms: r3(q(sorted, 0.99)),
    p999Ms: r3(q(sorted, 0.999)),
    inFlightAtStop: sum('inFlightAtStop'),
    lost: sum('lost'),
    duplicated: sum('duplicated'),
    mismatched: sum('mismatched'),
  };
}
