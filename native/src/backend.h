// The backend interface: a table of functions over an opaque context (ggml-style), so the executor
// stays ignorant of how a device stores arenas or runs a GEMM. Every function throws loom_error on failure.
// `active[t]` is 1 when tenant t has inputs this tick: a backend may skip the entries/segments of the others
// (their outputs are not read), never anything else. `rows` is the tick's row bucket (executor.h): > 0 when every
// live tenant carries at most that many rows, so a GEMM problem with a rowsUnit may run gemm_rows_m(p, rows) rows
// (the rows past it keep stale values nothing returned reads); 0 runs every row.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "plan.h"
#include "tick_staging.h"

namespace loom {

using tenant_mask = std::vector<uint8_t>;

// A launch's error that concerns one tenant's share (e.g. a gather index out of range); the executor
// names the tenant and the launch.
struct tenant_error : loom_error {
  tenant_error(int32_t t, const std::string& msg) : loom_error(msg), tenant(t) {}
  int32_t tenant;
};

// The version of the function tables below. A backend stamps the value it was compiled against into its
// backend_ops and backend_entry; the executor refuses one that differs (a stale object file or a backend built
// out of tree would otherwise call through a table of another shape). Bump it on any change to backend_ops,
// backend_tick_ops, backend_entry, backend_config or an extension struct.
#define LOOM_BACKEND_ABI 7

struct backend_ops {
  int abi; // LOOM_BACKEND_ABI
  const char* name;
  void (*destroy)(void* ctx);
  // Arenas are allocated once, zero-filled; weights are copied in once (bytes <= sizes.weights).
  void (*allocate)(void* ctx, const arena_sizes& sizes);
  void (*upload_weights)(void* ctx, const uint8_t* data, size_t bytes);
  void (*copy_in)(void* ctx, ref dst, const uint8_t* src, size_t bytes);
  void (*copy_out)(void* ctx, ref src, uint8_t* dst, size_t bytes);
  // launch.kind == gemm: one group; entries may be uniformly strided (launch.has_strides).
  void (*gemm)(void* ctx, const launch& l, const tenant_mask& active, int64_t rows);
  void (*gemm_grouped)(void* ctx, const launch& l, const tenant_mask& active, int64_t rows);
  // A generated kernel (KernelOp) over its per-tenant segments.
  void (*kernel)(void* ctx, const launch& l, const tenant_mask& active);
  // Waits for all queued work (a no-op on the CPU).
  void (*synchronize)(void* ctx);
  int (*threads)(void* ctx);
  // Optional entry points by name (backend_ext.h; ggml's get_proc_address): the table registered under
  // `name`, or null when this backend does not offer it. Null: none at all.
  const void* (*get_extension)(const char* name);
  // Host memory for staging buffers and result blocks (tick_staging.h): pinned on the CUDA backend so its
  // copies run asynchronously. Both null: plain memory. Neither needs `ctx` (a block may outlive the backend).
  uint8_t* (*host_alloc)(size_t bytes);
  void (*host_free)(uint8_t* p);
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

// One staged tick as the executor hands it to backend_tick_ops::submit.
struct staged_tick {
  const io_layout* layout = nullptr;
  const uint8_t* in = nullptr; // layout->in_bytes bytes, left untouched until finish
  uint8_t* out = nullptr;      // layout->out_bytes bytes
  const tenant_mask* active = nullptr;
  int64_t rows = 0; // the tick's row bucket (0: every row)
  int slot = 0;
};

// Whole-tick functions for a backend that runs a tick as one unit (the CUDA backend replays one captured
// CUDA graph: copy in, every launch, copy out). Null members are not offered. They stay a fixed table, not
// an extension: the executor calls them on every load and tick. Stats, benches and profiles: backend_ext.h.
struct backend_tick_ops {
  // Once, after upload_weights, with the validated plan: build per-launch device state and capture the tick.
  void (*prepare)(void* ctx, const launch_plan& plan);
  // A whole tick; output i is written to dst[i] (outputs[i].bytes bytes, the caller's memory). Inputs and
  // outputs are inside the io arena.
  void (*run_tick)(void* ctx, const std::vector<tick_input>& inputs, const std::vector<tick_output>& outputs, const tenant_mask& active,
                   int64_t rows, uint8_t* const* dst);
  // Staged ticks run asynchronously (all three or none). submit, on the caller's thread: enqueue the tick whose
  // inputs are in `t.in` (layout t.layout->in) and whose outputs go to `t.out` (layout t.layout->out), tagged
  // t.slot (at most one tick per slot in flight), and return at once. wait, on any thread: block until the
  // slot's tick is done (throws its error). finish, on the submitting thread after wait: bookkeeping.
  void (*submit)(void* ctx, const staged_tick& t);
  void (*wait)(void* ctx, int slot);
  void (*finish)(void* ctx, int slot, double wall_us);
};

struct backend {
  const backend_ops* ops = nullptr;
  void* ctx = nullptr;
  const backend_tick_ops* tick = nullptr; // null: the executor drives the tick through `ops`
};

// Options of the CUDA backend (ignored by the CPU one). Declared always so the executor can carry them.
struct cuda_options {
  int device = 0;
  bool tf32 = false;           // CUBLAS_COMPUTE_32F_FAST_TF32 for f32 GEMMs (default: true fp32)
  bool poison_outputs = false; // debug: fill every output slot with 0xFF (NaN) before each tick's launches
  bool use_graph = true;       // false: run the launches eagerly every tick (debugging)
  bool force_nvrtc = false;    // compile kernels.cu with NVRTC even when a matching cubin is given
  std::vector<uint8_t> cubin;  // the plan's kernels.<arch>.cubin, or empty
  std::string cubin_arch;      // e.g. "sm_90"
  std::string kernel_source;   // kernels.cu, for NVRTC
};

// Options of the cuda-emu backend (backend_emu.cc).
struct emu_options {
  std::string library; // the plan's kernels.cu compiled for the host (runtime/emu-kernels.ts): a shared library's path
};

// What create() gets: every backend's options (each reads its own).
struct backend_config {
  int threads = 0;   // CPU worker threads (> 0: the executor resolves "0 = hardware concurrency")
  cuda_options cuda; // backend "cuda"
  emu_options emu;   // backend "cuda-emu"
};

// One backend as the executor and the addon find it by name (backend_registry.cc). The CPU backend is always
// registered; the CUDA backend only where the build found the CUDA toolkit with cuBLAS (LOOM_HAVE_CUDA).
struct backend_entry {
  const char* name;
  int abi; // LOOM_BACKEND_ABI
  // Whether create() can succeed on this machine (cuda: a GPU is visible). Never throws.
  bool (*available)();
  backend (*create)(const backend_config& cfg);
  // Whether the backend runs a launch of this kind (and, for launch_kind::kernel, this KernelOp; the
  // kernel_kind is ignored for the GEMM kinds). The executor asks for every launch at load.
  bool (*supports)(launch_kind kind, kernel_kind op);
  // As backend_ops::get_extension, without a backend instance (e.g. the addon's info()).
  const void* (*get_extension)(const char* name);
};

// Every registered backend, in a fixed order (cpu first).
const std::vector<const backend_entry*>& backend_registry();
// The entry named `name`, or null when no backend of that name is built into this addon.
const backend_entry* backend_find(const std::string& name);
// Names the addon knows whether built or not ("cpu", "cuda"), and why a known one is missing from this build
// (null when it is built): for the executor's messages.
const std::vector<const char*>& backend_known_names();
const char* backend_missing_reason(const std::string& name);

// The registry entries (backend_cpu.cc, backend_emu.cc, backend_cuda.cc); reach them through backend_registry().
extern const backend_entry backend_cpu_entry;
#if LOOM_HAVE_EMU
extern const backend_entry backend_emu_entry;
#endif
#if LOOM_HAVE_CUDA
extern const backend_entry backend_cuda_entry;
#endif

} // namespace loom
