import { fail } from '../../ir/errors.js';

// `--dim name=size`, repeatable: binds symbolic ONNX dims (e.g. sequence length) to sizes.
export function collectDim(value: string, prev: Record<string, number> = {}): Record<string, number> {
  const m = /^(.+)=(\d+)$/.exec(value);
  if (!m) fail('USAGE', `--dim expects name=size (e.g. --dim seq=64), got '${value}'`);
  const size = Number(m[2]);
  if (!(size > 0)) fail('USAGE', `--dim ${m[1]} must be a positive size, got ${m[2]}`);
  return { ...prev, [m[1]!]: size };
}
