import { layoutIndexOps } from './layout-index.js';
import { layoutMoveOps } from './layout-move.js';
import { layoutShapeOps } from './layout-shape.js';

// The layout / shape-plumbing family: ops that view, select, join or move elements without arithmetic.
// Their shape rules also carry `dims` (known contents of shape-like tensors) so that Reshape/Expand
// targets computed from Shape(x) stay static, with the batch symbol where the batch is.
export const layoutOps = {
  ...layoutShapeOps,
  ...layoutIndexOps,
  ...layoutMoveOps,
} as const;

export type { ConstantOfShapeAttrs, ShapeAttrs } from './layout-shape.js';
export type { SplitAttrs } from './layout-index.js';
export type { DepthToSpaceAttrs, DepthToSpaceMode, PadAttrs, PadMode, TransposeAttrs } from './layout-move.js';
