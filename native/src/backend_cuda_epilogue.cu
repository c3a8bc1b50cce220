// The GEMM epilogue kernel (see backend_cuda_epilogue.h): one thread per C element of every job of a
// launch, grid-stride, jobs found by binary search over `begin`. Activations compute in f32 exactly as the
// CPU backend's cpu_activation<float> (ir/ops/activation.ts).
#include "backend_cuda_epilogue.h"

namespace loom {

namespace {

__device__ __forceinline__ float epi_activation(int act, float x, float p0, float p1) {
  switch (act) {
    case 0: return x;                                                                                // none
    case 1: return x > 0.0f ? x : 0.0f;                                                              // relu
    case 2: return 1.0f / (1.0f + expf(-x));                                                         // sigmoid
    case 3: return tanhf(x);                                                                         // tanh
    case 4: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f));                            // gelu_erf
    case 5: return 0.5f * x * (1.0f + tanhf(0.79788456080286535588f * (x + 0.044715f * x * x * x))); // gelu_tanh
    case 6: return x >= 0.0f ? x : p0 * x;                                                           // leaky_relu
    case 7: return fminf(p1, fmaxf(p0, x));                                                          // clip (min, max)
    case 8: return fmaxf(0.0f, fminf(1.0f, p0 * x + p1));                                            // hard_sigmoid
    case 9: return x * fmaxf(0.0f, fminf(1.0f, x / 6.0f + 0.5f));                                    // hard_swish
  }
  return x;
}

__global__ void __launch_bounds__(256) loom_gemm_epilogue(const cuda_epi_job* __restrict__ jobs, int n_jobs, long long total) {
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
    float v = j.zero_c ? 0.0f : *cp;
    if (j.bias) {
      const float* b = reinterpret_cast<const float*>(j.bias);
      switch (j.bias_mode) {
        case 1: v += j.beta * b[c]; break;
        case 2: v += j.beta * b[r]; break;
        case 3: v += j.beta * b[r * j.ld_bias + c]; break;
        default: break;
      }
    }
    *cp = epi_activation(j.act, v, j.p0, j.p1);
  }
}

} // namespace

cudaError_t cuda_launch_epilogue(const cuda_epi_job* jobs, int n_jobs, long long total, cudaStream_t stream) {
  if (n_jobs <= 0 || total <= 0) return cudaSuccess;
  const long long blocks = (total + 255) / 256;
  const unsigned grid = static_cast<unsigned>(blocks < (1LL << 20) ? blocks : (1LL << 20));
  loom_gemm_epilogue<<<grid, 256, 0, stream>>>(jobs, n_jobs, total);
  return cudaGetLastError();
}

} // namespace loom
