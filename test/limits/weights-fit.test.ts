// A fleet whose weights pass the weights limit (the device's memory): the refusal names how many tenants
// would fit and how many devices the fleet needs (issue 18 item 4), or the tenant no device of the limit holds.
import { describe, expect, it } from 'vitest';
import { generateModel } from '../../models/index.js';
import { planFleet } from '../../src/planner/index.js';
import { tenantFromBytes } from '../planner/fleet-helpers.js';

// each tenant: 256x512 + 512x256 f32 weights and biases, about 1.0 MiB
const fleet = Array.from(
  { length: 5 },
  (_, i) => tenantFromBytes(`mlp-${i}`, generateModel('mlp', { seed: 10 + i, sizes: [256, 512, 256] } as never).bytes, 1).input,
);
const MiB = 1024 * 1024;

describe('weights past the limit', () => {
  it('names how many tenants fit and how many devices the fleet needs', () => {
    expect(() => planFleet(fleet, { limits: { maxWeightsBytes: 2.5 * MiB } })).toThrow(
      /the weights arena would take 5\.0 MiB .*past the limit of 2\.5 MiB .*The first 2 of 5 tenants fit \(1\.0 MiB .*of weights each on average\); the whole fleet needs at least 3 devices: loom compile --shards N/,
    );
    expect(() => planFleet(fleet, { limits: { maxWeightsBytes: 6 * MiB } })).not.toThrow();
  });

  it('names a tenant whose weights alone pass the limit', () => {
    expect(() => planFleet(fleet, { limits: { maxWeightsBytes: 0.5 * MiB } })).toThrow(
      /Tenant 'mlp-0' alone has 1\.0 MiB .*of weights: no device of this limit holds it/,
    );
  });
});
