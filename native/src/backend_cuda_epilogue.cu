// The GEMM epilogue kernel (see backend_cuda_epilogue.h): one thread per C element of every job of a
// launch, grid-stride, jobs found by binary search over `begin`. The element math (bias, activation) is
// backend_cuda_activation.cuh's, shared with the skinny-GEMM kernel's fused store.
#include "backend_cuda_epilogue.h"

#include "backend_cuda_activation.cuh"
#include "backend_cuda_pdl.cuh"

namespace loom {

namespace {

__global__ void __launch_bounds__(256) loom_gemm_epilogue(const cuda_epi_job* __restrict__ jobs, int n_jobs, long long total) {
  cuda_pdl_enter();
  for (long long w = blockIdx.x * (long long)blockDim.x + threadIdx.x; w < total; w += (long long)gridDim.x * blockDim.x) {
    int lo = 0, hi = n_jobs - 1;
    while (lo < hi) {
      const int mid = (lo + hi + 1) >> 1;
      if (jobs[mid].begin <= w) lo = mid;
      else hi = mid - 1;
    }
    const cuda_epi_job& j = jobs[lo];
    const long long i = w - j.begin, r = i / j.n, c = i % j.n;
    float* cp = reinterpret_cast<float*>(j.c) + r * j.ldc + c;
    const float v = j.zero_c ? 0.0f : *cp;
    const float* res = j.residual ? reinterpret_cast<const float*>(j.residual) + r * j.ldc + c : nullptr;
    *cp = cuda_epilogue_value(v, reinterpret_cast<const float*>(j.bias), j.bias_mode, j.ld_bias, r, c, j.beta, j.act, j.p0, j.p1, res);
  }
}

} // namespace

cudaError_t cuda_launch_epilogue(const cuda_epi_job* jobs, int n_jobs, long long total, cudaStream_t stream, bool pdl) {
  if (n_jobs <= 0 || total <= 0) return cudaSuccess;
  const long long blocks = (total + 255) / 256;
  const unsigned grid = static_cast<unsigned>(blocks < (1LL << 20) ? blocks : (1LL << 20));
  return cuda_launch_kernel(loom_gemm_epilogue, grid, 256, stream, pdl, jobs, n_jobs, total);
}

} // namespace loom
