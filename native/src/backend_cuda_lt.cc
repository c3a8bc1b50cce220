// cuBLASLt for the CUDA backend (backend_cuda_lt.h): the per-stream GEMM context, and cuBLASLt plans for
// strided gemm calls. Loom computes row-major C[m,n] as the column-major Cᵀ = op(B)ᵀ·op(A)ᵀ (operands
// already swapped in gemm_call: g.m = the plan's n, g.n = the plan's m), so in cuBLASLt's terms:
//  - a `row` bias (bias[j], j < plan n) is one value per ROW of the column-major [g.m x g.n] result: exactly
//    what CUBLASLT_EPILOGUE_*BIAS adds (bias length = rows of D), per entry at BIAS_BATCH_STRIDE;
//  - a `full` bias (bias[i·ldBias + j]) is a column-major [g.m x g.n] matrix with ld = ldBias: it rides in
//    as C with beta = the plan's beta (D = alpha·A'B' + beta·C), exactly the plan's alpha·AB + beta·bias;
//  - a `col` bias (one value per column of the result) has no cuBLASLt form: the epilogue kernel adds it;
//  - a residual addend (a folded Add; C's layout) rides in as C with beta 1 (D = alpha·A'B' + R, then the bias
//    vector and the activation): where the bias is none or `row` and the entries' residuals are uniformly
//    strided; a `full` bias already takes C, so with a residual it stays on the epilogue kernel;
//  - activations: relu (RELU), gelu_tanh (GELU: cuBLASLt's GELU is the tanh approximation, but evaluated
//    with its own tanh, close to but not the bits of tanhf: fused only where the call is not true fp32, i.e.
//    TF32 or bf16/f16 operands, whose tolerances dwarf it); the rest stay on the epilogue kernel. The plan's
//    beta scales the bias, so a `row` bias fuses only when beta == 1.
// Anything else runs the plain product here and the epilogue kernel after it.
#include <algorithm>
#include <cstdint>
#include <string>

#include "backend_cuda_ctx.h"

namespace loom {

void cuda_gemm_ctx_create(cuda_gemm_ctx& x, cudaStream_t stream) {
  x.stream = stream;
  CUBLAS_CHECK(cublasCreate(&x.blas));
  CUBLAS_CHECK(cublasSetStream(x.blas, stream));
  CUBLAS_CHECK(cublasSetPointerMode(x.blas, CUBLAS_POINTER_MODE_HOST));
  // true fp32 unless tf32 is asked for through the compute type
  CUBLAS_CHECK(cublasSetMathMode(x.blas, CUBLAS_DEFAULT_MATH));
  CUBLAS_CHECK(cublasLtCreate(&x.lt));
}

void cuda_gemm_ctx_allocate(cuda_gemm_ctx& x, size_t bytes) {
  if (x.workspace) throw loom_error("cuda_gemm_ctx_allocate: the GEMM workspace is already allocated");
  CUDA_CHECK(cudaMalloc(&x.workspace, bytes));
  x.workspace_bytes = bytes;
  CUBLAS_CHECK(cublasSetWorkspace(x.blas, x.workspace, bytes));
}

void cuda_gemm_ctx_destroy(cuda_gemm_ctx& x) {
  if (x.lt) cublasLtDestroy(x.lt);
  if (x.blas) cublasDestroy(x.blas);
  if (x.workspace) cudaFree(x.workspace);
  x = cuda_gemm_ctx{};
}

cuda_lt_plan::~cuda_lt_plan() {
  if (desc) cublasLtMatmulDescDestroy(desc);
  for (cublasLtMatrixLayout_t l : {a, b, c, d})
    if (l) cublasLtMatrixLayoutDestroy(l);
}

namespace {

// The largest power of two up to 256 dividing the address and, for a batch, the stride in bytes: what
// cuBLASLt may assume of every matrix of the batch (its default, 256, could pick an algorithm these break).
uint32_t alignment(CUdeviceptr p, long long stride_bytes, int batch) {
  unsigned long long v = p;
  if (batch > 1) v |= static_cast<unsigned long long>(stride_bytes);
  uint32_t a = 256;
  while (a > 1 && v % a != 0) a >>= 1;
  return a;
}

void make_layout(cublasLtMatrixLayout_t& l, cudaDataType_t t, int rows, int cols, long long ld, int batch, long long stride) {
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, t, static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), static_cast<int64_t>(ld)));
  if (batch > 1) {
    const int32_t count = batch;
    const int64_t offset = stride;
    CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count));
    CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &offset, sizeof offset));
  }
}

template <typename T>
void set_desc(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, const T& v) {
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d, attr, &v, sizeof v));
}

