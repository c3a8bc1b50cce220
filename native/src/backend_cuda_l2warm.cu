// The L2 warm-up kernel (see backend_cuda_l2warm.h): one block per span, grid-stride over the spans; each thread
// issues prefetch.global.L2 for every 128-byte line it owns (lines are a block's threads apart).
#include "backend_cuda_l2warm.h"

namespace loom {

namespace {

constexpr int kLine = 128; // bytes an L2 prefetch brings in

__global__ void __launch_bounds__(256) loom_l2_warm(const cuda_l2_span* __restrict__ spans, int n) {
  for (int s = blockIdx.x; s < n; s += gridDim.x) {
    const cuda_l2_span sp = spans[s];
    const char* base = reinterpret_cast<const char*>(sp.ptr);
    for (long long at = static_cast<long long>(threadIdx.x) * kLine; at < sp.bytes; at += static_cast<long long>(blockDim.x) * kLine)
      asm volatile("prefetch.global.L2 [%0];" ::"l"(base + at));
  }
}

} // namespace

cudaError_t cuda_launch_l2_warm(const cuda_l2_span* spans, int n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const unsigned grid = static_cast<unsigned>(n < 4096 ? n : 4096);
  loom_l2_warm<<<grid, 256, 0, stream>>>(spans, n);
  return cudaGetLastError();
}

} // namespace loom
