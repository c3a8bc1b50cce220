import { expect } from 'vitest';
import { isLoomError, type LoomErrorCode } from '../../ir/errors.js';

// Asserts fn throws a LoomError of `code` whose message contains every string and matches every pattern.
// Returns the message.
export function expectLoomError(fn: () => unknown, code: LoomErrorCode, ...expected: ReadonlyArray<string | RegExp>): string {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected a LoomError to be thrown').toBeDefined();
  if (!isLoomError(caught)) throw new Error(`expected LoomError ${code}, got ${String(caught)}`, { cause: caught });
  expect(`${caught.code}: ${caught.message}`).toMatch(new RegExp(`^${code}: `));
  for (const f of expected) {
    if (typeof f === 'string') expect(caught.message).toContain(f);
    else expect(caught.message).toMatch(f);
  }
  return caught.message;
}
