// The io gather kernel (see backend_cuda_io_gather.h): one block per move, grid-stride over the moves; 16-byte
// words where both ends and the length allow (io slots are 16-byte aligned: planIo), else 4-byte words, else
// bytes.
#include <cstdint>

#include "backend_cuda_io_gather.h"
#include "backend_cuda_pdl.cuh"

namespace loom {

namespace {

template <typename W>
__device__ void move_words(const uint8_t* src, uint8_t* dst, long long bytes) {
  const W* s = reinterpret_cast<const W*>(src);
  W* d = reinterpret_cast<W*>(dst);
  const long long n = bytes / static_cast<long long>(sizeof(W));
  for (long long i = threadIdx.x; i < n; i += blockDim.x) d[i] = s[i];
}

__global__ void __launch_bounds__(256)
    loom_io_gather(const cuda_io_move* __restrict__ moves, int n, const uint8_t* src_base, uint8_t* dst_base) {
  cuda_pdl_enter();
  for (int m = blockIdx.x; m < n; m += gridDim.x) {
    const cuda_io_move mv = moves[m];
    const uint8_t* s = src_base + mv.src;
    uint8_t* d = dst_base + mv.dst;
    const uintptr_t align = reinterpret_cast<uintptr_t>(s) | reinterpret_cast<uintptr_t>(d) | static_cast<uintptr_t>(mv.bytes);
    if ((align & 15) == 0) move_words<uint4>(s, d, mv.bytes);
    else if ((align & 3) == 0) move_words<uint32_t>(s, d, mv.bytes);
    else move_words<uint8_t>(s, d, mv.bytes);
  }
}

} // namespace

cudaError_t cuda_launch_io_gather(const cuda_io_move* moves, int n, const void* src_base, void* dst_base, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const unsigned grid = static_cast<unsigned>(n < 8192 ? n : 8192);
  loom_io_gather<<<grid, 256, 0, stream>>>(moves, n, static_cast<const uint8_t*>(src_base), static_cast<uint8_t*>(dst_base));
  return cudaGetLastError();
}

} // namespace loom
