// The backend interface: a table of functions over an opaque context (ggml-style), so the executor
// stays ignorant of how a device stores arenas or runs a GEMM. Every function throws loom_error on failure.
// `active[t]` is 1 when tenant t has inputs this tick: a backend may skip the entries/segments of the others
// (their outputs are not read), never anything else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "plan.h"

namespace loom {

using tenant_mask = std::vector<uint8_t>;

// A launch's error that concerns one tenant's share (e.g. a gather index out of range); the executor
// names the tenant and the launch.
struct tenant_error : loom_error {
  tenant_error(int32_t t, const std::string& msg) : loom_error(msg), tenant(t) {}
  int32_t tenant;
};

struct backend_ops {
  const char* name;
  void (*destroy)(void* ctx);
  // Arenas are allocated once, zero-filled; weights are copied in once (bytes <= sizes.weights).
  void (*allocate)(void* ctx, const arena_sizes& sizes);
  void (*upload_weights)(void* ctx, const uint8_t* data, size_t bytes);
  void (*copy_in)(void* ctx, ref dst, const uint8_t* src, size_t bytes);
  void (*copy_out)(void* ctx, ref src, uint8_t* dst, size_t bytes);
  // launch.kind == gemm: one group; entries may be uniformly strided (launch.has_strides).
  void (*gemm)(void* ctx, const launch& l, const tenant_mask& active);
  void (*gemm_grouped)(void* ctx, const launch& l, const tenant_mask& active);
  // A generated kernel (KernelOp) over its per-tenant segments.
  void (*kernel)(void* ctx, const launch& l, const tenant_mask& active);
  // Waits for all queued work (a no-op on the CPU).
  void (*synchronize)(void* ctx);
  int (*threads)(void* ctx);
};

// A tick's bytes: inputs written into the io arena, outputs read back from it. An input does not own its
// bytes (the caller keeps them alive until run_tick returns): the addon points straight into the JS
// buffer, so a tick's inputs are copied once, into the backend's staging.
struct tick_input {
  int64_t offset = 0; // into the io arena
  const uint8_t* data = nullptr;
  size_t size = 0;
};

struct tick_output {
  int64_t offset = 0; // into the io arena
  int64_t bytes = 0;
};

// Numbers and words a backend reports about itself (addon handleInfo()); free-form, for humans and benches.
struct backend_stats {
  std::vector<std::pair<std::string, double>> numbers;
  std::vector<std::pair<std::string, std::string>> strings;
};

// Optional whole-tick functions for a backend that runs a tick as one unit (the CUDA backend replays one
// captured CUDA graph: copy in, every launch, copy out). Null members are not offered.
struct backend_tick_ops {
  // Once, after upload_weights, with the validated plan: build per-launch device state and capture the tick.
  void (*prepare)(void* ctx, const launch_plan& plan);
  // A whole tick; output i is written to dst[i] (outputs[i].bytes bytes, the caller's memory). Inputs and
  // outputs are inside the io arena.
  void (*run_tick)(void* ctx, const std::vector<tick_input>& inputs, const std::vector<tick_output>& outputs,
                   const tenant_mask& active, uint8_t* const* dst);
  void (*stats)(void* ctx, backend_stats& out);
  // Replays the tick `iters` times as it stands (no host-side staging copies; the device-side H2D/D2H of the
  // live tenants' slots are part of it); per replay: host wall time of launch + synchronize, and the device
  // time between events around it, in microseconds. `active` null: every tenant live (the full tick);
  // otherwise the tick as run_tick would run it for that occupancy (only live tenants' work where the
  // backend can skip the rest).
  void (*bench)(void* ctx, int iters, const tenant_mask* active, std::vector<double>& wall_us, std::vector<double>& device_us);
  // Runs the tick's launches once eagerly with an event between consecutive launches: (launch id, device µs).
  void (*profile)(void* ctx, std::vector<std::pair<int32_t, double>>& per_launch_us);
};

struct backend {
  const backend_ops* ops = nullptr;
  void* ctx = nullptr;
  const backend_tick_ops* tick = nullptr; // null: the executor drives the tick through `ops`
};

// Options of the CUDA backend (ignored by the CPU one). Declared always so the executor can carry them.
struct cuda_options {
  int device = 0;
  bool tf32 = false;                 // CUBLAS_COMPUTE_32F_FAST_TF32 for f32 GEMMs (default: true fp32)
  bool poison_outputs = false;       // debug: fill every output slot with 0xFF (NaN) before each tick's launches
  bool use_graph = true;             // false: run the launches eagerly every tick (debugging)
  bool force_nvrtc = false;          // compile kernels.cu with NVRTC even when a matching cubin is given
  std::vector<uint8_t> cubin;        // the plan's kernels.<arch>.cubin, or empty
  std::string cubin_arch;            // e.g. "sm_90"
  std::string kernel_source;         // kernels.cu, for NVRTC
};

backend backend_cpu_create(int threads);
#if LOOM_HAVE_CUDA
backend backend_cuda_create(const cuda_options& opts); // backend_cuda.cc
// Space-only measurement: every backend's full captured tick launched at once, each on its own stream
// (all must be CUDA backends on the same device), `iters` times after a warm-up; per round the host wall
// time until all finished and the device time from one start event to the last stream's end, in µs.
void cuda_bench_concurrent(const std::vector<backend*>& backends, int iters, std::vector<double>& wall_us, std::vector<double>& device_us);
// GPUs visible to the CUDA runtime (0 when none or no driver; never throws).
int cuda_device_count();
// Device 0's name, compute capability, driver / runtime / cuBLAS versions (never throws; "error" on failure).
backend_stats cuda_device_info();
#endif

} // namespace loom
