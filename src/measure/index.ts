// `loom bench`: the compiled fleet timed three ways (time-only, space-only, space-time) on one backend.
export { benchFleet, benchInputs, worstError, BENCH_FORMAT } from './run.js';
export type { BenchOptions, BenchProgress, BenchResult, ModeResult } from './run.js';
export { formatBench, fmtCount } from './format.js';
export { BENCH_MODES, modeSemantics, openMode, openModes, openSpaceOnly, launchesPerTick, workPerTick } from './modes.js';
export type { BenchMode, ModeRunner } from './modes.js';
export { writeBaselines, writeSpaceOnly } from './variants.js';
export type { BaselineDirs, SpaceOnlyDirs } from './variants.js';
export { percentile, tickStats } from './stats.js';
export type { TickStats } from './stats.js';
export { benchOccupancy, kindCount, liveTenants, parseOccupancy, OCCUPANCY_FORMAT, OCCUPANCY_TARGET } from './occupancy.js';
export type { OccupancyOptions, OccupancyResult, OccupancyRow } from './occupancy.js';
export { formatOccupancy } from './occupancy-format.js';
