// Putting the CUDA backend's work on its stream: cuBLAS calls, generated kernels and GEMM epilogues, the
// body of a tick (copies in, launches, copies out), and its capture as a CUDA graph. Shared by the full
// tick and the sparse tick (backend_cuda_sparse.cc), which differ only in the launch states they pass.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "backend_cuda_ctx.h"

namespace loom {

void cuda_enqueue_gemm(cuda_ctx& c, gemm_call& g, bool may_fall_back) {
  const float zero = 0.0f;
  const cudaDataType_t f32 = CUDA_R_32F, ab = g.ab;
  // TF32 (when asked for) applies to f32 operands; half operands always accumulate in true fp32
  const cublasComputeType_t compute = ab == CUDA_R_32F ? c.compute : CUBLAS_COMPUTE_32F;
  auto arr = [&](int which) { return reinterpret_cast<void**>(g.arr + static_cast<size_t>(which) * g.total * sizeof(void*)); };
  switch (g.mode) {
    case gemm_mode::strided:
      CUBLAS_CHECK(cublasGemmStridedBatchedEx(c.blas, g.ta, g.tb, g.m, g.n, g.k, &g.alpha, reinterpret_cast<const void*>(g.a), ab, g.lda, g.sa,
                                              reinterpret_cast<const void*>(g.b), ab, g.ldb, g.sb, &zero, reinterpret_cast<void*>(g.c), f32, g.ldc,
                                              g.sc, g.batch, compute, CUBLAS_GEMM_DEFAULT));
      return;
    case gemm_mode::batched:
      CUBLAS_CHECK(cublasGemmBatchedEx(c.blas, g.ta, g.tb, g.m, g.n, g.k, &g.alpha, const_cast<const void* const*>(arr(0)), ab, g.lda,
                                       const_cast<const void* const*>(arr(1)), ab, g.ldb, &zero, arr(2), f32, g.ldc, g.total, compute,
                                       CUBLAS_GEMM_DEFAULT));
      return;
    case gemm_mode::grouped: {
#if defined(CUBLAS_VERSION) && CUBLAS_VERSION >= 120500
      const cublasStatus_t st = cublasGemmGroupedBatchedEx(
          c.blas, g.gta.data(), g.gtb.data(), g.gm.data(), g.gn.data(), g.gk.data(), g.galpha.data(), const_cast<const void* const*>(arr(0)), ab,
          g.glda.data(), const_cast<const void* const*>(arr(1)), ab, g.gldb.data(), g.gbeta.data(), arr(2), f32, g.gldc.data(),
          static_cast<int>(g.gsize.size()), g.gsize.data(), compute);
      if (st == CUBLAS_STATUS_SUCCESS) return;
      if (!may_fall_back) CUBLAS_CHECK(st);
      // Found at load (warm-up run): this cuBLAS refuses the grouped call for these problems.
      c.grouped_note = std::string("cublasGemmGroupedBatchedEx returned ") + cublas_status_text(st) + ": one batched call per group";
      g.mode = gemm_mode::grouped_split;
      c.grouped_split++;
      cudaGetLastError();
#endif
      cuda_enqueue_gemm(c, g, false);
      return;
    }
    case gemm_mode::grouped_split: {
      size_t first = 0;
      for (size_t i = 0; i < g.gsize.size(); i++) {
        void** a = arr(0) + first;
        void** b = arr(1) + first;
        void** cc = arr(2) + first;
        CUBLAS_CHECK(cublasGemmBatchedEx(c.blas, g.gta[i], g.gtb[i], g.gm[i], g.gn[i], g.gk[i], &g.galpha[i], const_cast<const void* const*>(a), ab,
                                         g.glda[i], const_cast<const void* const*>(b), ab, g.gldb[i], &zero, cc, f32, g.gldc[i], g.gsize[i],
                                         compute, CUBLAS_GEMM_DEFAULT));
        first += static_cast<size_t>(g.gsize[i]);
      }
      return;
    }
  }
}

void cuda_enqueue_launch(cuda_ctx& c, launch_state& s, bool may_fall_back) {
  if (s.l->kind == launch_kind::kernel) {
    if (s.nsegs == 0) return;
    CUdeviceptr segs = s.segs, views = s.views;
    int nsegs = s.nsegs;
    long long total = s.total;
    void* args[] = {&segs, &nsegs, &views, &total};
    CU_CHECK(cuLaunchKernel(s.fn, s.grid, 1, 1, s.block, 1, 1, 0, reinterpret_cast<CUstream>(c.stream), args, nullptr));
    return;
  }
  for (auto& g : s.calls) cuda_enqueue_gemm(c, g, may_fall_back);
  if (s.n_epi > 0) CUDA_CHECK(cuda_launch_epilogue(reinterpret_cast<const cuda_epi_job*>(s.epi), s.n_epi, s.epi_total, c.stream));
}

tick_body cuda_full_body(cuda_ctx& c) { return tick_body{&c.in_ranges, &c.poison_slots, &c.launches, &c.out_ranges}; }

void cuda_enqueue_body(cuda_ctx& c, const tick_body& b, bool check_each, bool may_fall_back) {
  for (const auto& r : *b.in) {
    CUDA_CHECK(cudaMemcpyAsync(reinterpret_cast<void*>(c.io() + r.offset), c.pin_in + r.offset, static_cast<size_t>(r.bytes), cudaMemcpyHostToDevice, c.stream));
  }
  if (c.opts.poison_outputs) {
    for (const auto& r : *b.poison) CUDA_CHECK(cudaMemsetAsync(reinterpret_cast<void*>(c.io() + r.offset), 0xFF, static_cast<size_t>(r.bytes), c.stream));
  }
  for (auto& s : *b.launches) {
    try {
      cuda_enqueue_launch(c, s, may_fall_back);
      if (check_each) CUDA_CHECK(cudaStreamSynchronize(c.stream));
    } catch (const loom_error& e) {
      throw loom_error("launch " + std::to_string(s.l->id) + " '" + s.l->label + "': " + e.what());
    }
  }
  for (const auto& r : *b.out) {
    CUDA_CHECK(cudaMemcpyAsync(c.pin_out + r.offset, reinterpret_cast<void*>(c.io() + r.offset), static_cast<size_t>(r.bytes), cudaMemcpyDeviceToHost, c.stream));
  }
}

namespace {

void count_nodes(cuda_ctx& c, cudaGraph_t g) {
  size_t n = 0;
  CUDA_CHECK(cudaGraphGetNodes(g, nullptr, &n));
  std::vector<cudaGraphNode_t> nodes(n);
  if (n) CUDA_CHECK(cudaGraphGetNodes(g, nodes.data(), &n));
  for (auto node : nodes) {
    cudaGraphNodeType t;
    CUDA_CHECK(cudaGraphNodeGetType(node, &t));
    c.graph_nodes++;
    switch (t) {
      case cudaGraphNodeTypeKernel: c.kernel_nodes++; break;
      case cudaGraphNodeTypeMemcpy: c.memcpy_nodes++; break;
      case cudaGraphNodeTypeMemset: c.memset_nodes++; break;
      case cudaGraphNodeTypeGraph: {
        cudaGraph_t child = nullptr;
        CUDA_CHECK(cudaGraphChildGraphNodeGetGraph(node, &child));
        c.graph_nodes--;
        count_nodes(c, child);
        break;
      }
      default: c.other_nodes++; break;
    }
  }
}

} // namespace

cudaGraphExec_t cuda_capture(cuda_ctx& c, const tick_body& b, bool count) {
  CUDA_CHECK(cudaStreamBeginCapture(c.stream, cudaStreamCaptureModeThreadLocal));
  try {
    cuda_enqueue_body(c, b, false, false);
  } catch (...) {
    cudaGraph_t junk = nullptr;
    cudaStreamEndCapture(c.stream, &junk);
    if (junk) cudaGraphDestroy(junk);
    cudaGetLastError();
    throw;
  }
  cudaGraph_t g = nullptr;
  CUDA_CHECK(cudaStreamEndCapture(c.stream, &g));
  cudaGraphExec_t exec = nullptr;
  try {
    if (count) count_nodes(c, g);
    CUDA_CHECK(cudaGraphInstantiate(&exec, g, 0));
    CUDA_CHECK(cudaGraphUpload(exec, c.stream));
    CUDA_CHECK(cudaStreamSynchronize(c.stream));
  } catch (...) {
    if (exec) cudaGraphExecDestroy(exec);
    cudaGraphDestroy(g);
    throw;
  }
  cudaGraphDestroy(g);
  return exec;
}

// Measured once at load, per gemm_grouped launch: one cublasGemmGroupedBatchedEx call, or one batched call
// per group (the same GEMMs either way; an execution choice, not a planning one). The grouped call stays
// unless the split is clearly (> 20%) faster, so near ties resolve the same way on every load.
// LOOM_CUDA_GROUPED=grouped|split forces one for every launch.
void cuda_choose_grouped(cuda_ctx& c) {
  const char* env = std::getenv("LOOM_CUDA_GROUPED");
  const std::string want = env ? env : "auto";
  int grouped = 0, split = 0;
  double before = 0, after = 0;
  for (auto& s : c.launches) {
    for (auto& g : s.calls) {
      if (g.mode != gemm_mode::grouped) continue;
      grouped++;
      if (want == "grouped") continue;
      if (want == "split") {
        g.mode = gemm_mode::grouped_split;
        split++;
        continue;
      }
      auto time = [&](gemm_mode m) {
        g.mode = m;
        cuda_enqueue_gemm(c, g, false);
        CUDA_CHECK(cudaEventRecord(c.ev0, c.stream));
        for (int r = 0; r < 3; r++) cuda_enqueue_gemm(c, g, false);
        CUDA_CHECK(cudaEventRecord(c.ev1, c.stream));
        CUDA_CHECK(cudaStreamSynchronize(c.stream));
        float ms = 0;
        CUDA_CHECK(cudaEventElapsedTime(&ms, c.ev0, c.ev1));
        return static_cast<double>(ms) * 1000.0 / 3.0;
      };
      const double tg = time(gemm_mode::grouped);
      const double ts = time(gemm_mode::grouped_split);
      before += tg;
      if (ts < 0.8 * tg) {
        g.mode = gemm_mode::grouped_split;
        split++;
        after += ts;
      } else {
        g.mode = gemm_mode::grouped;
        after += tg;
      }
    }
  }
  c.grouped_split += split;
  if (grouped == 0) return;
  char buf[256];
  if (want == "auto") {
    std::snprintf(buf, sizeof buf, "%d of %d grouped launches run as one batched call per group (measured at load: %.1f us -> %.1f us)", split, grouped, before, after);
  } else {
    std::snprintf(buf, sizeof buf, "LOOM_CUDA_GROUPED=%s: %d of %d grouped launches split per group", want.c_str(), split, grouped);
  }
  c.grouped_note = c.grouped_note.empty() ? buf : c.grouped_note + "; " + buf;
}

} // namespace loom
