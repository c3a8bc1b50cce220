// L2 warm-up of a full tick's first weights (backend_cuda_l2warm.h): which bytes, the side stream that prefetches
// them, and when. A full tick records an event on its stream before its input copies (the previous tick's work is
// then done), the side stream waits for it and runs the prefetch kernel while the copies and the graph launch
// proceed. Sparse ticks do not warm (their live tenants' weights are a subset).
//
// Why: 64 × MLP 784-512-512-10 at batch 1 (H100, stop 20) spends ~20 µs of its 85 µs tick on the tick's own cost
// (200 KB of input copies, the graph launch, the output copy) while its first GEMM then streams 102.8 MB of
// weights at ~2.7 TB/s; with HBM idle through those 20 µs, L2 (50 MB) can hold a part of that stream beforehand.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "backend_cuda_ctx.h"
#include "backend_cuda_l2warm.h"

namespace loom {

namespace {

constexpr long long kMiB = 1 << 20;
// A plan whose first weights are smaller gains nothing worth a kernel launch per tick.
constexpr long long kL2WarmMinBytes = 4 * kMiB;

// The bytes a stored GEMM operand spans: `rows` rows `ld` elements apart (ld >= cols: plan_validate), `cols` of
// them read.
long long operand_bytes(int64_t rows, int64_t cols, int64_t ld, size_t esize) {
  if (rows <= 0 || cols <= 0) return 0;
  return static_cast<long long>(((rows - 1) * ld + cols) * static_cast<int64_t>(esize));
}

// The weights-arena operands of the plan's GEMM launches, in plan order (each once), until `budget` bytes.
std::vector<cuda_l2_span> first_weights(const cuda_ctx& c, const launch_plan& plan, long long budget) {
  std::vector<cuda_l2_span> out;
  std::set<int64_t> seen; // weights-arena offsets already taken (tenants may share a weight)
  long long total = 0;
  const CUdeviceptr base = c.mem.arenas.base[static_cast<int>(arena_id::weights)];
  auto take = [&](ref r, long long bytes) {
    if (r.arena != arena_id::weights || bytes <= 0 || total >= budget || !seen.insert(r.offset).second) return;
    bytes = std::min(bytes, budget - total);
    total += bytes;
    for (long long at = 0; at < bytes; at += kL2WarmPiece)
      out.push_back({static_cast<unsigned long long>(base + static_cast<CUdeviceptr>(r.offset + at)), std::min(kL2WarmPiece, bytes - at)});
  };
  for (const launch& l : plan.launches) {
    if (l.kind == launch_kind::kernel) continue;
    const size_t es = dtype_size(l.dt);
    for (const gemm_group& g : l.groups) {
      const gemm_problem& p = g.problem;
      const long long a = p.trans_a ? operand_bytes(p.k, p.m, p.lda, es) : operand_bytes(p.m, p.k, p.lda, es);
      const long long b = p.trans_b ? operand_bytes(p.n, p.k, p.ldb, es) : operand_bytes(p.k, p.n, p.ldb, es);
      for (const gemm_entry& e : g.entries) {
        take(e.a, a);
        take(e.b, b);
      }
    }
    if (total >= budget) break;
  }
  return out;
}

std::string megabytes(long long bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return buf;
}

} // namespace

int cuda_l2_warm_from_env() {
  return cuda_env_choice("LOOM_CUDA_L2_WARM", kL2WarmAuto,
                         {{"auto", kL2WarmAuto}, {"on", kL2WarmOn}, {"off", 0}, {"8", 8}, {"16", 16}, {"24", 24}, {"32", 32}, {"48", 48}});
}

void cuda_l2_warm_prepare(cuda_ctx& c, const launch_plan& plan) {
  cuda_l2_warm_state& W = c.l2;
  const long long l2 = c.dev.props.l2CacheSize;
  const char* how = W.setting == kL2WarmAuto ? "auto" : W.setting == kL2WarmOn ? "on" : nullptr;
  const std::string name = "LOOM_CUDA_L2_WARM=" + (how ? std::string(how) : W.setting == 0 ? "off" : std::to_string(W.setting));
  long long budget = 0;
  if (W.setting == kL2WarmOn || (W.setting == kL2WarmAuto && kL2WarmByDefault)) budget = l2 / 2;
  else if (W.setting > 0) budget = static_cast<long long>(W.setting) * kMiB;
  if (budget <= 0) {
    W.note = name + ": no L2 warm-up" + (W.setting == kL2WarmAuto ? " (opt-in until measured: on, or a budget in MB)" : "");
    return;
  }
  std::vector<cuda_l2_span> spans = first_weights(c, plan, budget);
  long long bytes = 0;
  for (const auto& s : spans) bytes += s.bytes;
  if (bytes < kL2WarmMinBytes) {
    W.note = name + ": no L2 warm-up (the tick's GEMMs read " + megabytes(bytes) + " of weights, below " + megabytes(kL2WarmMinBytes) + ")";
    return;
  }
  CUDA_CHECK(cudaMalloc(&W.table, spans.size() * sizeof(cuda_l2_span)));
  // on the plan's stream, and finished before the first tick (see backend_cuda.cc upload_now)
  CUDA_CHECK(cudaMemcpyAsync(W.table, spans.data(), spans.size() * sizeof(cuda_l2_span), cudaMemcpyHostToDevice, c.dev.stream));
  CUDA_CHECK(cudaStreamSynchronize(c.dev.stream));
  CUDA_CHECK(cudaStreamCreateWithFlags(&W.stream, cudaStreamNonBlocking));
  CUDA_CHECK(cudaEventCreateWithFlags(&W.start, cudaEventDisableTiming));
  W.spans = static_cast<int>(spans.size());
  W.bytes = bytes;
  W.note = name + ": each full tick prefetches the first " + megabytes(bytes) + " of its GEMM weights into L2 (of " + megabytes(l2) +
           ") while its inputs are copied";
}

bool cuda_l2_warm_mark(cuda_ctx& c) {
  if (c.l2.spans == 0) return false;
  CUDA_CHECK(cudaEventRecord(c.l2.start, c.dev.stream));
  return true;
}

void cuda_l2_warm_launch(cuda_ctx& c) {
  cuda_l2_warm_state& W = c.l2;
  CUDA_CHECK(cudaStreamWaitEvent(W.stream, W.start, 0));
  CUDA_CHECK(cuda_launch_l2_warm(static_cast<const cuda_l2_span*>(W.table), W.spans, W.stream));
  W.launched++;
}

void cuda_l2_warm_stats(const cuda_ctx& c, backend_stats& out) {
  out.numbers.emplace_back("l2WarmBytes", static_cast<double>(c.l2.bytes));
  out.numbers.emplace_back("l2WarmLaunches", static_cast<double>(c.l2.launched));
  out.strings.emplace_back("l2WarmNote", c.l2.note);
}

void cuda_l2_warm_destroy(cuda_ctx& c) {
  cuda_l2_warm_state& W = c.l2;
  if (W.stream) {
    cudaStreamSynchronize(W.stream);
    cudaStreamDestroy(W.stream);
  }
  if (W.start) cudaEventDestroy(W.start);
  if (W.table) cudaFree(W.table);
  cudaGetLastError();
  const int setting = W.setting; // read from the environment once, at create
  W = cuda_l2_warm_state{};
  W.setting = setting;
}

} // namespace loom
