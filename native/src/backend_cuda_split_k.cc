// Split-K for the tiled kernel (backend_cuda_gemv.cu): which split counts a launch times at load, and the device
// memory split calls run with. A launch's blocks of C (entries x 32 x 32 output tiles) are its CTAs; where they
// are fewer than the SMs, most of the GPU idles while each CTA walks all of k (the demo fleet's ResNet-18 at
// 64 x 64 b4: `gemm 128x64x1152` over 8 entries is 64 CTAs on an H100's 132 SMs, 1,152-deep each). Split,
// each block runs as several CTAs over ranges of k. The candidates are timed with the launch's other paths
// (backend_cuda_gemm_paths.cc); a split call the launch keeps gets a workspace and counters of its own, since
// launches on other lanes run at the same time.
#include <algorithm>
#include <utility>
#include <vector>

#include "backend_cuda_ctx.h"

namespace loom {

namespace {

constexpr int kMinStepsPerSplit = 2; // a split's range of k: at least two of the kernel's 32-deep steps
constexpr int kCtasPerSm = 2;        // auto: split until the CTAs reach this many per SM
// A split call's partial sums at most this big (auto stays far below: under 2 CTAs per SM, ~2 MB on an H100; a
// forced count on a launch of thousands of blocks would not)
constexpr size_t kMaxSplitBytes = size_t{64} << 20;

cuda_gemv_args split_args(const gemm_call& g, int splits) {
  cuda_gemv_args a = cuda_gemv_args_of(g);
  a.splits = splits;
  return a;
}

// The device bytes a split call's counters (one int per block of C) and partial sums take, each aligned.
struct split_bytes {
  size_t sem = 0, ws = 0;
};
split_bytes bytes_of(const cuda_gemv_args& a) {
  return {cuda_align_up(static_cast<size_t>(cuda_tiled_blocks(a)) * sizeof(int)), cuda_align_up(cuda_tiled_split_bytes(a))};
}

// The load-time scratch, grown to hold counters and workspace of `a` (freed and allocated again: nothing that
// points into it runs before the next call to grow_scratch or cuda_split_k_assign).
void grow_scratch(cuda_ctx& c, const cuda_gemv_args& a) {
  cuda_split_k_mem& M = c.gemm.split_mem;
  const split_bytes need = bytes_of(a);
  if (M.scratch && need.sem <= M.scratch_sem_bytes && need.ws <= M.scratch_ws_bytes) return;
  CUDA_CHECK(cudaStreamSynchronize(c.dev.stream));
  if (M.scratch) cudaFree(reinterpret_cast<void*>(M.scratch));
  M.scratch = 0;
  M.scratch_sem_bytes = std::max(need.sem, M.scratch_sem_bytes);
  M.scratch_ws_bytes = std::max(need.ws, M.scratch_ws_bytes);
  void* p = nullptr;
  CUDA_CHECK(cudaMalloc(&p, M.scratch_sem_bytes + M.scratch_ws_bytes));
  CUDA_CHECK(cudaMemset(p, 0, M.scratch_sem_bytes));
  M.scratch = reinterpret_cast<CUdeviceptr>(p);
}

} // namespace

int cuda_split_k_from_env() {
  return cuda_env_choice("LOOM_CUDA_SPLIT_K", 0, {{"auto", 0}, {"off", -1}, {"2", 2}, {"3", 3}, {"4", 4}, {"8", 8}, {"16", 16}});
}

std::vector<int> cuda_split_k_choices(cuda_ctx& c, const gemm_call& g) {
  const int setting = c.gemm.split_k;
  if (setting < 0 || !g.tiled) return {};
  const cuda_gemv_args a = split_args(g, 1);
  const long long blocks = cuda_tiled_blocks(a);
  const int steps = cuda_tiled_k_steps(a);
  std::vector<int> want;
  if (setting > 0) {
    want.push_back(std::min(setting, steps));
  } else {
    const long long target = static_cast<long long>(kCtasPerSm) * c.dev.props.multiProcessorCount;
    const int cap = std::min(kMaxSplits, steps / kMinStepsPerSplit);
    if (blocks >= target || cap < 2) return {};
    int s = 2; // the smallest power of two reaching the target, and its neighbours
    while (s < cap && blocks * s < target) s *= 2;
    for (int x : {s / 2, s, s * 2})
      if (x >= 2 && x <= cap) want.push_back(x);
  }
  std::vector<int> out;
  for (int s : want) {
    const cuda_gemv_args split = split_args(g, s);
    cuda_gemv_args placed = split;
    placed.ws = placed.sem = 1; // placeholders: fits checks that they are set
    if (s > 1 && cuda_gemv_fits(placed) && cuda_tiled_split_bytes(split) <= kMaxSplitBytes) {
      grow_scratch(c, split);
      out.push_back(s);
    }
  }
  return out;
}

void cuda_split_k_use_scratch(cuda_ctx& c, gemm_call& g, int splits) {
  g.splits = splits;
  g.split_ws = g.split_sem = 0;
  if (splits <= 1) return;
  grow_scratch(c, split_args(g, splits));
  const cuda_split_k_mem& M = c.gemm.split_mem;
  g.split_sem = M.scratch;
  g.split_ws = M.scratch + M.scratch_sem_bytes;
}

void cuda_split_k_assign(cuda_ctx& c) {
  cuda_split_k_mem& M = c.gemm.split_mem;
  std::vector<std::pair<gemm_call*, split_bytes>> split;
  size_t sem = 0, ws = 0;
  for (auto& s : c.full.launches)
    for (auto& g : s.calls) {
      if (g.splits <= 1) continue;
      split.emplace_back(&g, bytes_of(split_args(g, g.splits)));
      sem += split.back().second.sem;
      ws += split.back().second.ws;
    }
  CUDA_CHECK(cudaStreamSynchronize(c.dev.stream));
  if (M.scratch) cudaFree(reinterpret_cast<void*>(M.scratch));
  M.scratch = 0;
  M.scratch_sem_bytes = M.scratch_ws_bytes = 0;
  M.calls = static_cast<int>(split.size());
  if (split.empty()) return;
  void* p = nullptr;
  CUDA_CHECK(cudaMalloc(&p, sem + ws));
  CUDA_CHECK(cudaMemset(p, 0, sem));
  M.block = reinterpret_cast<CUdeviceptr>(p);
  M.sem_bytes = sem;
  M.ws_bytes = ws;
  CUdeviceptr next_sem = M.block, next_ws = M.block + sem; // counters first, then the partial sums
  for (const auto& [g, b] : split) {
    g->split_sem = next_sem;
    g->split_ws = next_ws;
    next_sem += b.sem;
    next_ws += b.ws;
  }
}

void cuda_split_k_reset(cuda_ctx& c) {
  const cuda_split_k_mem& M = c.gemm.split_mem;
  if (M.block && cudaMemset(reinterpret_cast<void*>(M.block), 0, M.sem_bytes) != cudaSuccess) cudaGetLastError();
}

void cuda_split_k_stats(const cuda_ctx& c, backend_stats& out) {
  const cuda_split_k_mem& M = c.gemm.split_mem;
  out.numbers.emplace_back("splitKCalls", M.calls);
  out.numbers.emplace_back("splitKBytes", static_cast<double>(M.sem_bytes + M.ws_bytes));
}

void cuda_split_k_destroy(cuda_ctx& c) {
  cuda_split_k_mem& M = c.gemm.split_mem;
  if (M.scratch) cudaFree(reinterpret_cast<void*>(M.scratch));
  if (M.block) cudaFree(reinterpret_cast<void*>(M.block));
  M = cuda_split_k_mem{};
}

} // namespace loom
