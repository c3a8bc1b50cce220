import { normOps } from './norm.js';
import { reduceFamilyOps } from './reduce-ops.js';

// Reduce family: Reduce*, ArgMax/ArgMin, and the ops that reduce inside (softmax, normalizations).
export const reduceOps = {
  ...reduceFamilyOps,
  ...normOps,
} as const;
