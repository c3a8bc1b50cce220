// The shipped device profiles (profiles/) and `--profile`'s three forms: a file, a shipped profile's name, auto.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readProfile } from '../../src/calibrate/profile.js';
import { chooseProfile, profileSlug, shippedProfiles, shippedProfilesDir } from '../../src/calibrate/shipped.js';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'loom-shipped-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const noGpu = () => null;

describe('shipped device profiles', () => {
  it('names a card as loom calibrate names its profile', () => {
    expect(profileSlug('NVIDIA H100 80GB HBM3')).toBe('nvidia-h100-80gb-hbm3');
    expect(profileSlug('NVIDIA H200')).toBe('nvidia-h200');
    expect(profileSlug('Intel(R) Xeon(R) Processor', 'cpu')).toBe('intel-xeon-processor-cpu');
    expect(profileSlug('???')).toBe('device');
  });

  it('every shipped profile reads, is a CUDA profile, and is filed under its card', () => {
    const names = shippedProfiles();
    expect(names).toContain('nvidia-h100-80gb-hbm3');
    for (const n of names) {
      const { profile } = readProfile(path.join(shippedProfilesDir(), `${n}.json`));
      expect(profile.backend, n).toBe('cuda');
      expect(profileSlug(profile.name), n).toBe(n);
    }
  });
});

describe('--profile: file, name or auto', () => {
  it('auto picks the shipped profile of the host GPU, else the roofline, saying which', () => {
    const h100 = chooseProfile('auto', () => 'NVIDIA H100 80GB HBM3');
    expect(h100.file).toBe(path.join(shippedProfilesDir(), 'nvidia-h100-80gb-hbm3.json'));
    expect(h100.note).toContain('NVIDIA H100 80GB HBM3 → the shipped profile nvidia-h100-80gb-hbm3');
    const none = chooseProfile('auto', noGpu);
    expect(none.file).toBeNull();
    expect(none.note).toMatch(/no GPU on this host; the roofline/);
    const other = chooseProfile('auto', () => 'NVIDIA A10');
    expect(other.file).toBeNull();
    expect(other.note).toMatch(/no shipped profile for NVIDIA A10 \(shipped: .*nvidia-h100-80gb-hbm3.*\); the roofline .*loom calibrate/);
  });

  it('a shipped name with or without .json, or a file as given', () => {
    const dir = shippedProfilesDir();
    expect(chooseProfile('nvidia-h100-80gb-hbm3', noGpu).file).toBe(path.join(dir, 'nvidia-h100-80gb-hbm3.json'));
    expect(chooseProfile('nvidia-h100-80gb-hbm3.json', noGpu).file).toBe(path.join(dir, 'nvidia-h100-80gb-hbm3.json'));
    const own = path.join(scratch, 'mine.json');
    writeFileSync(own, '{}');
    expect(chooseProfile(own, noGpu)).toEqual({ file: own, note: `profile ${own}` });
  });

  it('refuses anything else, listing the shipped profiles', () => {
    expect(() => chooseProfile('nvidia-a100', noGpu)).toThrow(
      /--profile: no file 'nvidia-a100' and no shipped profile of that name \(shipped: .*nvidia-h100-80gb-hbm3/,
    );
    expect(() => chooseProfile(path.join(scratch, 'nope', 'nvidia-h100-80gb-hbm3'), noGpu)).toThrow(/no file/);
    const empty = mkdtempSync(path.join(scratch, 'empty-'));
    expect(() => chooseProfile('x', noGpu, empty)).toThrow(/\(shipped: none; or auto/);
  });
});
