// Host-side tables of the CUDA backend, built once at load: the GEMM epilogue jobs and pointer arrays (the
// generated kernels' segment tables: kernel_tables.cc). Layout only: every number comes from the plan.
#include <cstring>
#include <string>

#include "backend_cuda.h"

namespace loom {

namespace {

// The epilogue kernel and the skinny-GEMM kernel's fused store (backend_cuda_activation.cuh) switch on these
// enums as plain ints: none row col full = 0 1 2 3, and activation_kind's order (none first, then
// ACTIVATION_KINDS). A reordered contract list must fail here, not compute the wrong activation.
static_assert(static_cast<int>(bias_mode::none) == 0 && static_cast<int>(bias_mode::row) == 1 && static_cast<int>(bias_mode::col) == 2 &&
                  static_cast<int>(bias_mode::full) == 3 && bias_mode_count == 4,
              "cuda_epi_job::bias_mode codes");
static_assert(static_cast<int>(activation_kind::none) == 0 && static_cast<int>(activation_kind::relu) == 1 &&
                  static_cast<int>(activation_kind::sigmoid) == 2 && static_cast<int>(activation_kind::tanh) == 3 &&
                  static_cast<int>(activation_kind::gelu_erf) == 4 && static_cast<int>(activation_kind::gelu_tanh) == 5 &&
                  static_cast<int>(activation_kind::leaky_relu) == 6 && static_cast<int>(activation_kind::clip) == 7 &&
                  static_cast<int>(activation_kind::hard_sigmoid) == 8 && static_cast<int>(activation_kind::hard_swish) == 9 &&
                  activation_kind_count == 10,
              "cuda_epi_job::act and cuda_gemv_args::act codes (cuda_activation in backend_cuda_activation.cuh)");

} // namespace

void cuda_activation_params(const activation& a, float& p0, float& p1) {
  p0 = 0, p1 = 0;
  switch (a.kind) {
    case activation_kind::leaky_relu: p0 = static_cast<float>(a.alpha); break;
    case activation_kind::hard_sigmoid:
      p0 = static_cast<float>(a.alpha);
      p1 = static_cast<float>(a.beta);
      break;
    case activation_kind::clip:
      p0 = static_cast<float>(a.min);
      p1 = static_cast<float>(a.max);
      break;
    default: break;
  }
}

std::vector<cuda_epi_job> cuda_build_epilogue(const launch& l, const cuda_arenas& arenas, std::vector<int32_t>* tenants,
                                              std::vector<int64_t>* units) {
  std::vector<cuda_epi_job> jobs;
  if (tenants) tenants->clear();
  if (units) units->clear();
  long long begin = 0;
  for (const auto& g : l.groups) {
    const gemm_problem& p = g.problem;
    const bool has_bias = p.bias != bias_mode::none;
    const bool needed = has_bias || p.residual || p.act.kind != activation_kind::none || p.k == 0;
    if (!needed || p.m == 0 || p.n == 0) continue;
    for (const auto& e : g.entries) {
      cuda_epi_job j;
      std::memset(&j, 0, sizeof j);
      j.begin = begin;
      j.m = p.m;
      j.n = p.n;
      j.ldc = p.ldc;
      j.ld_bias = p.ld_bias;
      j.c = arenas.at(e.c);
      j.bias = has_bias && e.has_bias ? arenas.at(e.bias) : 0;
      j.residual = p.residual && e.has_residual ? arenas.at(e.residual) : 0;
      j.bias_mode = static_cast<int>(p.bias); // none row col full = 0 1 2 3
      j.act = static_cast<int>(p.act.kind);
      j.beta = static_cast<float>(p.beta);
      cuda_activation_params(p.act, j.p0, j.p1);
      j.zero_c = p.k == 0 ? 1 : 0;
      begin += p.m * p.n;
      jobs.push_back(j);
      if (tenants) tenants->push_back(e.tenant);
      if (units) units->push_back(p.rows_unit);
    }
  }
  return jobs;
}

std::vector<unsigned long long> cuda_pointer_arrays(const std::vector<const gemm_entry*>& entries, const cuda_arenas& arenas) {
  const size_t n = entries.size();
  std::vector<unsigned long long> arr(kGemmPointerArrays * n);
  for (size_t i = 0; i < n; i++) {
    const gemm_entry& e = *entries[i];
    arr[i] = arenas.at(e.b);
    arr[n + i] = arenas.at(e.a);
    arr[2 * n + i] = arenas.at(e.c);
    arr[3 * n + i] = e.has_bias ? arenas.at(e.bias) : 0ULL;
    arr[4 * n + i] = e.has_residual ? arenas.at(e.residual) : 0ULL;
  }
  return arr;
}

} // namespace loom
