import { defineOp } from '../op.js';

// TODO(helper): ops of this family.
export const linalgOps = {} as const;
void defineOp;
