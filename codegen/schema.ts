// Structural checks of a parsed plan.json: every field the readers use is present with the right JSON type,
// so later code can trust the LaunchPlan type. Errors name the JSON path.
import { ARENA_IDS } from '../ir/contract/launch.js';
import { DTYPES } from '../ir/dtype.js';
import { fail } from '../ir/errors.js';

type J = unknown;

export function bad(path: string, msg: string): never {
  fail('PLAN_INVALID', `plan.json ${path}: ${msg}`);
}

export function obj(x: J, path: string): Record<string, J> {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) bad(path, `expected an object, got ${describe(x)}`);
  return x as Record<string, J>;
}

export function arr(x: J, path: string): J[] {
  if (!Array.isArray(x)) bad(path, `expected an array, got ${describe(x)}`);
  return x;
}

export function num(x: J, path: string): number {
  if (typeof x !== 'number') bad(path, `expected a number, got ${describe(x)}`);
  return x;
}

export function int(x: J, path: string, min = 0): number {
  if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < min) bad(path, `expected an integer >= ${min}, got ${describe(x)}`);
  return x;
}

export function sint(x: J, path: string): number {
  if (typeof x !== 'number' || !Number.isSafeInteger(x)) bad(path, `expected an integer, got ${describe(x)}`);
  return x;
}

export function str(x: J, path: string): string {
  if (typeof x !== 'string') bad(path, `expected a string, got ${describe(x)}`);
  return x;
}

export function bool(x: J, path: string): boolean {
  if (typeof x !== 'boolean') bad(path, `expected a boolean, got ${describe(x)}`);
  return x;
}

export function oneOf<T extends string>(x: J, options: readonly T[], path: string): T {
  if (typeof x !== 'string' || !(options as readonly string[]).includes(x)) bad(path, `expected one of ${options.join(', ')}, got ${describe(x)}`);
  return x as T;
}

export function dtype(x: J, path: string): void {
  oneOf(x, DTYPES, path);
}

export function describe(x: J): string {
  if (x === undefined) return 'nothing';
  const s = JSON.stringify(x);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

export function ref(x: J, path: string): void {
  const r = obj(x, path);
  oneOf(r.arena, ARENA_IDS, `${path}.arena`);
  int(r.offset, `${path}.offset`);
}

export function ints(x: J, path: string, signed = false): void {
  arr(x, path).forEach((v, i) => (signed ? sint(v, `${path}[${i}]`) : int(v, `${path}[${i}]`)));
}

export function optional(o: Record<string, J>, key: string, path: string, check: (v: J, p: string) => void): void {
  if (o[key] !== undefined) check(o[key], `${path}.${key}`);
}
