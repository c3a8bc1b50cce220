import { defineOp } from '../op.js';

// TODO(helper): ops of this family.
export const poolOps = {} as const;
void defineOp;
