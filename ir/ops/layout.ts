import { defineOp } from '../op.js';

// TODO(helper): ops of this family.
export const layoutOps = {} as const;
void defineOp;
