// Internals of the CUDA backend, shared by backend_cuda*.cc. Every CUDA runtime, driver, cuBLAS and NVRTC
// status is checked through the macros below; a failure is a loom_error naming the call, the file:line
// and the status text (the addon turns it into a JS Error with code 'EVAL').
#pragma once

#include <cublas_v2.h>
#include <cuda.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "backend.h"
#include "backend_cuda_epilogue.h"
#include "kernel_tables.h"
#include "plan.h"

namespace loom {

[[noreturn]] void cuda_fail(const std::string& what, const char* status, const char* file, int line);
const char* cublas_status_text(cublasStatus_t s);

#define CUDA_CHECK(expr)                                                                                   \
  do {                                                                                                     \
    const cudaError_t loom_e_ = (expr);                                                                    \
    if (loom_e_ != cudaSuccess) ::loom::cuda_fail(#expr, cudaGetErrorString(loom_e_), __FILE__, __LINE__); \
  } while (0)

#define CU_CHECK(expr)                                                                          \
  do {                                                                                          \
    const CUresult loom_r_ = (expr);                                                            \
    if (loom_r_ != CUDA_SUCCESS) {                                                              \
      const char* loom_s_ = nullptr;                                                            \
      cuGetErrorString(loom_r_, &loom_s_);                                                      \
      ::loom::cuda_fail(#expr, loom_s_ ? loom_s_ : "unknown driver error", __FILE__, __LINE__); \
    }                                                                                           \
  } while (0)

#define CUBLAS_CHECK(expr)                                                                                                   \
  do {                                                                                                                       \
    const cublasStatus_t loom_b_ = (expr);                                                                                   \
    if (loom_b_ != CUBLAS_STATUS_SUCCESS) ::loom::cuda_fail(#expr, ::loom::cublas_status_text(loom_b_), __FILE__, __LINE__); \
  } while (0)

// The segment tables (LoomSegment, LoomView) and ref → address (arena_addresses): kernel_tables.h, shared with
// the cuda-emu backend. Device addresses of the three arenas: ref → address.
using cuda_arenas = arena_addresses;

// The activation's parameters as the device epilogues take them (leaky_relu: alpha; hard_sigmoid: alpha, beta;
// clip: min, max; others: 0, 0).
void cuda_activation_params(const activation& a, float& p0, float& p1);
// The epilogue jobs of one gemm / gemm_grouped launch (empty when no entry needs bias, activation or k = 0);
// `tenants`, when given, gets each job's tenant (the sparse tick keeps only live tenants' jobs).
// `units` (when given) gets each job's problem rowsUnit (0: its m never scales), parallel to the jobs.
std::vector<cuda_epi_job> cuda_build_epilogue(const launch& l, const cuda_arenas& arenas, std::vector<int32_t>* tenants = nullptr,
                                              std::vector<int64_t>* units = nullptr);

// The pointer arrays of a batched / grouped GEMM call over `entries` (in call order): kGemmPointerArrays arrays
// of entries.size() device addresses each, back to back: A' (= the plan's B), B' (= the plan's A), C, then the
// bias and the residual a fused epilogue reads (0 where an entry has none). cuBLAS reads the first three.
constexpr size_t kGemmPointerArrays = 5;
std::vector<unsigned long long> cuda_pointer_arrays(const std::vector<const gemm_entry*>& entries, const cuda_arenas& arenas);

// backend_cuda_module.cc: the plan's generated kernels as a loaded module: the cubin when it was built for
// this GPU's architecture, else kernels.cu compiled by NVRTC. `how` says which (and why).
CUmodule cuda_load_kernels(const cuda_options& opts, int cc_major, int cc_minor, std::string& how);

} // namespace loom
