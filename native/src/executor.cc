#include "executor.h"

#include <string>

#include "thread_pool.h"

namespace loom {

executor::executor(launch_plan plan, const uint8_t* weights, size_t weight_bytes, const executor_options& opts)
    : plan_(std::move(plan)) {
  plan_validate(plan_);
  if (static_cast<int64_t>(weight_bytes) > plan_.arenas.weights) {
    throw loom_error("weights are " + std::to_string(weight_bytes) + " bytes but the plan's weights arena is " +
                     std::to_string(plan_.arenas.weights) + " bytes");
  }
  int threads = opts.threads > 0 ? opts.threads : thread_pool_default_threads();
  if (opts.backend == "cpu") {
    backend_ = backend_cpu_create(threads);
  } else if (opts.backend == "cuda") {
#if LOOM_HAVE_CUDA
    backend_ = backend_cuda_create(0);
#else
    throw loom_error("backend 'cuda' is not built into this addon (no CUDA toolkit with cuBLAS at build time); use backend 'cpu'");
#endif
  } else {
    throw loom_error("unknown backend '" + opts.backend + "' (expected cpu or cuda)");
  }
  try {
    backend_.ops->allocate(backend_.ctx, plan_.arenas);
    backend_.ops->upload_weights(backend_.ctx, weights, weight_bytes);
  } catch (...) {
    backend_.ops->destroy(backend_.ctx);
    throw;
  }
}

executor::~executor() {
  if (backend_.ops) backend_.ops->destroy(backend_.ctx);
}

void executor::check_io(int64_t offset, int64_t bytes, const char* what) const {
  if (offset < 0 || bytes < 0 || offset + bytes > plan_.arenas.io) {
    throw loom_error(std::string("tick ") + what + " [" + std::to_string(offset) + ", +" + std::to_string(bytes) +
                     ") lies outside the io arena of " + std::to_string(plan_.arenas.io) + " bytes");
  }
}

std::vector<std::vector<uint8_t>> executor::run_tick(const std::vector<tick_input>& inputs, const std::vector<tick_output>& outputs,
                                                     const tenant_mask& active) {
  std::lock_guard<std::mutex> lock(tick_mu_);
  if (active.size() != plan_.tenants.size()) {
    throw loom_error("tick names " + std::to_string(active.size()) + " tenants, the plan has " + std::to_string(plan_.tenants.size()));
  }
  for (const auto& in : inputs) check_io(in.offset, static_cast<int64_t>(in.bytes.size()), "input");
  for (const auto& out : outputs) check_io(out.offset, out.bytes, "output");

  const backend_ops& ops = *backend_.ops;
  for (const auto& in : inputs) ops.copy_in(backend_.ctx, ref{arena_id::io, in.offset}, in.bytes.data(), in.bytes.size());
  for (const auto& l : plan_.launches) {
    try {
      switch (l.kind) {
        case launch_kind::gemm: ops.gemm(backend_.ctx, l, active); break;
        case launch_kind::gemm_grouped: ops.gemm_grouped(backend_.ctx, l, active); break;
        case launch_kind::kernel: ops.kernel(backend_.ctx, l, active); break;
      }
    } catch (const tenant_error& e) {
      const std::string who = e.tenant >= 0 && static_cast<size_t>(e.tenant) < plan_.tenants.size() ? plan_.tenants[e.tenant] : "?";
      throw loom_error("tenant '" + who + "', " + launch_where(plan_, l) + ": " + e.what());
    } catch (const loom_error& e) {
      throw loom_error(launch_where(plan_, l) + ": " + e.what());
    }
  }
  ops.synchronize(backend_.ctx);
  std::vector<std::vector<uint8_t>> result;
  result.reserve(outputs.size());
  for (const auto& out : outputs) {
    std::vector<uint8_t> buf(static_cast<size_t>(out.bytes));
    ops.copy_out(backend_.ctx, ref{arena_id::io, out.offset}, buf.data(), buf.size());
    result.push_back(std::move(buf));
  }
  return result;
}

} // namespace loom
