// The io gather kernel of the CUDA backend (backend_cuda_io_gather.cu): a sparse staged tick's live input
// bytes read by one kernel straight from the pinned staging buffer (under unified addressing a kernel reads
// pinned host memory through its host pointer) into the io arena. A tick with every 10th of 1,000 tenants live
// otherwise copies the whole input span with one cudaMemcpyAsync (slots a few KB apart merge into one copy),
// ten times the live bytes, or pays one API call per live slot.
// Shared by nvcc and the host compiler: plain C layout only.
#pragma once

#include <cuda_runtime.h>

namespace loom {

// One move: `bytes` from src_base + src to dst_base + dst (byte offsets).
struct cuda_io_move {
  long long src = 0, dst = 0, bytes = 0;
};

// Moves are cut to at most this many bytes, so a few large slots still spread over many blocks.
constexpr long long kIoMovePiece = 16 << 10;

// Enqueues one launch that performs every move (a device table of n moves) on `stream`.
cudaError_t cuda_launch_io_gather(const cuda_io_move* moves, int n, const void* src_base, void* dst_base, cudaStream_t stream);

} // namespace loom
