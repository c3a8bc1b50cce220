// The L2 warm-up kernel of the CUDA backend (backend_cuda_l2warm.cu; LOOM_CUDA_L2_WARM, backend_cuda_l2warm.cc):
// while a full tick's inputs are copied to the device and its graph launch reaches the GPU, HBM is idle. One
// kernel on a side stream issues prefetch.global.L2 for the first weights the tick will read (the GEMM operands
// in the weights arena, in plan order, up to a byte budget below the L2's size), so the first weight-bound GEMM
// finds part of its stream in L2 instead of waiting for all of it from HBM. A hint: it reads nothing into
// registers and writes nothing, so it needs no ordering against the tick beyond starting after the previous one.
// Shared by nvcc and the host compiler: plain C layout only.
#pragma once

#include <cuda_runtime.h>

namespace loom {

// `bytes` of device memory from `ptr` (an absolute device address).
struct cuda_l2_span {
  unsigned long long ptr = 0;
  long long bytes = 0;
};

// Spans are cut to at most this many bytes at load, so one block's prefetches stay few and a large weight still
// spreads over many blocks.
constexpr long long kL2WarmPiece = 256 << 10;

// Enqueues one launch that prefetches every span (a device table of n spans) into L2 on `stream`.
cudaError_t cuda_launch_l2_warm(const cuda_l2_span* spans, int n, cudaStream_t stream);

} // namespace loom
