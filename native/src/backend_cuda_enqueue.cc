// Putting the CUDA backend's work on its stream: cuBLAS / cuBLASLt calls, the skinny-GEMM kernel, generated
// kernels and GEMM epilogues, the body of a tick (copies in, launches, copies out), and its capture as a CUDA
// graph. Shared by the full tick and the sparse tick (backend_cuda_sparse.cc), which differ only in the launch
// states they pass.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <tuple>
#include <vector>

#include "backend_cuda_ctx.h"

namespace loom {

namespace {

// Whether a Loom kernel enqueued now goes programmatic (cuda_pdl_state): the policy allows it and the stream's
// last work is a Loom kernel. Counts it.
bool take_pdl(cuda_ctx& c, bool after_kernel) {
  const bool pdl = c.pdl.enabled && after_kernel;
  c.pdl.launched += pdl ? 1 : 0;
  return pdl;
}

} // namespace

bool cuda_enqueue_gemm(cuda_ctx& c, const cuda_gemm_ctx& x, gemm_call& g, bool may_fall_back, bool after_kernel) {
  const float zero = 0.0f;
  const cudaDataType_t f32 = CUDA_R_32F, ab = g.ab;
  // TF32 (when asked for) applies to f32 operands; half operands always accumulate in true fp32
  const cublasComputeType_t compute = ab == CUDA_R_32F ? c.dev.compute : CUBLAS_COMPUTE_32F;
  auto arr = [&](int which) { return reinterpret_cast<void**>(g.arr + static_cast<size_t>(which) * g.total * sizeof(void*)); };
  switch (g.mode) {
    case gemm_mode::strided:
      CUBLAS_CHECK(cublasGemmStridedBatchedEx(x.blas, g.ta, g.tb, g.m, g.n, g.k, &g.alpha, reinterpret_cast<const void*>(g.a), ab, g.lda,
                                              g.sa, reinterpret_cast<const void*>(g.b), ab, g.ldb, g.sb, &zero,
                                              reinterpret_cast<void*>(g.c), f32, g.ldc, g.sc, g.batch, compute, CUBLAS_GEMM_DEFAULT));
      return false;
    case gemm_mode::batched:
      CUBLAS_CHECK(cublasGemmBatchedEx(x.blas, g.ta, g.tb, g.m, g.n, g.k, &g.alpha, const_cast<const void* const*>(arr(0)), ab, g.lda,
                                       const_cast<const void* const*>(arr(1)), ab, g.ldb, &zero, arr(2), f32, g.ldc, g.total, compute,
                                       CUBLAS_GEMM_DEFAULT));
      return false;
    case gemm_mode::grouped: {
#if defined(CUBLAS_VERSION) && CUBLAS_VERSION >= 120500
      const cublasStatus_t st = cublasGemmGroupedBatchedEx(
          x.blas, g.gta.data(), g.gtb.data(), g.gm.data(), g.gn.data(), g.gk.data(), g.galpha.data(),
          const_cast<const void* const*>(arr(0)), ab, g.glda.data(), const_cast<const void* const*>(arr(1)), ab, g.gldb.data(),
          g.gbeta.data(), arr(2), f32, g.gldc.data(), static_cast<int>(g.gsize.size()), g.gsize.data(), compute);
      if (st == CUBLAS_STATUS_SUCCESS) return false;
      if (!may_fall_back) CUBLAS_CHECK(st);
      // Found at load (warm-up run): this cuBLAS refuses the grouped call for these problems.
      c.gemm.grouped_note = std::string("cublasGemmGroupedBatchedEx returned ") + cublas_status_text(st) + ": one batched call per group";
      g.mode = gemm_mode::grouped_split;
      c.gemm.grouped_split++;
      cudaGetLastError();
#endif
      return cuda_enqueue_gemm(c, x, g, false);
    }
    case gemm_mode::gemv_strided:
    case gemm_mode::gemv_batched: {
      cuda_gemv_args a = cuda_gemv_args_of(g);
      a.vec = c.gemm.gemv_vec ? 1 : 0;
      const bool pdl = take_pdl(c, after_kernel);
      a.prefetch = pdl ? c.pdl.prefetch : 0;
      CUDA_CHECK(cuda_launch_gemv(a, x.stream, pdl));
      return true;
    }
    case gemm_mode::lt_strided: cuda_lt_enqueue(x, g); return false;
    case gemm_mode::grouped_split: {
      size_t first = 0;
      for (size_t i = 0; i < g.gsize.size(); i++) {
        void** a = arr(0) + first;
        void** b = arr(1) + first;
        void** cc = arr(2) + first;
        CUBLAS_CHECK(cublasGemmBatchedEx(x.blas, g.gta[i], g.gtb[i], g.gm[i], g.gn[i], g.gk[i], &g.galpha[i],
                                         const_cast<const void* const*>(a), ab, g.glda[i], const_cast<const void* const*>(b), ab, g.gldb[i],
                                         &zero, cc, f32, g.gldc[i], g.gsize[i], compute, CUBLAS_GEMM_DEFAULT));
        first += static_cast<size_t>(g.gsize[i]);
      }
      return false;
    }
  }
  return false;
}

bool cuda_enqueue_launch(cuda_ctx& c, const cuda_gemm_ctx& x, launch_state& s, bool may_fall_back, bool after_kernel) {
  if (s.l->kind == launch_kind::kernel) {
    if (s.nsegs == 0) return after_kernel;
    CUdeviceptr segs = s.segs, views = s.views;
    int nsegs = s.nsegs;
    long long total = s.total;
    void* args[] = {&segs, &nsegs, &views, &total};
    CUlaunchAttribute attr[1] = {};
    attr[0].id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
    attr[0].value.programmaticStreamSerializationAllowed = 1;
    CUlaunchConfig cfg = {};
    cfg.gridDimX = s.grid, cfg.gridDimY = 1, cfg.gridDimZ = 1;
    cfg.blockDimX = s.block, cfg.blockDimY = 1, cfg.blockDimZ = 1;
    cfg.sharedMemBytes = 0;
    cfg.hStream = reinterpret_cast<CUstream>(x.stream);
    cfg.attrs = attr;
    cfg.numAttrs = take_pdl(c, after_kernel) ? 1 : 0;
    CU_CHECK(cuLaunchKernelEx(&cfg, s.fn, args, nullptr));
    return true;
  }
  bool last = after_kernel;
  for (auto& g : s.calls) last = cuda_enqueue_gemm(c, x, g, may_fall_back, last);
  if (s.n_epi > 0 && !cuda_epilogue_fused(s.calls)) {
    CUDA_CHECK(cuda_launch_epilogue(reinterpret_cast<const cuda_epi_job*>(s.epi), s.n_epi, s.epi_total, x.stream, take_pdl(c, last)));
    last = true;
  }
  return last;
}

bool cuda_enqueue_launch(cuda_ctx& c, launch_state& s, bool may_fall_back, bool after_kernel) {
  return cuda_enqueue_launch(c, c.dev.gemm, s, may_fall_back, after_kernel);
}

pdl_policy cuda_pdl_policy_from_env() {
  return cuda_env_choice("LOOM_CUDA_PDL", pdl_policy::automatic,
                         {{"auto", pdl_policy::automatic},
                          {"prefetch", pdl_policy::prefetch},
                          {"noprefetch", pdl_policy::no_prefetch},
                          {"off", pdl_policy::off}});
}

int cuda_pdl_prefetch_from_env() { return cuda_env_choice("LOOM_CUDA_PDL_PREFETCH", 2, {{"1", 1}, {"2", 2}, {"4", 4}, {"8", 8}}); }

tick_body cuda_full_body(cuda_ctx& c) { return tick_body{&c.full.in_ranges, &c.full.poison_slots, &c.full.launches, &c.full.out_ranges}; }

void cuda_enqueue_body(cuda_ctx& c, const tick_body& b, bool check_each, bool may_fall_back) {
  if (c.opts.poison_outputs) {
    for (const auto& r : *b.poison)
      CUDA_CHECK(cudaMemsetAsync(reinterpret_cast<void*>(c.mem.io() + r.offset), 0xFF, static_cast<size_t>(r.bytes), c.dev.stream));
  }
  // the full tick across its lanes (never when checking each launch: the warm-up and first runs stay serial)
  if (c.lanes.enabled && !check_each && b.launches == &c.full.launches) {
    cuda_lanes_enqueue(c, may_fall_back);
    return;
  }
  bool after_kernel = false; // the poison memsets and input copies come before: not a kernel
  for (auto& s : *b.launches) {
    try {
      after_kernel = cuda_enqueue_launch(c, s, may_fall_back, after_kernel);
      if (check_each) CUDA_CHECK(cudaStreamSynchronize(c.dev.stream));
    } catch (const loom_error& e) {
      throw loom_error("launch " + std::to_string(s.l->id) + " '" + s.l->label + "': " + e.what());
    }
  }
}

int64_t cuda_staging_offset(const range& r, const std::vector<io_span>* spans) {
  if (!spans) return r.offset;
  const int64_t h = io_host_offset(*spans, r.offset, r.bytes);
  if (h < 0)
    throw loom_error("tick copy of io [" + std::to_string(r.offset) + ", +" + std::to_string(r.bytes) +
                     ") lies outside the staging layout");
  return h;
}

void cuda_enqueue_io_copies(cuda_ctx& c, const std::vector<range>& ranges, void* buf, const std::vector<io_span>* spans, bool to_io,
                            cudaMemcpyKind kind, cudaStream_t stream) {
  for (const auto& r : ranges) {
    if (r.bytes <= 0) continue;
    void* io = reinterpret_cast<void*>(c.mem.io() + r.offset);
    void* at = static_cast<uint8_t*>(buf) + cuda_staging_offset(r, spans);
    CUDA_CHECK(cudaMemcpyAsync(to_io ? io : at, to_io ? at : io, static_cast<size_t>(r.bytes), kind, stream));
  }
}

void cuda_enqueue_copies_in(cuda_ctx& c, const std::vector<range>& ranges, const uint8_t* host, const std::vector<io_span>* spans) {
  cuda_enqueue_io_copies(c, ranges, const_cast<uint8_t*>(host), spans, true, cudaMemcpyHostToDevice, c.dev.stream);
}

void cuda_enqueue_copies_out(cuda_ctx& c, const std::vector<range>& ranges, uint8_t* host, const std::vector<io_span>* spans) {
  cuda_enqueue_io_copies(c, ranges, host, spans, false, cudaMemcpyDeviceToHost, c.dev.stream);
}

std::vector<cudaGraphNode_t> cuda_graph_nodes(cudaGraph_t g) {
  size_t n = 0;
  CUDA_CHECK(cudaGraphGetNodes(g, nullptr, &n));
  std::vector<cudaGraphNode_t> nodes(n);
  if (n) CUDA_CHECK(cudaGraphGetNodes(g, nodes.data(), &n));
  nodes.resize(n);
  return nodes;
}

namespace {

void count_nodes(cuda_ctx& c, cudaGraph_t g) {
  for (auto node : cuda_graph_nodes(g)) {
    cudaGraphNodeType t;
    CUDA_CHECK(cudaGraphNodeGetType(node, &t));
    c.graph.nodes++;
    switch (t) {
      case cudaGraphNodeTypeKernel: c.graph.kernel_nodes++; break;
      case cudaGraphNodeTypeMemcpy: c.graph.memcpy_nodes++; break;
      case cudaGraphNodeTypeMemset: c.graph.memset_nodes++; break;
      case cudaGraphNodeTypeGraph: {
        cudaGraph_t child = nullptr;
        CUDA_CHECK(cudaGraphChildGraphNodeGetGraph(node, &child));
        c.graph.nodes--;
        count_nodes(c, child);
        break;
      }
      default: c.graph.other_nodes++; break;
    }
  }
}

// Device µs of one `run()` as a captured tick runs it: kGraphReps runs captured into a graph, replayed once
// untimed, then the best of two timed replays, per run. Not the stream's eager time: eagerly each call also
// pays its host launch cost (a cuBLAS call's is several µs), which a captured tick does not, so an eager timing
// favours a one-kernel path far more than the tick does (H100, 2026-12-07: the tiled kernel timed 7 µs against
// cuBLAS + the epilogue kernel's 16-21 eagerly, and made the MobileNet tick slower). Where capture fails, the
// eager time. A run that throws while captured ends the capture first.
template <typename Run>
double time_as_graph(cuda_ctx& c, Run run) {
  constexpr int kGraphReps = 8;
  cudaGraph_t g = nullptr;
  cudaGraphExec_t exec = nullptr;
  if (cudaStreamBeginCapture(c.dev.stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess) {
    try {
      for (int r = 0; r < kGraphReps; r++) run();
    } catch (...) {
      cudaStreamEndCapture(c.dev.stream, &g);
      if (g) cudaGraphDestroy(g);
      cudaGetLastError();
      throw;
    }
    if (cudaStreamEndCapture(c.dev.stream, &g) == cudaSuccess && g && cudaGraphInstantiate(&exec, g, 0) != cudaSuccess) exec = nullptr;
    if (g) cudaGraphDestroy(g);
    cudaGetLastError();
  }
  if (!exec) {
    CUDA_CHECK(cudaEventRecord(c.dev.ev0, c.dev.stream));
    for (int r = 0; r < 3; r++) run();
    CUDA_CHECK(cudaEventRecord(c.dev.ev1, c.dev.stream));
    CUDA_CHECK(cudaStreamSynchronize(c.dev.stream));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, c.dev.ev0, c.dev.ev1));
    return static_cast<double>(ms) * 1000.0 / 3.0;
  }
  double best = -1;
  try {
    CUDA_CHECK(cudaGraphLaunch(exec, c.dev.stream));
    for (int round = 0; round < 2; round++) {
      CUDA_CHECK(cudaEventRecord(c.dev.ev0, c.dev.stream));
      CUDA_CHECK(cudaGraphLaunch(exec, c.dev.stream));
      CUDA_CHECK(cudaEventRecord(c.dev.ev1, c.dev.stream));
      CUDA_CHECK(cudaStreamSynchronize(c.dev.stream));
      float ms = 0;
      CUDA_CHECK(cudaEventElapsedTime(&ms, c.dev.ev0, c.dev.ev1));
      const double us = static_cast<double>(ms) * 1000.0 / kGraphReps;
      if (best < 0 || us < best) best = us;
    }
  } catch (...) {
    cudaGraphExecDestroy(exec);
    throw;
  }
  cudaGraphExecDestroy(exec);
  return best;
}

// Device µs of one call run as `mode` (left set): one untimed run (lazy loading, caches), then timed as a graph.
double time_gemm(cuda_ctx& c, gemm_call& g, gemm_mode mode) {
  g.mode = mode;
  cuda_enqueue_gemm(c, c.dev.gemm, g, false);
  CUDA_CHECK(cudaStreamSynchronize(c.dev.stream));
  return time_as_graph(c, [&] { cuda_enqueue_gemm(c, c.dev.gemm, g, false); });
}

} // namespace

