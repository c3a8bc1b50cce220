// The backend interface: a table of functions over an opaque context (ggml-style), so the executor
// stays ignorant of how a device stores arenas or runs a GEMM. Every function throws loom_error on failure.
// `active[t]` is 1 when tenant t has inputs this tick: a backend may skip the entries/segments of the others
// (their outputs are not read), never anything else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
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

struct backend {
  const backend_ops* ops = nullptr;
  void* ctx = nullptr;
};

backend backend_cpu_create(int threads);
#if LOOM_HAVE_CUDA
backend backend_cuda_create(int device); // backend_cuda.cc (next issue)
#endif

} // namespace loom
