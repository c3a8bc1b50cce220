// Optional backend entry points, looked up by name (in the spirit of ggml's get_proc_address): a backend
// that offers one returns its table from get_extension(name); the executor and the addon reach it through
// the typed wrappers below and never name a backend's own symbols (no CUDA-only declarations outside
// backend_cuda*.{h,cc}). Every struct carries its lookup name; a new entry point is a new struct here, a
// new name in backend_extension_names(), and a bump of LOOM_BACKEND_ABI.
#pragma once

#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "backend.h"

namespace loom {

// Numbers and words about one loaded plan (addon handleInfo()), appended after the executor's own.
struct backend_stats_ext {
  static constexpr const char* name = "stats";
  void (*stats)(void* ctx, backend_stats& out);
};

// Replays the tick `iters` times as it stands (no host-side staging copies; the device-side H2D/D2H of the
// live tenants' slots are part of it); per replay: host wall time of launch + synchronize, and the device
// time between events around it, in microseconds. `active` null: every tenant live (the full tick);
// otherwise the tick as run_tick would run it for that occupancy (only live tenants' work where the
// backend can skip the rest).
struct backend_bench_ext {
  static constexpr const char* name = "bench";
  void (*bench)(void* ctx, int iters, const tenant_mask* active, std::vector<double>& wall_us, std::vector<double>& device_us);
};

// Runs the tick's launches once eagerly with an event between consecutive launches: (launch id, device µs).
struct backend_profile_ext {
  static constexpr const char* name = "profile";
  void (*profile)(void* ctx, std::vector<std::pair<int32_t, double>>& per_launch_us);
};

// Space-only measurement: every backend's full captured tick launched at once, each on its own stream (all
// of this backend, on one device), `iters` times after a warm-up; per round the host wall time until all
// finished and the device time from one start event to the last stream's end, in µs. The executor has
// checked iters >= 1 and that the plans are distinct and locked.
struct backend_bench_concurrent_ext {
  static constexpr const char* name = "bench_concurrent";
  void (*bench_concurrent)(const std::vector<backend*>& backends, int iters, std::vector<double>& wall_us, std::vector<double>& device_us);
};

// The devices a backend sees, without creating it (addon info()): how many (0 when none or no driver), and
// device 0's name, compute capability, driver / runtime / library versions ("error" on failure). Never throw.
struct backend_device_info_ext {
  static constexpr const char* name = "device_info";
  int (*device_count)();
  backend_stats (*device_info)();
};

// TEST ONLY (LoadedPlan.testInjectFault, loadPlan's testFaults, LOOM_TEST_FAULT_TICKS): the executor arms it
// just before a tick it was told to fail and disarms it (at_launch -1) after that tick. Armed, the backend
// fails the tick from inside, as a real device fault would: the CPU backend's launch number `at_launch` (in
// plan order) throws as a failing kernel; the CUDA backend's tick takes the error path of a failing
// cudaGraphLaunch and then runs the same recovery as after a real failed tick (backend_cuda.cc).
struct backend_fault_ext {
  static constexpr const char* name = "test_fault";
  void (*arm)(void* ctx, int32_t at_launch);
};

// Where an arena is host memory the executor can write into (the CPU backend's arenas are): its first byte,
// or null when it is not (then weights go in through copy_in). A plan's weights are then read from weights.bin
// straight into the arena, with no second copy (executor::weights_window).
struct backend_host_arena_ext {
  static constexpr const char* name = "host_arena";
  uint8_t* (*host_arena)(void* ctx, arena_id arena);
};

// Every extension name, for info() listings.
inline const std::vector<const char*>& backend_extension_names() {
  static const std::vector<const char*> names = {
      backend_stats_ext::name,       backend_bench_ext::name, backend_profile_ext::name,   backend_bench_concurrent_ext::name,
      backend_device_info_ext::name, backend_fault_ext::name, backend_host_arena_ext::name};
  return names;
}

// The typed lookups: null when the backend does not offer Ext.
template <typename Ext>
const Ext* backend_extension(const backend_ops& ops) {
  return ops.get_extension ? static_cast<const Ext*>(ops.get_extension(Ext::name)) : nullptr;
}
template <typename Ext>
const Ext* backend_extension(const backend& b) {
  return b.ops ? backend_extension<Ext>(*b.ops) : nullptr;
}
template <typename Ext>
const Ext* backend_extension(const backend_entry& e) {
  return e.get_extension ? static_cast<const Ext*>(e.get_extension(Ext::name)) : nullptr;
}

// For a backend's get_extension: `name` == Ext::name.
template <typename Ext>
bool backend_extension_is(const char* name) {
  return name && std::strcmp(name, Ext::name) == 0;
}

} // namespace loom