// Each candidate is timed on its own, its repetitions launched as a tick launches a first kernel (not
// programmatically). Timing them as chains of programmatic launches (stop 22's LOOM_CUDA_CHOOSE=chain) chose
// no better: the zoo mix measured 328.5 µs vs 328.9 (H100, stop 23), so it was removed.
double cuda_time_launch(cuda_ctx& c, launch_state& s) {
  cuda_enqueue_launch(c, s, false);
  CUDA_CHECK(cudaStreamSynchronize(c.dev.stream)); // a candidate that fails, fails here, named by its caller
  return time_as_graph(c, [&] { cuda_enqueue_launch(c, s, false); });
}

namespace {

int gemv_dtype(cudaDataType_t t) {
  switch (t) {
    case CUDA_R_32F: return 0;
    case CUDA_R_16BF: return 1;
    case CUDA_R_16F: return 2;
    default: return -1;
  }
}

} // namespace

cudaGraphExec_t cuda_capture(cuda_ctx& c, const tick_body& b, bool count) {
  const long long pdl_before = c.pdl.launched;
  CUDA_CHECK(cudaStreamBeginCapture(c.dev.stream, cudaStreamCaptureModeThreadLocal));
  try {
    cuda_enqueue_body(c, b, false, false);
  } catch (...) {
    cudaGraph_t junk = nullptr;
    cudaStreamEndCapture(c.dev.stream, &junk);
    if (junk) cudaGraphDestroy(junk);
    cudaGetLastError();
    throw;
  }
  cudaGraph_t g = nullptr;
  CUDA_CHECK(cudaStreamEndCapture(c.dev.stream, &g));
  cudaGraphExec_t exec = nullptr;
  try {
    if (count) {
      count_nodes(c, g);
      c.pdl.graph_launches = static_cast<int>(c.pdl.launched - pdl_before);
    }
    // kernel nodes captured on a high-priority lane keep that priority only with this flag (backend_cuda_lanes.cc)
    CUDA_CHECK(cudaGraphInstantiate(&exec, g, c.lanes.high > 0 ? cudaGraphInstantiateFlagUseNodePriority : 0));
    CUDA_CHECK(cudaGraphUpload(exec, c.dev.stream));
    CUDA_CHECK(cudaStreamSynchronize(c.dev.stream));
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
  for (auto& s : c.full.launches) {
    for (auto& g : s.calls) {
      if (g.mode != gemm_mode::grouped) continue;
      grouped++;
      if (want == "grouped") continue;
      if (want == "split") {
        g.mode = gemm_mode::grouped_split;
        split++;
        continue;
      }
      const double tg = time_gemm(c, g, gemm_mode::grouped);
      const double ts = time_gemm(c, g, gemm_mode::grouped_split);
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
  c.gemm.grouped_split += split;
  if (grouped == 0) return;
  char buf[256];
  if (want == "auto") {
    std::snprintf(buf, sizeof buf, "%d of %d grouped launches run as one batched call per group (measured at load: %.1f us -> %.1f us)",
                  split, grouped, before, after);
  } else {
    std::snprintf(buf, sizeof buf, "LOOM_CUDA_GROUPED=%s: %d of %d grouped launches split per group", want.c_str(), split, grouped);
  }
  c.gemm.grouped_note = c.gemm.grouped_note.empty() ? buf : c.gemm.grouped_note + "; " + buf;
}

bool cuda_gemv_vec_from_env() { return cuda_env_choice("LOOM_CUDA_GEMV_VEC", true, {{"auto", true}, {"off", false}}); }

bool cuda_gemv_swap_from_env() { return cuda_env_choice("LOOM_CUDA_GEMV_SWAP", true, {{"auto", true}, {"off", false}}); }

gemv_policy cuda_gemv_policy_from_env() {
  return cuda_env_choice("LOOM_CUDA_GEMV", gemv_policy::automatic,
                         {{"auto", gemv_policy::automatic}, {"off", gemv_policy::off}, {"force", gemv_policy::force}});
}

// Whether the skinny kernel runs g transposed (cuda_gemv_args.swap): where its rows cannot be the plan's m (more
// than kGemvMaxRows, or the plan's A transposed) but can be the plan's n (a few columns, the plan's B untransposed:
// a conv's GEMM over a few output positions). A pure function of the call, so a masked tick's row bucket (a
// smaller plan m) may run the untransposed form of the same call.
namespace {
bool gemv_swapped(const gemm_call& g) {
  return g.gemv_swap && !g.tiled && g.ta == CUBLAS_OP_N && g.m <= kGemvMaxRows && (g.n > kGemvMaxRows || g.tb != CUBLAS_OP_N);
}
} // namespace

cuda_gemv_args cuda_gemv_args_of(const gemm_call& g) {
  cuda_gemv_args a;
  a.swap = gemv_swapped(g) ? 1 : 0;
  const bool arrays = g.mode == gemm_mode::batched || g.mode == gemm_mode::gemv_batched;
  if (arrays) {
    a.arr = g.arr;
    a.total = g.total;
    a.batch = g.total;
  } else if (a.swap) {
    a.w = g.b, a.x = g.a, a.c = g.c;
    a.sw = g.sb, a.sx = g.sa, a.sc = g.sc;
    a.batch = g.batch;
  } else {
    a.w = g.a, a.x = g.b, a.c = g.c;
    a.sw = g.sa, a.sx = g.sb, a.sc = g.sc;
    a.batch = g.batch;
  }
  a.k = g.k, a.ldc = g.ldc;
  if (a.swap) {
    // rows = plan n = g.m, cols = plan m = g.n; W = the plan's A (B'), X = the plan's B (A', read down its columns)
    a.rows = g.m, a.cols = g.n;
    a.ldw = g.ldb, a.ldx = g.lda;
    a.trans_w = g.tb == CUBLAS_OP_N ? 1 : 0;
  } else {
    // column-major call → the plan's row-major problem: rows = plan m = g.n, cols = plan n = g.m
    a.rows = g.n, a.cols = g.m;
    a.ldw = g.lda, a.ldx = g.ldb;
    a.trans_w = g.ta == CUBLAS_OP_T ? 1 : 0;
  }
  a.dtype = gemv_dtype(g.ab);
  a.tiled = g.tiled ? 1 : 0;
  if (g.tiled && g.splits > 1) a.splits = g.splits, a.ws = g.split_ws, a.sem = g.split_sem;
  a.alpha = g.alpha;
  if (g.fused) {
    const cuda_gemm_epi& e = g.epi;
    a.epilogue = 1;
    a.bias_mode = e.bias_mode;
    a.bias = arrays ? 0 : e.bias; // with arrays, each entry's bias is in the fourth array
    a.sbias = e.sbias;
    a.ld_bias = e.ld_bias;
    a.act = e.act;
    a.beta = e.beta, a.p0 = e.p0, a.p1 = e.p1;
    a.residual = e.residual ? 1 : 0;
    a.res = arrays ? 0 : e.res; // with arrays, each entry's residual is in the fifth array
    a.sres = e.sres;
  }
  return a;
}

bool cuda_gemv_eligible(const gemm_call& g) {
  switch (g.mode) {
    case gemm_mode::strided:
    case gemm_mode::batched:
    case gemm_mode::gemv_strided:
    case gemm_mode::gemv_batched:
    case gemm_mode::lt_strided: break;
    case gemm_mode::grouped:
    case gemm_mode::grouped_split: return false;
  }
  // B' = the plan's A untransposed, A' = the plan's B either way; or transposed (gemv_swapped): A' untransposed,
  // B' either way
  const auto plain = [](cublasOperation_t t) { return t == CUBLAS_OP_N || t == CUBLAS_OP_T; };
  if (!plain(g.ta) || !plain(g.tb) || (g.tb != CUBLAS_OP_N && !gemv_swapped(g))) return false;
  return cuda_gemv_fits(cuda_gemv_args_of(g));
}

std::string cuda_gemm_shape_key(const gemm_call& g, int n_epi) {
  const cuda_gemm_epi& e = g.epi;
  const auto al = [](CUdeviceptr p) { return static_cast<int>(p % 16); };
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "%d %d %d|%d %d %d|%d %d %d|%d %d|%lld %lld %lld|%d %d %d|%d %d|%d %.9g|%d %d %d %d %lld %lld %d %lld %d|%d %d",
                static_cast<int>(g.mode), static_cast<int>(g.ta), static_cast<int>(g.tb), g.m, g.n, g.k, g.lda, g.ldb, g.ldc, g.batch,
                g.total, g.sa, g.sb, g.sc, al(g.a), al(g.b), al(g.c), static_cast<int>(g.ab), g.tiled ? 1 : 0, g.fused ? 1 : 0, g.alpha,
                e.needed ? 1 : 0, e.residual ? 1 : 0, e.bias_mode, e.bias_strided ? 1 : 0, e.sbias, e.ld_bias, e.res_strided ? 1 : 0,
                e.sres, e.act, n_epi, g.mode == gemm_mode::batched || g.mode == gemm_mode::gemv_batched ? 1 : 0);
  return buf;
}

// Measured once at load like cuda_choose_grouped (once per call shape: cuda_choice_memo); the kernel must beat
// cuBLAS by > 10% so near ties keep cuBLAS on every load.
void cuda_choose_gemv(cuda_ctx& c) {
  if (c.gemm.gemv == gemv_policy::off) {
    c.gemm.gemv_note = "LOOM_CUDA_GEMV=off: every GEMM call runs on cuBLAS";
    return;
  }
  int eligible = 0;
  double before = 0, after = 0;
  std::string detail;
  for (auto& s : c.full.launches) {
    for (auto& g : s.calls) {
      if (gemm_mode_is_gemv(g.mode) || !cuda_gemv_eligible(g)) continue;
      eligible++;
      const gemm_mode blas = g.mode;
      const gemm_mode twin = blas == gemm_mode::strided ? gemm_mode::gemv_strided : gemm_mode::gemv_batched;
      try {
        if (c.gemm.gemv == gemv_policy::force) {
          // run once eagerly: a fault names its launch, and the kernel is loaded before any capture
          g.mode = twin;
          cuda_enqueue_gemm(c, c.dev.gemm, g, false);
          CUDA_CHECK(cudaStreamSynchronize(c.dev.stream));
          c.gemm.gemv_calls++;
          continue;
        }
        const std::string key = cuda_gemm_shape_key(g, s.n_epi);
        const auto hit = c.gemm.memo.gemv.find(key);
        double tb, tk;
        if (hit != c.gemm.memo.gemv.end()) {
          std::tie(tb, tk) = hit->second;
          c.gemm.memo.gemv_hits++;
        } else {
          tb = time_gemm(c, g, blas);
          tk = time_gemm(c, g, twin);
          c.gemm.memo.gemv.emplace(key, std::make_pair(tb, tk));
        }
        const bool keep = tk < 0.9 * tb;
        g.mode = keep ? twin : blas;
        c.gemm.gemv_calls += keep ? 1 : 0;
        before += tb;
        after += keep ? tk : tb;
        if (eligible <= 8) {
          char buf[160];
          std::snprintf(buf, sizeof buf, "%slaunch %d (%dx%dx%d x%d): cuBLAS %.1f us, kernel %.1f us", detail.empty() ? "" : "; ", s.l->id,
                        g.n, g.m, g.k, cuda_gemv_args_of(g).batch, tb, tk);
          detail += buf;
        }
      } catch (const loom_error& e) {
        throw loom_error("launch " + std::to_string(s.l->id) + " '" + s.l->label + "' (skinny GEMM kernel): " + e.what());
      }
    }
  }
  if (eligible == 0) return;
  char buf[256];
  if (c.gemm.gemv == gemv_policy::force) {
    std::snprintf(buf, sizeof buf, "LOOM_CUDA_GEMV=force: %d of %d eligible GEMM calls run the skinny-GEMM kernel", c.gemm.gemv_calls,
                  eligible);
    c.gemm.gemv_note = buf;
    return;
  }
  std::snprintf(
      buf, sizeof buf,
      "%d of %d eligible GEMM calls run the skinny-GEMM kernel (measured at load: %.1f us -> %.1f us; %d calls of a shape measured "
      "before took its choice)",
      c.gemm.gemv_calls, eligible, before, after, c.gemm.memo.gemv_hits);
  c.gemm.gemv_note = std::string(buf) + (detail.empty() ? "" : ": " + detail) + (eligible > 8 ? "; ..." : "");
}

} // namespace loom
