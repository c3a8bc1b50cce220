// The hand-built plan (hand-plan.ts) written to a temporary plan directory and loaded on the CPU backend,
// for tests that run ticks through loadPlan; close() unloads it and removes the directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writePlanDir } from '../../codegen/index.js';
import { type LoadedPlan, loadPlan } from '../../runtime/index.js';
import { type HandPlan, handPlan } from './hand-plan.js';

export interface LoadedHandPlan {
  readonly dir: string;
  readonly hand: HandPlan;
  readonly loaded: LoadedPlan;
  close(): void;
}

export async function loadHandPlan(threads = 2): Promise<LoadedHandPlan> {
  const dir = mkdtempSync(path.join(tmpdir(), 'loom-hand-plan-'));
  const hand = handPlan();
  await writePlanDir(hand.plan, dir, { nvcc: 'off' });
  const loaded = await loadPlan(dir, { backend: 'cpu', threads });
  return {
    dir,
    hand,
    loaded,
    close: () => {
      loaded.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
