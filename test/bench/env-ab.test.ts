// bench/env-ab.ts's --settings: LOOM_* assignments per setting, refused with a line naming what is wrong.
import { describe, expect, it } from 'vitest';
import { parseSettings, settingLabel, settingNotes } from '../../bench/env-ab.js';

describe('env-ab --settings', () => {
  it('splits settings by ; and variables by , (an empty setting is the defaults)', () => {
    const s = parseSettings('LOOM_CUDA_PDL=prefetch,LOOM_CUDA_PDL_PREFETCH=4; LOOM_CUDA_PDL=off;');
    expect(s).toEqual([{ LOOM_CUDA_PDL: 'prefetch', LOOM_CUDA_PDL_PREFETCH: '4' }, { LOOM_CUDA_PDL: 'off' }, {}]);
    expect(s.map(settingLabel)).toEqual(['LOOM_CUDA_PDL=prefetch,LOOM_CUDA_PDL_PREFETCH=4', 'LOOM_CUDA_PDL=off', 'defaults']);
  });

  it('refuses one setting, a non-LOOM variable, a missing =, and a variable set twice', () => {
    expect(() => parseSettings('LOOM_CUDA_PDL=off')).toThrow(/at least two settings/);
    expect(() => parseSettings('PATH=/x;LOOM_A=1')).toThrow(/setting 1: 'PATH=\/x' is not LOOM_VAR=value/);
    expect(() => parseSettings('LOOM_A=1;LOOM_B')).toThrow(/setting 2: 'LOOM_B' is not LOOM_VAR=value/);
    expect(() => parseSettings('LOOM_A=1,LOOM_A=2;')).toThrow(/setting 1 sets LOOM_A twice/);
  });

  it("prints the notes that say what a setting's variables did, each once", () => {
    const info = { pdlNote: 'LOOM_CUDA_PDL=prefetch: …', lanesNote: '', gemmPathsNote: 'paths' };
    expect(settingNotes({ LOOM_CUDA_PDL: 'prefetch', LOOM_CUDA_PDL_PREFETCH: '4', LOOM_CUDA_TILE: 'force' }, info)).toEqual([
      'pdlNote: LOOM_CUDA_PDL=prefetch: …',
      'gemmPathsNote: paths',
    ]);
    expect(settingNotes({ LOOM_CUDA_TILE: 'force', LOOM_CUDA_SPLIT_K: '4' }, info)).toEqual(['gemmPathsNote: paths']);
    expect(settingNotes({ LOOM_CUDA_LANES: 'off' }, info)).toEqual([]); // an empty note is left out
    expect(settingNotes({}, info)).toEqual([]);
  });
});
