import { binaryOps } from './elementwise-binary.js';
import { miscOps } from './elementwise-misc.js';
import { unaryOps } from './elementwise-unary.js';

// Elementwise family: unary math/activations, broadcasting binary/variadic ops, Where, casts.
export const elementwiseOps = {
  ...unaryOps,
  ...binaryOps,
  ...miscOps,
} as const;
