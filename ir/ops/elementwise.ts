import { defineOp } from '../op.js';

// TODO(helper): ops of this family.
export const elementwiseOps = {} as const;
void defineOp;
