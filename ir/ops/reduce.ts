import { defineOp } from '../op.js';

// TODO(helper): ops of this family.
export const reduceOps = {} as const;
void defineOp;