template <typename T>
void set_pref(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t attr, const T& v) {
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(p, attr, &v, sizeof v));
}

struct preference {
  cublasLtMatmulPreference_t p = nullptr;
  preference() { CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&p)); }
  ~preference() { cublasLtMatmulPreferenceDestroy(p); }
  preference(const preference&) = delete;
  preference& operator=(const preference&) = delete;
};

// How cuBLASLt applies g.epi exactly, when it can (see the file comment).
struct lt_epilogue {
  cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_DEFAULT;
  bool bias_vector = false; // a `row` bias as the epilogue's bias vector
  bool bias_as_c = false;   // a `full` bias as C, scaled by beta
  bool res_as_c = false;    // the residual as C, beta 1
  std::string form = "none";
};

bool lt_epilogue_of(const gemm_call& g, bool true_fp32, lt_epilogue& out, std::string& why) {
  const cuda_gemm_epi& e = g.epi;
  if (e.residual && (e.bias_mode == 3 || !e.res_strided)) {
    why = e.bias_mode == 3 ? "a residual beside a full bias (both would be C)" : "the entries' residuals are not uniformly strided";
    return false;
  }
  int act = 0; // 0 none, 1 relu, 2 gelu
  switch (e.act) {
    case static_cast<int>(activation_kind::none): act = 0; break;
    case static_cast<int>(activation_kind::relu): act = 1; break;
    case static_cast<int>(activation_kind::gelu_tanh):
      if (true_fp32) {
        why = "gelu_tanh on a true-fp32 call (cuBLASLt's GELU is not tanhf's bits; fused for tf32 / bf16 / f16 only)";
        return false;
      }
      act = 2;
      break;
    default:
      why = std::string("activation ") + activation_kind_name(static_cast<activation_kind>(e.act)) + " has no cuBLASLt epilogue";
      return false;
  }
  static const cublasLtEpilogue_t plain[3] = {CUBLASLT_EPILOGUE_DEFAULT, CUBLASLT_EPILOGUE_RELU, CUBLASLT_EPILOGUE_GELU};
  static const cublasLtEpilogue_t biased[3] = {CUBLASLT_EPILOGUE_BIAS, CUBLASLT_EPILOGUE_RELU_BIAS, CUBLASLT_EPILOGUE_GELU_BIAS};
  static const char* const act_names[3] = {"", "relu", "gelu_tanh"};
  const int batch = std::max(1, g.batch);
  if (e.bias_mode != 0 && !e.bias_strided) {
    why = "the entries' biases are not uniformly strided";
    return false;
  }
  out.res_as_c = e.residual;
  auto with_res = [&](const std::string& f) { return e.residual ? (f.empty() ? "C=residual" : "C=residual, " + f) : f; };
  switch (e.bias_mode) {
    case 0:
      out.ep = plain[act];
      out.form = with_res(act_names[act]);
      return true;
    case 1:
      if (e.beta != 1.0f) {
        why = "a row bias scaled by beta != 1";
        return false;
      }
      // cuBLASLt documents no bias alignment; 16 bytes is what its vectorized epilogues are known to need
      if (alignment(e.bias, e.sbias * 4, batch) < 16) {
        why = "the bias is not 16-byte aligned";
        return false;
      }
      out.ep = biased[act];
      out.bias_vector = true;
      out.form = with_res(act ? std::string("bias+") + act_names[act] : "bias");
      return true;
    case 3:
      out.ep = plain[act];
      out.bias_as_c = true;
      out.form = act ? std::string("C=bias+") + act_names[act] : "C=bias";
      return true;
    default: why = "a col bias (one value per column of cuBLAS's result) has no cuBLASLt epilogue"; return false;
  }
}

} // namespace

