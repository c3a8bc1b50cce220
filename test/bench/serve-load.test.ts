// bench/serve-load.ts's accounting, not its numbers: the ledger flags an answer with another request's id
// (mismatched), a request answered twice (duplicated) and one never answered (lost), on its own, against a
// floor server with injected faults, and finds nothing wrong against a real `loom serve` (CPU backend).
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Ledger, type TenantShape, answerId, closedLoop, freePort, openLoop, requestMaker, startFloor, startLoom } from '../../bench/serve-load.js';
import { writeMlpFleet } from '../../bench/common.js';
import { grpcClosedLoop, grpcOpenLoop, grpcRequestMaker } from '../../bench/serve-load-grpc.js';
import { type ClientPhase, mergePhases } from '../../bench/serve-load-ledger.js';
import { compileFleet } from '../../src/fleet/compile.js';

const TENANTS: TenantShape[] = [
  { id: 'mlp-0', input: 'input', width: 8, output: 'output' },
  { id: 'mlp-1', input: 'input', width: 8, output: 'output' },
];

const cleanup: Array<() => unknown> = [];
afterAll(async () => {
  for (const f of cleanup.reverse()) await f();
});

describe('serve-load accounting', () => {
  it('the ledger counts mismatched, duplicated and unanswered requests', () => {
    const l = new Ledger();
    for (const id of ['a', 'b', 'c', 'd']) l.send(id);
    l.answer('a', 200, '{"id":"a","outputs":[]}', 1);
    l.answer('b', 200, '{"id":"a","outputs":[]}', 1); // b answered with a's id
    l.answer('c', 429, '{"error":"busy"}', 1);
    l.answer('c', 200, '{"id":"c"}', 1); // c answered twice
    expect([l.sent, l.answers, l.ok, l.refused, l.mismatched, l.duplicated, l.unanswered]).toEqual([4, 4, 3, 1, 1, 1, 1]);
    expect(answerId('{"model_name":"m","id":"q-7","outputs":[]}')).toBe('q-7');
  });

  it('request bodies: JSON and binary carry the id, round robin over the tenants', () => {
    const json = requestMaker(TENANTS, 'json');
    expect(json('x1', 0).path).toBe('/v2/models/mlp-0/infer');
    expect(json('x2', 1).path).toBe('/v2/models/mlp-1/infer');
    const j = JSON.parse(json('x1', 0).body.toString()) as { id: string; inputs: Array<{ shape: number[]; data: number[] }> };
    expect(j.id).toBe('x1');
    expect(j.inputs[0]!.shape).toEqual([1, 8]);
    expect(j.inputs[0]!.data).toHaveLength(8);
    const b = requestMaker(TENANTS, 'binary')('x3', 0);
    const n = Number(b.headers['inference-header-content-length']);
    expect(JSON.parse(b.body.subarray(0, n).toString())).toMatchObject({ id: 'x3', inputs: [{ parameters: { binary_data_size: 32 } }] });
    expect(b.body.length - n).toBe(32);
  });

  it('against the floor: clean, then a server that answers with a wrong id, then one that drops requests', async () => {
    const clean = await startFloor(TENANTS);
    cleanup.push(clean.close);
    const ok = await closedLoop(clean.url, requestMaker(TENANTS, 'json'), { connections: 4, seconds: 1, target: 'floor', body: 'json', idPrefix: 'a-' });
    expect(ok.ok).toBeGreaterThan(50);
    expect([ok.lost, ok.duplicated, ok.mismatched, ok.errors]).toEqual([0, 0, 0, 0]);
    expect(ok.sent).toBe(ok.answers + 4); // one in flight per connection at the stop
    const open = await openLoop(clean.url, requestMaker(TENANTS, 'binary'), {
      rate: 200,
      seconds: 0.5,
      target: 'floor',
      body: 'binary',
      idPrefix: 'b-',
      sockets: 8,
      drainS: 5,
    });
    expect([open.sent, open.ok, open.lost, open.duplicated, open.mismatched]).toEqual([100, 100, 0, 0, 0]);

    const wrong = await startFloor(TENANTS, 'wrong-id'); // every 10th answer names another id
    cleanup.push(wrong.close);
    const w = await closedLoop(wrong.url, requestMaker(TENANTS, 'json'), { connections: 2, seconds: 0.5, target: 'floor', body: 'json', idPrefix: 'c-' });
    expect(w.mismatched).toBeGreaterThan(0);
    expect(Math.abs(w.mismatched - Math.floor(w.answers / 10))).toBeLessThanOrEqual(1); // the stop may cut one off

    const drop = await startFloor(TENANTS, 'drop'); // every 10th request is never answered
    cleanup.push(drop.close);
    const d = await openLoop(drop.url, requestMaker(TENANTS, 'json'), {
      rate: 200,
      seconds: 0.5,
      target: 'floor',
      body: 'json',
      idPrefix: 'd-',
      sockets: 4,
      drainS: 5,
    });
    expect(d.sent).toBe(100);
    expect(d.lost).toBe(10);
    expect(d.answers).toBe(90);
  });

  it('against loom serve (CPU backend): every request answered once, with its own id', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'loom-serve-load-test-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const manifest = writeMlpFleet(dir, [8, 16, 4], 2);
    const m = JSON.parse(readFileSync(manifest, 'utf8')) as { tenants: Array<Record<string, unknown>> };
    for (const t of m.tenants) Object.assign(t, { maxBatch: 8, sloMs: 500 });
    writeFileSync(manifest, JSON.stringify(m));
    await compileFleet(manifest, path.join(dir, 'plan'), { nvcc: 'off' });
    const { proc, url, grpc, intakeThreads } = await startLoom(path.join(dir, 'plan'), {
      backend: 'cpu',
      threads: '1',
      queueTicks: 4,
      intakeThreads: '1',
      grpcPort: 0,
    });
    expect(intakeThreads).toBe(1);
    expect(grpc).toBeNull(); // --grpc-port 0: off
    cleanup.push(() => killed(proc));
    const c = await closedLoop(url, requestMaker(TENANTS, 'json'), { connections: 8, seconds: 1, target: 'loom', body: 'json', idPrefix: 'e-' });
    expect(c.ok).toBeGreaterThan(20);
    expect([c.lost, c.duplicated, c.mismatched, c.other, c.errors]).toEqual([0, 0, 0, 0, 0]);
    const o = await openLoop(url, requestMaker(TENANTS, 'binary'), {
      rate: 100,
      seconds: 0.5,
      target: 'loom',
      body: 'binary',
      idPrefix: 'f-',
      sockets: 8,
      drainS: 10,
    });
    expect([o.sent, o.ok + o.refused429, o.lost, o.duplicated, o.mismatched]).toEqual([50, 50, 0, 0, 0]);
  });

  it('the gRPC client against loom serve --grpc-port: every call answered once, with its own id', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'loom-serve-load-grpc-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const manifest = writeMlpFleet(dir, [8, 16, 4], 2);
    const m = JSON.parse(readFileSync(manifest, 'utf8')) as { tenants: Array<Record<string, unknown>> };
    for (const t of m.tenants) Object.assign(t, { maxBatch: 8, sloMs: 500 });
    writeFileSync(manifest, JSON.stringify(m));
    await compileFleet(manifest, path.join(dir, 'plan'), { nvcc: 'off' });
    const port = await freePort();
    const { proc, grpc } = await startLoom(path.join(dir, 'plan'), { backend: 'cpu', threads: '1', queueTicks: 4, intakeThreads: '0', grpcPort: port });
    cleanup.push(() => killed(proc));
    expect(grpc).toBe(`127.0.0.1:${port}`);
    const make = grpcRequestMaker(TENANTS);
    expect(make('g1', 1)).toMatchObject({ model_name: 'mlp-1', id: 'g1', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 8] }] });
    const c = await grpcClosedLoop(grpc!, make, { concurrency: 8, channels: 2, seconds: 1, target: 'loom', idPrefix: 'g-' });
    expect(c.ok).toBeGreaterThan(20);
    expect([c.sent, c.lost, c.duplicated, c.mismatched, c.other, c.errors, c.inFlightAtStop]).toEqual([c.ok + c.refused429, 0, 0, 0, 0, 0, 0]);
    const o = await grpcOpenLoop(grpc!, make, { rate: 100, seconds: 0.5, target: 'loom', idPrefix: 'h-', channels: 2, drainS: 10 });
    expect([o.sent, o.ok + o.refused429, o.lost, o.duplicated, o.mismatched]).toEqual([50, 50, 0, 0, 0]);
    // a model the server does not have: every call is `other` (NOT_FOUND), none lost
    const bad = grpcRequestMaker([{ id: 'nope', input: 'input', width: 8, output: 'output' }]);
    const b = await grpcClosedLoop(grpc!, bad, { concurrency: 2, channels: 1, seconds: 0.3, target: 'loom', idPrefix: 'b-' });
    expect(b.ok).toBe(0);
    expect(b.other).toBe(b.sent);
  });

  it('merging the phases of several client processes adds counts and pools latencies', () => {
    const phase = (ok: number, lost: number, seconds: number): ClientPhase => ({
      target: 'loom',
      body: 'json',
      mode: 'closed',
      connections: 4,
      rate: null,
      seconds,
      sent: ok + lost + 4,
      answers: ok,
      ok,
      refused429: 0,
      other: 0,
      errors: 0,
      errorCodes: {},
      timeouts: 0,
      okPerS: 0,
      answersPerS: 0,
      p50Ms: 0,
      p99Ms: 0,
      p999Ms: 0,
      inFlightAtStop: 4,
      lost,
      duplicated: 0,
      mismatched: 0,
    });
    const merged = mergePhases([
      { phase: phase(3, 0, 2), latenciesMs: [1, 2, 3] },
      { phase: phase(2, 1, 2.5), latenciesMs: [10, 20] },
    ]);
    expect(merged).toMatchObject({ connections: 8, sent: 14, ok: 5, lost: 1, inFlightAtStop: 8, seconds: 2.5, okPerS: 2, p50Ms: 3, p99Ms: 20 });
  });
});

function killed(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill('SIGTERM');
  });
}
