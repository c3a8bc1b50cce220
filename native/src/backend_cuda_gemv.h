// The skinny-GEMM kernel of the CUDA backend (backend_cuda_gemv.cu): for GEMMs with at most 16 rows per
// entry (batch-1..16 inference), cuBLAS leaves most of the memory bandwidth unused and, for few entries, most
// SMs idle; this kernel spreads entries x output columns over many CTAs so each reads its part of the
// weights once. Used per gemm call only where it measured faster at load (cuda_choose_gemv; with its store
// applying the launch's epilogue: cuda_choose_gemm_paths).
// Shared by nvcc and the host compiler: plain C layout only.
#pragma once

#include <cuda_runtime.h>

namespace loom {

constexpr int kGemvMaxRows = 16;
constexpr int kTileMaxRows = 4096; // the tiled kernel (tiled = 1): past this, cuBLAS's tiles are the better GEMM
constexpr int kMaxSplits = 32;     // the tiled kernel's split-K: at most this many CTAs per block of C

// Per entry, row-major (the plan's view, not cuBLAS's swapped one):
//   C[rows x cols] (f32, ldc) = alpha · X[rows x k] (ldx) · op(W)
// op(W) = Wᵀ with W stored [cols x k] (ldw) when trans_w, else W stored [k x cols] (ldw).
// X is the plan's A (trans_a false), W the plan's B; C is overwritten.
// With `swap` the kernel runs the plan's problem transposed (Cᵀ = op(B)ᵀ · Aᵀ), for GEMMs with many rows and few
// columns (a conv over a few output positions: C[cout x positions] = W · im2col): its rows are the plan's columns,
// X is the plan's B read down its columns (X[r, k] at x[k·ldx + r]), W the plan's A (trans_w: A untransposed),
// and C[r, j] is stored at c[j·ldc + r]. Bias modes, ld_bias and the residual keep the plan's orientation. With
// pointer arrays the first two arrays trade roles (W is the second). The 16-byte form and the tiled kernel do
// not swap. With `epilogue` the store applies the
// launch's epilogue itself, once per element after the whole k sum (C = act(alpha · X · op(W) + beta · bias),
// the same math as the epilogue kernel: backend_cuda_activation.cuh), so no epilogue launch follows; without
// it the separate epilogue launch adds bias and activation. With `residual` too the store adds each entry's
// residual (f32, C's layout and leading dim ldc) after the bias, as the epilogue kernel does.
struct cuda_gemv_args {
  unsigned long long w = 0, x = 0, c = 0; // strided: entry 0's operands
  long long sw = 0, sx = 0, sc = 0;       // strided: element strides between entries
  unsigned long long arr = 0;             // when non-zero, pointer arrays instead: W, X, C, bias, residual [total] each
  int total = 0;                          // pointers per array
  int batch = 0;                          // entries
  int rows = 0, cols = 0, k = 0;
  int ldw = 0, ldx = 0, ldc = 0;
  int trans_w = 0;
  int dtype = 0; // W and X storage: 0 f32, 1 bf16, 2 f16 (accumulation is always f32)
  int tiled = 0; // 1: the tiled kernel (any rows up to kTileMaxRows, f32 only) instead of the skinny ones
  int vec = 1;   // trans_w and <= 4 rows: the 16-byte-load form (per entry, where its W and X rows are 16-byte aligned)
  int swap = 0;  // the transposed problem (above)
  // launched programmatically (backend_cuda_pdl.cuh): before the grid dependency wait, each warp prefetches into
  // L2 the W lines of its first `prefetch` load steps (0: none), so the weight stream starts under the previous
  // kernel's tail. Safe for any W: L2 is the device's point of coherence, nothing of W reaches registers before
  // the wait.
  int prefetch = 0;
  float alpha = 1;
  // split-K (tiled only; backend_cuda_gemv.cu): each block of C as `splits` CTAs over ranges of k, their partial
  // sums in ws (f32, cuda_tiled_split_bytes), counted in sem (one int per block of C, zero between launches:
  // the last CTA of a block sets it back). Each launch in flight needs its own ws and sem.
  int splits = 1;
  unsigned long long ws = 0, sem = 0;
  // the fused epilogue (read only when epilogue = 1)
  int epilogue = 0;
  int bias_mode = 0;           // 0 none, 1 row (bias[j]), 2 col (bias[r]), 3 full (bias[r·ld_bias + j])
  unsigned long long bias = 0; // strided: entry 0's bias (f32); with `arr` the fourth array holds each entry's
  long long sbias = 0;         // strided: element stride between entries' biases (0: one shared bias)
  long long ld_bias = 0;
  int act = 0; // loom::activation_kind as int
  float beta = 1, p0 = 0, p1 = 0;
  int residual = 0;           // 1: add each entry's residual (strided: res + i·sres; with `arr` the fifth array)
  unsigned long long res = 0; // strided: entry 0's residual
  long long sres = 0;         // strided: element stride between entries' residuals
};

// Whether the kernel takes these sizes (rows 1..16, or 1..kTileMaxRows and f32 when tiled; cols/k >= 1, dense
// leading dims, grid within limits; no swap when tiled; splits > 1 only tiled, up to kMaxSplits and the k steps,
// with ws and sem) and, with `epilogue`, can reach every entry's bias and residual.
bool cuda_gemv_fits(const cuda_gemv_args& a);

// The tiled kernel's blocks of C (entries x row tiles x column tiles: one int of sem each), its k steps (a
// split's range is a whole number of them, so splits <= k steps), and the workspace a.splits needs (0 unsplit).
long long cuda_tiled_blocks(const cuda_gemv_args& a);
int cuda_tiled_k_steps(const cuda_gemv_args& a);
size_t cuda_tiled_split_bytes(const cuda_gemv_args& a);

// Enqueues the kernel on `stream` (with programmatic stream serialization when `pdl`: backend_cuda_pdl.cuh);
// returns the launch status (cudaErrorInvalidValue when !cuda_gemv_fits).
cudaError_t cuda_launch_gemv(const cuda_gemv_args& a, cudaStream_t stream, bool pdl = false);

} // namespace loom
