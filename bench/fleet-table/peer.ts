// The PyTorch peer (bench/peers/fleet_torch.py) as a child process: first a probe that python3 imports torch
// with CUDA, then the run, its output passed through to stderr, its JSON read back. A peer that cannot run is
// a row note, never a crash of the table.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const PEER_SCRIPT = path.resolve(import.meta.dirname, '..', 'peers', 'fleet_torch.py');
export const PEER_NAMES = ['eager', 'streams', 'graph', 'vmap', 'vmap_graph'] as const;
export type PeerName = (typeof PEER_NAMES)[number];
// Norm-wise relative error of the peer's outputs against Loom's above which the peer is not the same model, per
// precision (fleet_peer/spec.py TOLERANCE says the same): both sides round at tf32/bf16/fp16, each its own way.
export const PEER_MISMATCH: Readonly<Record<string, number>> = { fp32: 1e-3, tf32: 1e-2, bf16: 3e-2, fp16: 1e-2 };

export function peerMismatchBound(precision: string): number {
  const b = PEER_MISMATCH[precision];
  if (b === undefined) throw new Error(`no peer tolerance for precision '${precision}' (known: ${Object.keys(PEER_MISMATCH).join(', ')})`);
  return b;
}

export interface PeerTiming {
  readonly p50_us: number;
  readonly p99_us: number;
  readonly iters: number;
  readonly semantics: string;
}

export interface PeerPeaks {
  readonly fp32_flops: number;
  readonly bf16_flops?: number;
  readonly copy_bytes_per_s: number;
  readonly h2d_bytes_per_s: number;
}

export interface PeerResult {
  readonly format: 'loom-peer-result';
  readonly version: 1;
  readonly fleet: string;
  readonly device: string;
  readonly torch: string;
  readonly date: string;
  readonly precision: string;
  readonly peaks: PeerPeaks | null; // null: run with --skip-peaks
  readonly check: Readonly<Record<string, number>>;
  readonly maxRelErr: number | null; // null: NaN in the peer (written as JSON null)
  readonly peers: Readonly<Partial<Record<PeerName, PeerTiming | null>>>;
  readonly notes: readonly string[];
}

// ran: exit 0 and a JSON; failed: it ran but exited non-zero (the JSON, when written, is kept: a model
// mismatch still reports its numbers); skipped: --no-peers; unavailable: no python3, torch or CUDA.
export type PeerRun =
  | { readonly status: 'ran'; readonly result: PeerResult; readonly seconds: number }
  | { readonly status: 'failed'; readonly reason: string; readonly result: PeerResult | null; readonly seconds: number }
  | { readonly status: 'skipped' | 'unavailable'; readonly reason: string };

// Whether `python` can run the peer here: imports torch and numpy and sees a CUDA device.
export function probePeer(python: string, script: string = PEER_SCRIPT): { ok: true; torch: string } | { ok: false; reason: string } {
  if (!existsSync(script)) return { ok: false, reason: `the peer script ${script} does not exist` };
  const r = spawnSync(python, ['-c', 'import torch, numpy; print(torch.__version__, torch.cuda.is_available())'], { encoding: 'utf8', timeout: 120_000 });
  if (r.error) return { ok: false, reason: `${python} cannot be started (${r.error.message})` };
  if (r.status !== 0) return { ok: false, reason: `${python} cannot import torch and numpy (${lastLine(r.stderr)})` };
  const [version, cuda] = r.stdout.trim().split(/\s+/);
  if (cuda !== 'True') return { ok: false, reason: `torch ${version ?? '?'} sees no CUDA device` };
  return { ok: true, torch: version ?? '?' };
}

export interface PeerOptions {
  readonly python: string;
  readonly script?: string;
  readonly fleetJson: string;
  readonly out: string;
  readonly iters: number;
  readonly warmup: number;
  readonly peers?: readonly PeerName[];
  readonly precision?: string; // --precision: the hand-off's, said again (the peer refuses a contradiction)
}

export async function runPeer(opts: PeerOptions): Promise<PeerRun> {
  const script = opts.script ?? PEER_SCRIPT;
  const probe = probePeer(opts.python, script);
  if (!probe.ok) return { status: 'unavailable', reason: probe.reason };
  const args = [
    script,
    '--fleet',
    opts.fleetJson,
    '--out',
    opts.out,
    '--iters',
    String(opts.iters),
    '--warmup',
    String(opts.warmup),
    ...(opts.peers ? ['--peers', opts.peers.join(',')] : []),
    ...(opts.precision ? ['--precision', opts.precision] : []),
  ];
  const t0 = Date.now();
  const { code, tail } = await passThrough(opts.python, args);
  const seconds = (Date.now() - t0) / 1e3;
  const result = readPeerResult(opts.out);
  if (code === 0 && result) return { status: 'ran', result, seconds };
  const why = code === 0 ? `exited 0 but wrote no readable ${opts.out}` : `exited with ${code}`;
  return { status: 'failed', reason: `${path.basename(script)} ${why}${tail ? `: ${tail}` : ''}`, result, seconds };
}

export function readPeerResult(file: string): PeerResult | null {
  if (!existsSync(file)) return null;
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as PeerResult;
    return r.format === 'loom-peer-result' ? r : null;
  } catch {
    return null;
  }
}

// The peer's stdout and stderr go to our stderr (our stdout is the table); the last line is kept for the reason.
function passThrough(cmd: string, args: readonly string[]): Promise<{ code: number; tail: string }> {
  return new Promise((resolve) => {
    let tail = '';
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer) => {
      process.stderr.write(chunk);
      tail = (tail + chunk.toString('utf8')).slice(-2000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (e) => resolve({ code: -1, tail: e.message }));
    child.on('close', (code, signal) => resolve({ code: code ?? -1, tail: signal ? `killed by ${signal}` : lastLine(tail) }));
  });
}

function lastLine(s: string): string {
  const lines = s.trim().split('\n');
  return lines[lines.length - 1]?.trim().slice(0, 300) ?? '';
}
