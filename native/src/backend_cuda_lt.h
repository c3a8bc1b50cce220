// cuBLASLt for the CUDA backend: the handles and workspace a stream's GEMMs go through (cuda_gemm_ctx, one per
// stream that runs GEMMs), and a strided-batched gemm call as one cublasLtMatmul with the launch's bias and
// activation in its epilogue where cuBLASLt expresses them exactly (cuda_lt_plan, built once at load by
// backend_cuda_lt.cc; the choice between it, cuBLAS and the skinny-GEMM kernel is measured:
// backend_cuda_gemm_paths.cc). The functions on a plan take a gemm_call: backend_cuda_ctx.h.
// Not part of the backend interface: only backend_cuda*.cc include it.
#pragma once

#include <cublasLt.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "backend_cuda.h"

namespace loom {

constexpr size_t kCudaGemmWorkspaceBytes = size_t(32) << 20; // per cuda_gemm_ctx, shared by cuBLAS and cuBLASLt

// What one stream's GEMMs go through: its cuBLAS and cuBLASLt handles and their workspace (one buffer: the two
// libraries run in stream order on it, never at once). Everything a captured tick needs is allocated up front,
// so GEMMs enqueued during a capture allocate nothing. Make one per stream that runs GEMMs, each with a
// workspace of kCudaGemmWorkspaceBytes: the cuBLASLt algorithms are chosen at load for that workspace size.
struct cuda_gemm_ctx {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  cublasLtHandle_t lt = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

// The handles, bound to `stream` (host pointer mode, default math: true fp32 unless a call asks for TF32).
void cuda_gemm_ctx_create(cuda_gemm_ctx& x, cudaStream_t stream);
// Its workspace, once (device memory: call after the plan's memory check).
void cuda_gemm_ctx_allocate(cuda_gemm_ctx& x, size_t bytes);
// Frees what exists; never throws.
void cuda_gemm_ctx_destroy(cuda_gemm_ctx& x);

// The launch's epilogue as a GEMM call may apply it itself (gemm launches: one problem), in the plan's
// row-major terms: C = act(alpha · op(A) · op(B) + beta · bias).
struct cuda_gemm_epi {
  bool needed = false;      // the launch has bias, a residual or an activation (and k > 0: a call exists)
  bool residual = false;    // entries add a residual (the epilogue kernel, the skinny / tiled kernels' store, or cuBLASLt's C)
  int bias_mode = 0;        // bias_mode as int: 0 none, 1 row (bias[j]), 2 col (bias[i]), 3 full (bias[i·ld_bias + j])
  CUdeviceptr bias = 0;     // strided calls: entry 0's bias
  long long sbias = 0;      // strided calls: element stride between entries' biases (0: shared)
  bool bias_strided = true; // strided calls: entry i's bias is bias + i·sbias (false: only the pointer arrays reach them)
  long long ld_bias = 0;
  CUdeviceptr res = 0;     // strided calls: entry 0's residual (C's layout)
  long long sres = 0;      // strided calls: element stride between entries' residuals
  bool res_strided = true; // strided calls: entry i's residual is res + i·sres (false: only the pointer arrays reach them)
  int act = 0;             // activation_kind as int
  float beta = 1, p0 = 0, p1 = 0;
};

// One strided-batched call as a cublasLtMatmul: descriptors built once, the heuristic's candidate algorithms,
// the one chosen. C is D (beta 0) unless a `full` bias rides in as C (beta = the plan's beta) or a residual does
// (beta 1).
struct cuda_lt_plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr, d = nullptr; // c null: C is D, with D's layout
  const void* c_ptr = nullptr;
  float beta = 0;
  bool fused = false; // the matmul applies the launch's whole epilogue (bias and activation)
  std::string form;   // what the epilogue does, for notes: "bias+relu", "C=bias, gelu_tanh", "none", ...
  std::vector<cublasLtMatmulHeuristicResult_t> algos;
  int chosen = 0;
  cuda_lt_plan() = default;
  cuda_lt_plan(const cuda_lt_plan&) = delete;
  cuda_lt_plan& operator=(const cuda_lt_plan&) = delete;
  ~cuda_lt_plan();
};

} // namespace loom
