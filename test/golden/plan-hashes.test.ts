// Refactors leave plans unchanged: every fleet of tools/plan-fleets.ts compiles to the same bytes as recorded.
// After a change that is meant to change plans, re-record with
//   npx tsx tools/plan-hashes.ts --write test/golden/plan-hashes.json
// and say why in the commit.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { planHashes } from '../../tools/plan-hashes.js';

const recorded = JSON.parse(readFileSync(new URL('./plan-hashes.json', import.meta.url), 'utf8')) as Record<string, Record<string, string>>;

describe('compiled plans are byte-identical to the recorded ones', () => {
  for (const [name, files] of Object.entries(recorded)) {
    it(`fleet ${name}`, async () => {
      expect(await planHashes(name)).toEqual(files);
    });
  }
});