std::unique_ptr<cuda_lt_plan> cuda_lt_plan_make(const cuda_gemm_ctx& x, const gemm_call& g, cublasComputeType_t compute, bool fuse,
                                                int max_algos, std::string& why) {
  if (g.mode != gemm_mode::strided && g.mode != gemm_mode::gemv_strided) {
    why = "only strided calls run on cuBLASLt";
    return nullptr;
  }
  lt_epilogue ep;
  std::string no_fuse;
  const bool true_fp32 = g.ab == CUDA_R_32F && compute == CUBLAS_COMPUTE_32F;
  const bool fused = fuse && g.epi.needed && lt_epilogue_of(g, true_fp32, ep, no_fuse);
  if (!fused) ep = lt_epilogue{};
  auto p = std::make_unique<cuda_lt_plan>();
  p->fused = fused;
  p->form = fused ? ep.form : g.epi.needed ? "epilogue kernel" + (no_fuse.empty() ? std::string() : " (" + no_fuse + ")") : "plain";
  const int batch = std::max(1, g.batch);
  const long long es = static_cast<long long>(g.ab_size);

  CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, compute, CUDA_R_32F));
  set_desc(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, g.ta);
  set_desc(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, g.tb);
  set_desc(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, ep.ep);
  if (ep.bias_vector) {
    const void* bias = reinterpret_cast<const void*>(g.epi.bias);
    set_desc(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias); // f32: the default bias type of an f32 D
    if (batch > 1) set_desc(p->desc, CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE, static_cast<int64_t>(g.epi.sbias));
  }
  // column-major, stored: A' [m x k] (N) or [k x m] (T), B' [k x n] or [n x k], D [m x n]
  const bool na = g.ta == CUBLAS_OP_N, nb = g.tb == CUBLAS_OP_N;
  make_layout(p->a, g.ab, na ? g.m : g.k, na ? g.k : g.m, g.lda, batch, g.sa);
  make_layout(p->b, g.ab, nb ? g.k : g.n, nb ? g.n : g.k, g.ldb, batch, g.sb);
  make_layout(p->d, CUDA_R_32F, g.m, g.n, g.ldc, batch, g.sc);
  if (ep.bias_as_c) {
    make_layout(p->c, CUDA_R_32F, g.m, g.n, g.epi.ld_bias, batch, g.epi.sbias);
    p->c_ptr = reinterpret_cast<const void*>(g.epi.bias);
    p->beta = g.epi.beta;
  } else if (ep.res_as_c) {
    make_layout(p->c, CUDA_R_32F, g.m, g.n, g.ldc, batch, g.epi.sres);
    p->c_ptr = reinterpret_cast<const void*>(g.epi.res);
    p->beta = 1;
  }

  preference pref;
  const uint64_t ws = x.workspace_bytes;
  set_pref(pref.p, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, ws);
  const uint32_t al_a = alignment(g.a, g.sa * es, batch), al_b = alignment(g.b, g.sb * es, batch), al_d = alignment(g.c, g.sc * 4, batch);
  const uint32_t al_c = ep.bias_as_c  ? alignment(g.epi.bias, g.epi.sbias * 4, batch)
                        : ep.res_as_c ? alignment(g.epi.res, g.epi.sres * 4, batch)
                                      : al_d;
  set_pref(pref.p, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, al_a);
  set_pref(pref.p, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, al_b);
  set_pref(pref.p, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, al_c);
  set_pref(pref.p, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, al_d);
  std::vector<cublasLtMatmulHeuristicResult_t> found(static_cast<size_t>(std::max(1, max_algos)));
  int n = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(x.lt, p->desc, p->a, p->b, p->c ? p->c : p->d, p->d, pref.p,
                                                           static_cast<int>(found.size()), found.data(), &n);
  if (st == CUBLAS_STATUS_SUCCESS)
    for (int i = 0; i < n; i++)
      if (found[static_cast<size_t>(i)].state == CUBLAS_STATUS_SUCCESS && found[static_cast<size_t>(i)].workspaceSize <= ws)
        p->algos.push_back(found[static_cast<size_t>(i)]);
  if (!p->algos.empty()) return p;
  const std::string none =
      st == CUBLAS_STATUS_SUCCESS ? "no algorithm" : std::string("cublasLtMatmulAlgoGetHeuristic: ") + cublas_status_text(st);
  if (fused) {
    // the epilogue may be what no algorithm takes: the plain product still may run here
    std::string plain_why;
    auto q = cuda_lt_plan_make(x, g, compute, false, max_algos, plain_why);
    if (q) q->form = "epilogue kernel (fused " + ep.form + ": " + none + ")";
    else why = "fused " + ep.form + ": " + none + "; plain: " + plain_why;
    return q;
  }
  why = none;
  return nullptr;
}

void cuda_lt_enqueue(const cuda_gemm_ctx& x, const gemm_call& g) {
  if (!g.lt || g.lt->algos.empty()) throw loom_error("a cuBLASLt call without its plan");
  const cuda_lt_plan& p = *g.lt;
  const void* c = p.c ? p.c_ptr : reinterpret_cast<const void*>(g.c);
  CUBLAS_CHECK(cublasLtMatmul(x.lt, p.desc, &g.alpha, reinterpret_cast<const void*>(g.a), p.a, reinterpret_cast<const void*>(g.b), p.b,
                              &p.beta, c, p.c ? p.c : p.d, reinterpret_cast<void*>(g.c), p.d, &p.algos[static_cast<size_t>(p.chosen)].algo,
                              x.workspace, x.workspace_bytes, x.stream));
}

} // namespace loom
