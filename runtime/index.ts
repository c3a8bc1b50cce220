// runtime/: executes LaunchPlans through the native addon. Importing this module never loads the addon;
// loadPlan does, on first use.
export { loadPlan, chooseBackend, clockOf, benchConcurrent } from './load-plan.js';
export type { LoadedPlan, LoadPlanOptions, BackendName, BenchTimes } from './load-plan.js';
export { withBackendEnv } from './backend-env.js';
export type { BackendEnv } from './backend-env.js';
export { loadNativeAddon, nativeAddonInfo, nativeAddonPath } from './native-addon.js';
export type { AddonInfo, NativeAddon } from './native-addon.js';
export { TickCodec } from './tick-io.js';
export type { CheckedTick, SlotViews, StagingLayout, TickInputs, TickOutputs, WrittenTick } from './tick-io.js';
export { readNpy, writeNpy, decodeNpy, encodeNpy } from './npy.js';
