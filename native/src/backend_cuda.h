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

// ---- the segment-table ABI of codegen/FORMAT.md ("Segment tables"), byte for byte ----
struct LoomView {
  unsigned long long ptr;
  long long strides[8];
};
struct LoomSegment {
  long long workBegin;
  long long work;
  long long shape[8];
  long long dims[8];
  union {
    long long geom[16]; // pool, im2col, col2im
    double params[16];  // eltwise: segment::params
  };
  unsigned long long out;
  long long outStrides[8];
  int rank;
  int nInputs;
  long long firstView;
};
static_assert(sizeof(LoomView) == 72, "LoomView layout (codegen/FORMAT.md)");
static_assert(sizeof(LoomSegment) == 360, "LoomSegment layout (codegen/FORMAT.md)");
static_assert(pool_geometry_field_count == 16, "LoomSegment::geom holds one entry per POOL_GEOMETRY_FIELDS name");
static_assert(elt_max_params == 16, "LoomSegment::params holds ELT_MAX_PARAMS values");
static_assert(offsetof(LoomSegment, params) == 144 && offsetof(LoomSegment, out) == 272, "LoomSegment: params share geom's bytes");

// Device addresses of the three arenas: ref → address.
struct cuda_arenas {
  CUdeviceptr base[3] = {0, 0, 0};
  CUdeviceptr at(ref r) const { return base[static_cast<int>(r.arena)] + static_cast<CUdeviceptr>(r.offset); }
};

// One kernel launch's tables (host side, before upload): built from the plan's segments and grid.
struct cuda_kernel_tables {
  std::vector<LoomSegment> segs;
  std::vector<LoomView> views;
  long long total_work = 0;
};

// backend_cuda_tables.cc: the LoomSegment / LoomView arrays of one kernel launch (throws loom_error on a
// segment the fixed-size ABI cannot hold).
cuda_kernel_tables cuda_build_kernel_tables(const launch_plan& plan, const launch& l, const cuda_arenas& arenas);
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
