// Where a compile's time goes (`loom compile --timings`, bench/compile-time.ts): seconds summed per phase.
// Tenants are imported one after another, so a phase's total is the sum over every tenant. 'client' runs on a
// worker thread beside 'weights + kernels' (src/fleet/compile.ts): its time overlaps theirs.
export interface PhaseTime {
  readonly phase: string;
  readonly seconds: number;
}

export interface PhaseClock {
  readonly add: (phase: string, seconds: number) => void;
  readonly time: <T>(phase: string, fn: () => T) => T;
  readonly timeAsync: <T>(phase: string, fn: () => Promise<T>) => Promise<T>;
  readonly phases: () => PhaseTime[]; // in the order each phase was first seen
}

export function createPhaseClock(): PhaseClock {
  const totals = new Map<string, number>();
  const add = (phase: string, seconds: number): void => {
    totals.set(phase, (totals.get(phase) ?? 0) + seconds);
  };
  const since = (t0: number): number => (performance.now() - t0) / 1000;
  return {
    add,
    time: (phase, fn) => {
      const t0 = performance.now();
      try {
        return fn();
      } finally {
        add(phase, since(t0));
      }
    },
    timeAsync: async (phase, fn) => {
      const t0 = performance.now();
      try {
        return await fn();
      } finally {
        add(phase, since(t0));
      }
    },
    phases: () => [...totals].map(([phase, seconds]) => ({ phase, seconds })),
  };
}
