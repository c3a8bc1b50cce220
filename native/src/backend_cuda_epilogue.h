// The GEMM epilogue of the CUDA backend: C = act(C + beta · bias + residual) over every entry of one gemm /
// gemm_grouped launch, in ONE kernel launch (backend_cuda_epilogue.cu). cuBLAS has already written
// C = alpha · op(A) · op(B). Shared by nvcc and the host compiler: plain C layout only.
#pragma once

#include <cuda_runtime.h>

namespace loom {

// One (group, entry) of a launch: its C block, bias and residual. 88 bytes.
struct cuda_epi_job {
  long long begin; // Σ m·n of the previous jobs of the launch
  long long m, n, ldc, ld_bias;
  unsigned long long c;        // device address of C (f32)
  unsigned long long bias;     // device address of the bias (f32), 0 for none
  unsigned long long residual; // device address of the residual (f32, C's layout), 0 for none
  int bias_mode;               // 0 none, 1 row (bias[j]), 2 col (bias[i]), 3 full (bias[i·ld_bias + j])
  int act;                     // loom::activation_kind as int
  float beta;                  // the bias factor
  float p0, p1;                // leaky_relu: alpha; hard_sigmoid: alpha, beta; clip: min, max
  int zero_c;                  // 1 when k = 0: cuBLAS did not run, C starts from 0
};
static_assert(sizeof(cuda_epi_job) == 88, "cuda_epi_job layout");

// Enqueues the epilogue of `n_jobs` jobs (device array) covering `total` = Σ m·n elements on `stream` (with
// programmatic stream serialization when `pdl`: backend_cuda_pdl.cuh). Returns the launch status (cudaSuccess
// or the error of the launch itself).
cudaError_t cuda_launch_epilogue(const cuda_epi_job* jobs, int n_jobs, long long total, cudaStream_t stream, bool pdl = false);

} // namespace loom
