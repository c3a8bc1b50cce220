// The skinny-GEMM kernels (see backend_cuda_gemv.h). One CTA = one entry x a few output columns, so even a
// handful of entries fills the GPU. X (<= 16 rows) is staged in shared memory a k-tile at a time and reused
// across the CTA's columns; every W element is read exactly once, coalesced:
//  - trans_w (W rows [cols x k], contiguous in k): a warp per kNtCols columns, lanes stride over k, the
//    partial sums reduced with shuffles;
//  - !trans_w (W [k x cols]): a lane per column, the CTA's warps split k, partial sums reduced in shared.
// Rows beyond `rows` read zeros from the staged X and are never written. Each C element is stored exactly
// once, by one thread, after its full k sum (the shuffle / shared-memory reduction): that store applies the
// fused epilogue when asked (`finish`). With `swap` (the transposed problem: backend_cuda_gemv.h) only the
// addressing of X, C and the epilogue changes (x_at, c_at, finish).
#include "backend_cuda_gemv.h"

#include <climits>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "backend_cuda_activation.cuh"
#include "backend_cuda_pdl.cuh"

namespace loom {

namespace {

constexpr int kKTile = 256;              // X columns staged per step
constexpr int kNtWarps = 4, kNtCols = 4; // trans_w: warps per CTA, columns per warp
constexpr int kNtBlockCols = kNtWarps * kNtCols;
constexpr int kNnWarps = 8; // !trans_w: warps splitting k; 32 columns per CTA
constexpr int kNnBlockCols = 32;

__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }

template <typename T>
struct entry_ptrs {
  const T* w;
  const T* x;
  float* c;
  const float* bias; // null: none (or no fused epilogue)
  const float* res;  // null: none (or no fused epilogue); C's layout
};

template <typename T>
__device__ __forceinline__ entry_ptrs<T> entry_of(const cuda_gemv_args& a, int e) {
  const bool has_bias = a.epilogue && a.bias_mode != 0, has_res = a.epilogue && a.residual;
  if (a.arr) {
    const unsigned long long* p = reinterpret_cast<const unsigned long long*>(a.arr);
    const long long n = a.total, w = a.swap ? n + e : e, x = a.swap ? e : n + e;
    return {reinterpret_cast<const T*>(p[w]), reinterpret_cast<const T*>(p[x]), reinterpret_cast<float*>(p[2 * n + e]),
            has_bias ? reinterpret_cast<const float*>(p[3 * n + e]) : nullptr,
            has_res ? reinterpret_cast<const float*>(p[4 * n + e]) : nullptr};
  }
  const long long i = e;
  return {reinterpret_cast<const T*>(a.w) + i * a.sw, reinterpret_cast<const T*>(a.x) + i * a.sx, reinterpret_cast<float*>(a.c) + i * a.sc,
          has_bias ? reinterpret_cast<const float*>(a.bias) + i * a.sbias : nullptr,
          has_res ? reinterpret_cast<const float*>(a.res) + i * a.sres : nullptr};
}

// Where X[r, k] and C[r, j] of an entry lie (swap: the plan's B down its columns, Cᵀ).
__device__ __forceinline__ long long x_at(const cuda_gemv_args& a, int r, int k) {
  return a.swap ? static_cast<long long>(k) * a.ldx + r : static_cast<long long>(r) * a.ldx + k;
}
__device__ __forceinline__ long long c_at(const cuda_gemv_args& a, int r, int j) {
  return a.swap ? static_cast<long long>(j) * a.ldc + r : static_cast<long long>(r) * a.ldc + j;
}

// The value stored at row r, column j of an entry: v = alpha · its full k sum (rounded on its own, __fmul_rn,
// never merged into an FMA with the bias term: so the fused store gives the bits the epilogue kernel gives
// after an unfused store), plus the fused epilogue (its residual at C's position), in the plan's orientation.
template <typename T>
__device__ __forceinline__ float finish(const cuda_gemv_args& a, const entry_ptrs<T>& p, int r, int j, float v) {
  if (!a.epilogue) return v;
  const int pr = a.swap ? j : r, pj = a.swap ? r : j; // the plan's row and column
  const float* res = p.res ? p.res + c_at(a, r, j) : nullptr;
  return cuda_epilogue_value(v, p.bias, a.bias_mode, a.ld_bias, pr, pj, a.beta, a.act, a.p0, a.p1, res);
}

// trans_w: the W rows of a warp's kNtCols columns from j0; a column past the end reads a valid row (the last)
// and is never written.
template <typename T>
__device__ __forceinline__ void w_rows(const cuda_gemv_args& a, const entry_ptrs<T>& p, int j0, const T* (&wrow)[kNtCols]) {
#pragma unroll
  for (int q = 0; q < kNtCols; q++) wrow[q] = p.w + static_cast<long long>(min(j0 + q, a.cols - 1)) * a.ldw;
}

// With a.prefetch (a programmatic launch, before its grid dependency wait): the L2 lines of a warp's first
// a.prefetch loads of each of its W rows, `step` elements apart from lane offset `k`, below `kend`. A hint:
// nothing lands in registers, and only addresses the loads after the wait read are touched.
template <typename T>
__device__ __forceinline__ void prefetch_w(const cuda_gemv_args& a, const T* const (&wrow)[kNtCols], int k, int step, int kend) {
  constexpr int kMaxSteps = 8; // LOOM_CUDA_PDL_PREFETCH's largest
#pragma unroll
  for (int t = 0; t < kMaxSteps; t++, k += step) {
    if (t >= a.prefetch || k >= kend) break;
#pragma unroll
    for (int q = 0; q < kNtCols; q++) asm volatile("prefetch.global.L2 [%0];" ::"l"(wrow[q] + k));
  }
}

// Each lane's partial sums reduced across the warp; every lane ends with every sum.
template <int M>
__device__ __forceinline__ void warp_sum(float (&acc)[M][kNtCols]) {
#pragma unroll
  for (int r = 0; r < M; r++)
#pragma unroll
    for (int q = 0; q < kNtCols; q++)
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) acc[r][q] += __shfl_xor_sync(0xffffffffu, acc[r][q], off);
}

// The staged X tile's row length: padded so that a warp's writes in swap order (lanes along r, then k) hit 32
// different banks; reads along k are conflict-free either way.
template <int M>
constexpr int kXsLen = kKTile + 32 / M;

// xs[r][kk] = X[r, k0 + kk] for r < rows and kk < kn, else 0, lanes along whichever of k and r is contiguous in
// X. Called by the whole CTA (Threads threads) between barriers; loads are issued up to kBatch at a time before
// their stores, so a tile costs a memory latency or two, not one per element a thread stages.
template <typename T, int M, int Threads>
__device__ __forceinline__ void stage_x(float (*xs)[kXsLen<M>], const cuda_gemv_args& a, const T* x, int k0, int kn) {
  constexpr int kPer = M * kKTile / Threads, kBatch = kPer < 16 ? kPer : 16;
#pragma unroll
  for (int t0 = 0; t0 < kPer; t0 += kBatch) {
    float v[kBatch];
#pragma unroll
    for (int t = 0; t < kBatch; t++) {
      const int i = static_cast<int>(threadIdx.x) + (t0 + t) * Threads;
      const int r = a.swap ? i % M : i / kKTile, kk = a.swap ? i / M : i % kKTile;
      v[t] = (r < a.rows && kk < kn) ? to_f32(x[x_at(a, r, k0 + kk)]) : 0.0f;
    }
#pragma unroll
    for (int t = 0; t < kBatch; t++) {
      const int i = static_cast<int>(threadIdx.x) + (t0 + t) * Threads;
      const int r = a.swap ? i % M : i / kKTile, kk = a.swap ? i / M : i % kKTile;
      xs[r][kk] = v[t];
    }
  }
}

template <typename T, int M>
__global__ void __launch_bounds__(kNtWarps * 32) loom_gemv_nt(cuda_gemv_args a, int col_blocks) {
  __shared__ float xs[M][kXsLen<M>];
  const int e = blockIdx.x / col_blocks;
  const int lane = threadIdx.x & 31;
  const int j0 = (blockIdx.x % col_blocks) * kNtBlockCols + (threadIdx.x >> 5) * kNtCols;
  const bool busy = j0 < a.cols;             // warp-uniform
  const entry_ptrs<T> p = entry_of<T>(a, e); // the launch's tables: uploaded before the tick, never by a kernel
  const T* wrow[kNtCols];
  w_rows<T>(a, p, j0, wrow);
  if (busy) prefetch_w<T>(a, wrow, lane, 32, a.k);
  cuda_pdl_enter();
  float acc[M][kNtCols] = {};

  for (int k0 = 0; k0 < a.k; k0 += kKTile) {
    const int kn = min(kKTile, a.k - k0);
    __syncthreads(); // the previous tile is consumed
    stage_x<T, M, kNtWarps * 32>(xs, a, p.x, k0, kn);
    __syncthreads();
    if (!busy) continue;
#pragma unroll
    for (int t = 0; t < kKTile / 32; t++) {
      const int kk = t * 32 + lane;
      if (kk < kn) {
        float wv[kNtCols];
#pragma unroll
        for (int q = 0; q < kNtCols; q++) wv[q] = to_f32(wrow[q][k0 + kk]);
#pragma unroll
        for (int r = 0; r < M; r++) {
          const float xv = xs[r][kk];
#pragma unroll
          for (int q = 0; q < kNtCols; q++) acc[r][q] = fmaf(wv[q], xv, acc[r][q]);
        }
      }
    }
  }
  if (!busy) return; // no barrier follows
  warp_sum<M>(acc);
  if (lane != 0) return;
#pragma unroll
  for (int r = 0; r < M; r++) {
    if (r >= a.rows) break;
#pragma unroll
    for (int q = 0; q < kNtCols; q++)
      if (j0 + q < a.cols) p.c[c_at(a, r, j0 + q)] = finish(a, p, r, j0 + q, __fmul_rn(a.alpha, acc[r][q]));
  }
}

// 16 bytes of W or X as floats: 4 f32 or 8 bf16 / f16 values.
template <typename T>
struct vec16 {
  static constexpr int n = 16 / static_cast<int>(sizeof(T));
  __device__ __forceinline__ static void unpack(const uint4& v, float (&out)[n]) {
    const T* e = reinterpret_cast<const T*>(&v);
#pragma unroll
    for (int i = 0; i < n; i++) out[i] = to_f32(e[i]);
  }
};

// trans_w with 16-byte loads: each lane reads 16 bytes of each of its warp's kNtCols W rows per step and the
// matching 16 bytes of X's rows straight from global memory (every CTA of an entry reads the same X: cache
// hits), so a warp covers 32 x 16 bytes of k per step with no shared-memory staging and no barrier. For up to
// kVecMaxRows rows (past that, reloading X per warp costs more than loom_gemv_nt's staging saves). An entry whose
// W or X rows are not 16-byte aligned (odd k, an offset view) runs the scalar loop instead: the test is per
// entry, uniform across the CTA. Sums in the same order as nothing else: results match the scalar kernels
// to rounding, not bit for bit.
constexpr int kVecMaxRows = 4;

template <typename T, int M>
__global__ void __launch_bounds__(kNtWarps * 32) loom_gemv_nt_vec(cuda_gemv_args a, int col_blocks) {
  constexpr int V = vec16<T>::n;
  const int e = blockIdx.x / col_blocks;
  const int lane = threadIdx.x & 31;
  const int j0 = (blockIdx.x % col_blocks) * kNtBlockCols + (threadIdx.x >> 5) * kNtCols;
  if (j0 >= a.cols) { // warp-uniform; no barrier in this kernel
    cuda_pdl_enter();
    return;
  }
  const entry_ptrs<T> p = entry_of<T>(a, e); // the launch's tables: uploaded before the tick, never by a kernel
  const T* wrow[kNtCols];
  w_rows<T>(a, p, j0, wrow);
  const bool aligned = ((reinterpret_cast<unsigned long long>(p.w) | reinterpret_cast<unsigned long long>(p.x)) & 15) == 0 &&
                       a.ldw % V == 0 && a.ldx % V == 0;
  const int kv = aligned ? a.k - a.k % V : 0; // k elements read 16 bytes at a time
  prefetch_w<T>(a, wrow, aligned ? lane * V : lane, aligned ? 32 * V : 32, a.k);
  cuda_pdl_enter();
  float acc[M][kNtCols] = {};
  for (int kb = lane * V; kb < kv; kb += 32 * V) {
    float w[kNtCols][V];
#pragma unroll
    for (int q = 0; q < kNtCols; q++) vec16<T>::unpack(__ldg(reinterpret_cast<const uint4*>(wrow[q] + kb)), w[q]);
#pragma unroll
    for (int r = 0; r < M; r++) {
      if (r >= a.rows) break;
      float x[V];
      vec16<T>::unpack(__ldg(reinterpret_cast<const uint4*>(p.x + static_cast<long long>(r) * a.ldx + kb)), x);
#pragma unroll
      for (int q = 0; q < kNtCols; q++)
#pragma unroll
        for (int i = 0; i < V; i++) acc[r][q] = fmaf(w[q][i], x[i], acc[r][q]);
    }
  }
  for (int kk = kv + lane; kk < a.k; kk += 32) {
#pragma unroll
    for (int r = 0; r < M; r++) {
      if (r >= a.rows) break;
      const float xv = to_f32(p.x[static_cast<long long>(r) * a.ldx + kk]);
#pragma unroll
      for (int q = 0; q < kNtCols; q++) acc[r][q] = fmaf(to_f32(wrow[q][kk]), xv, acc[r][q]);
    }
  }
  warp_sum<M>(acc);
  // every lane holds every sum: lane r·kNtCols + q stores row r, column j0 + q
#pragma unroll
  for (int r = 0; r < M; r++)
#pragma unroll
    for (int q = 0; q < kNtCols; q++)
      if (lane == r * kNtCols + q && r < a.rows && j0 + q < a.cols)
        p.c[static_cast<long long>(r) * a.ldc + j0 + q] = finish(a, p, r, j0 + q, __fmul_rn(a.alpha, acc[r][q]));
}

// The split-k kernel, for trans_w calls with few CTAs' worth of work in the other kernels' shapes: swap (a conv's
// GEMM over a few positions: W = its weights, rows contiguous in k; X = the im2col columns, the positions of one
// k side by side: few entries, few rows and a long k), or the plain form with few entries (a masked tick's live
// tenants, a lightly loaded fleet). A CTA per entry x kNtBlockCols columns would leave most SMs idle and each
// warp walking k alone; here kSwSplit warps share a column group's k (interleaved 32-wide blocks), their partial
// sums reduced in shared memory before the one store. Lanes run along k, so each W row is read 128 bytes (f32)
// per load; a lane reads its k's X values (x_k: swap, adjacent, 16 bytes at a time where the entry's X is
// 16-byte aligned with a leading dim of whole 16 bytes; plain, one per row, adjacent across lanes). kUnroll
// steps of loads are issued before their FMAs. No staging, one barrier.
constexpr int kSwGroups = 2, kSwSplit = 4; // warps per CTA: column groups x k parts
constexpr int kSwBlockCols = kSwGroups * kNtCols;
// the plain form takes the split-k kernel below this many loom_gemv_nt(_vec) CTAs (a few per SM)
constexpr long long kSplitBelowCtas = 512;

// X[r, k] for r < M of one k (zero from `rows` on); swap: 16 bytes at a time where `vec`, else one value at a time.
template <typename T, int M>
__device__ __forceinline__ void x_k(const cuda_gemv_args& a, const T* x, int k, bool vec, float (&out)[M]) {
  if (!a.swap) {
#pragma unroll
    for (int r = 0; r < M; r++) out[r] = r < a.rows ? to_f32(__ldg(x + static_cast<long long>(r) * a.ldx + k)) : 0.0f;
    return;
  }
  constexpr int V = vec16<T>::n;
  const T* col = x + static_cast<long long>(k) * a.ldx;
#pragma unroll
  for (int r0 = 0; r0 < M; r0 += V) {
    if (vec && r0 + V <= a.rows) {
      float t[V];
      vec16<T>::unpack(__ldg(reinterpret_cast<const uint4*>(col + r0)), t);
#pragma unroll
      for (int i = 0; i < V && r0 + i < M; i++) out[r0 + i] = t[i];
    } else {
#pragma unroll
      for (int i = 0; i < V && r0 + i < M; i++) out[r0 + i] = r0 + i < a.rows ? to_f32(__ldg(col + r0 + i)) : 0.0f;
    }
  }
}

template <typename T, int M>
__global__ void __launch_bounds__(kSwGroups* kSwSplit * 32, M > 4 ? 1 : 2) loom_gemv_split(cuda_gemv_args a, int col_blocks) {
  __shared__ float part[kSwSplit][kSwGroups][M * kNtCols];
  const int e = blockIdx.x / col_blocks;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = warp % kSwGroups, s = warp / kSwGroups;
  const int j0 = (blockIdx.x % col_blocks) * kSwBlockCols + g * kNtCols;
  const bool busy = j0 < a.cols;             // warp-uniform
  const entry_ptrs<T> p = entry_of<T>(a, e); // the launch's tables: uploaded before the tick, never by a kernel
  const T* wrow[kNtCols];
  w_rows<T>(a, p, j0, wrow);
  if (busy) prefetch_w<T>(a, wrow, s * 32 + lane, 32 * kSwSplit, a.k);
  cuda_pdl_enter();
  const bool vec = (reinterpret_cast<unsigned long long>(p.x) & 15) == 0 && a.ldx % vec16<T>::n == 0;
  float acc[M][kNtCols] = {};
  constexpr int kStep = 32 * kSwSplit, kUnroll = M > 4 ? 2 : 4;
  int kk = s * 32 + lane;
  for (; busy && kk + (kUnroll - 1) * kStep < a.k; kk += kUnroll * kStep) {
    float w[kUnroll][kNtCols], x[kUnroll][M];
#pragma unroll
    for (int u = 0; u < kUnroll; u++) {
#pragma unroll
      for (int q = 0; q < kNtCols; q++) w[u][q] = to_f32(__ldg(wrow[q] + kk + u * kStep));
      x_k<T, M>(a, p.x, kk + u * kStep, vec, x[u]);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; u++)
#pragma unroll
      for (int r = 0; r < M; r++)
#pragma unroll
        for (int q = 0; q < kNtCols; q++) acc[r][q] = fmaf(w[u][q], x[u][r], acc[r][q]);
  }
  for (; busy && kk < a.k; kk += kStep) {
    float x[M];
    x_k<T, M>(a, p.x, kk, vec, x);
#pragma unroll
    for (int q = 0; q < kNtCols; q++) {
      const float wv = to_f32(__ldg(wrow[q] + kk));
#pragma unroll
      for (int r = 0; r < M; r++) acc[r][q] = fmaf(wv, x[r], acc[r][q]);
    }
  }
  warp_sum<M>(acc);
  // every lane holds every sum: lane i < M·kNtCols hands row i / kNtCols, column j0 + i % kNtCols to the k part 0
  // warp (rows past 8 through a second round of lanes)
#pragma unroll
  for (int r = 0; r < M; r++)
#pragma unroll
    for (int q = 0; q < kNtCols; q++)
      if (lane == (r * kNtCols + q) % 32) part[s][g][r * kNtCols + q] = acc[r][q];
  __syncthreads();
  if (s != 0 || !busy) return;
  for (int i = lane; i < M * kNtCols; i += 32) {
    const int r = i / kNtCols, q = i % kNtCols;
    if (r >= a.rows || j0 + q >= a.cols) continue;
    float v = 0.0f;
#pragma unroll
    for (int t = 0; t < kSwSplit; t++) v += part[t][g][i];
    p.c[c_at(a, r, j0 + q)] = finish(a, p, r, j0 + q, __fmul_rn(a.alpha, v));
  }
}

template <typename T, int M>
__global__ void __launch_bounds__(kNnWarps * 32) loom_gemv_nn(cuda_gemv_args a, int col_blocks) {
  cuda_pdl_enter();
  __shared__ float xs[M][kXsLen<M>];
  __shared__ float part[kNnWarps][M][32];
  const int e = blockIdx.x / col_blocks;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int jb = (blockIdx.x % col_blocks) * kNnBlockCols;
  const bool col_ok = jb + lane < a.cols;
  const entry_ptrs<T> p = entry_of<T>(a, e);
  const T* wcol = p.w + (col_ok ? jb + lane : 0);
  float acc[M];
#pragma unroll
  for (int r = 0; r < M; r++) acc[r] = 0.0f;

  for (int k0 = 0; k0 < a.k; k0 += kKTile) {
    const int kn = min(kKTile, a.k - k0);
    __syncthreads();
    stage_x<T, M, kNnWarps * 32>(xs, a, p.x, k0, kn);
    __syncthreads();
    if (!col_ok) continue;
#pragma unroll 4
    for (int kk = warp; kk < kn; kk += kNnWarps) {
      const float wv = to_f32(wcol[static_cast<long long>(k0 + kk) * a.ldw]);
#pragma unroll
      for (int r = 0; r < M; r++) acc[r] = fmaf(wv, xs[r][kk], acc[r]);
    }
  }
#pragma unroll
  for (int r = 0; r < M; r++) part[warp][r][lane] = acc[r];
  __syncthreads();
  for (int i = threadIdx.x; i < M * 32; i += blockDim.x) {
    const int r = i / 32, l = i % 32;
    if (r >= a.rows || jb + l >= a.cols) continue;
    float s = 0.0f;
#pragma unroll
    for (int w = 0; w < kNnWarps; w++) s += part[w][r][l];
    p.c[c_at(a, r, jb + l)] = finish(a, p, r, jb + l, __fmul_rn(a.alpha, s));
  }
}

// The tiled kernel (a.tiled): any rows, f32 only. One CTA = one entry x a kTile x kTile block of C; X and W
// tiles of kTile x kTile staged in shared memory per k step; each thread keeps one row x kTileCols columns.
// Its store applies the epilogue like the skinny kernels' (`finish`): for GEMMs whose epilogue no cuBLAS path
// fuses (a conv's per-channel `col` bias) it saves the epilogue launch.
//
// Split-K (a.splits > 1): a block of C is `splits` CTAs, each over its own range of k steps. A GEMM with few
// blocks of C and a long k (a conv late in a small-image network: 128 x 64 outputs per image, k = 1152) has
// fewer CTAs than the GPU has SMs, each walking all of k alone; split, the same work runs on splits times as
// many SMs. Each CTA writes its partial block to a.ws and counts itself in a.sem (one int per block, zero
// between launches); the last of a block's CTAs to finish adds the partials in split order (so the sum does
// not depend on which CTA came last), applies the epilogue, stores C, and sets the count back to zero.
constexpr int kTile = 32, kTileCols = 4, kTileThreads = kTile * kTile / kTileCols; // 256 threads

template <bool TransW>
__global__ void __launch_bounds__(kTileThreads) loom_gemm_tile(cuda_gemv_args a, int row_tiles, int col_tiles) {
  cuda_pdl_enter();
  __shared__ float xs[kTile][kTile + 1]; // xs[kk][r]
  __shared__ float ws[kTile][kTile + 1]; // ws[kk][j]
  __shared__ int last;
  const int tiles = row_tiles * col_tiles;
  const int split = blockIdx.x % a.splits, block = blockIdx.x / a.splits; // a block's splits are neighbours
  const int e = block / tiles, t = block % tiles;
  const int r0 = (t / col_tiles) * kTile, j0 = (t % col_tiles) * kTile;
  const int steps = (a.k + kTile - 1) / kTile, per = (steps + a.splits - 1) / a.splits;
  const int kb = split * per * kTile, ke = min(a.k, kb + per * kTile);
  const entry_ptrs<float> p = entry_of<float>(a, e);
  const int tr = threadIdx.x / (kTile / kTileCols), tc = (threadIdx.x % (kTile / kTileCols)) * kTileCols;
  float acc[kTileCols];
#pragma unroll
  for (int q = 0; q < kTileCols; q++) acc[q] = 0.0f;
  // A step's X and W tiles pass through registers: the next step's loads are issued before this step's
  // multiply-adds, so a CTA waits for memory about once, not once per step and element.
  constexpr int kPer = kTile * kTile / kTileThreads; // elements of each tile a thread loads
  float xr[kPer], wr[kPer];
  const auto load = [&](int k0) {
#pragma unroll
    for (int u = 0; u < kPer; u++) {
      const int i = threadIdx.x + u * kTileThreads;
      const int r = i / kTile, kx = i % kTile; // X rows contiguous in k: lanes along k
      xr[u] = (r0 + r < a.rows && k0 + kx < ke) ? p.x[static_cast<long long>(r0 + r) * a.ldx + k0 + kx] : 0.0f;
      // W: lanes along whichever of k and j is contiguous
      const int kw = TransW ? i % kTile : i / kTile, j = TransW ? i / kTile : i % kTile;
      const int gk = k0 + kw, gj = j0 + j;
      wr[u] = (gk < ke && gj < a.cols)
                  ? (TransW ? p.w[static_cast<long long>(gj) * a.ldw + gk] : p.w[static_cast<long long>(gk) * a.ldw + gj])
                  : 0.0f;
    }
  };
  if (kb < ke) load(kb);
  for (int k0 = kb; k0 < ke; k0 += kTile) {
    __syncthreads(); // the previous tiles are consumed
#pragma unroll
    for (int u = 0; u < kPer; u++) {
      const int i = threadIdx.x + u * kTileThreads;
      xs[i % kTile][i / kTile] = xr[u];
      ws[TransW ? i % kTile : i / kTile][TransW ? i / kTile : i % kTile] = wr[u];
    }
    __syncthreads();
    if (k0 + kTile < ke) load(k0 + kTile);
#pragma unroll 8
    for (int kk = 0; kk < kTile; kk++) {
      const float xv = xs[kk][tr];
#pragma unroll
      for (int q = 0; q < kTileCols; q++) acc[q] = fmaf(xv, ws[kk][tc + q], acc[q]);
    }
  }
  if (a.splits > 1) {
    // this CTA's partial block, then whether it is the block's last; the last reads every partial from L2 (ld.cg:
    // another SM wrote them, this SM's L1 may hold an older tick's)
    float* part = reinterpret_cast<float*>(a.ws) + static_cast<long long>(block) * a.splits * (kTile * kTile);
    float* mine = part + split * (kTile * kTile) + tr * kTile + tc;
#pragma unroll
    for (int q = 0; q < kTileCols; q++) mine[q] = acc[q];
    __threadfence();
    __syncthreads();
    int* sem = reinterpret_cast<int*>(a.sem) + block;
    if (threadIdx.x == 0) last = atomicAdd(sem, 1) == a.splits - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
#pragma unroll
    for (int q = 0; q < kTileCols; q++) acc[q] = 0.0f;
    for (int s = 0; s < a.splits; s++) {
      const float* from = part + s * (kTile * kTile) + tr * kTile + tc;
#pragma unroll
      for (int q = 0; q < kTileCols; q++) acc[q] += __ldcg(from + q);
    }
    if (threadIdx.x == 0) *sem = 0; // every CTA of the block has counted itself: zero for the next launch
  }
  const int r = r0 + tr;
  if (r >= a.rows) return;
#pragma unroll
  for (int q = 0; q < kTileCols; q++) {
    const int j = j0 + tc + q;
    if (j < a.cols) p.c[static_cast<long long>(r) * a.ldc + j] = finish(a, p, r, j, __fmul_rn(a.alpha, acc[q]));
  }
}

int tiles(int n) { return (n + kTile - 1) / kTile; }

long long tile_grid(const cuda_gemv_args& a) { return static_cast<long long>(tiles(a.rows)) * tiles(a.cols) * a.batch; }

cudaError_t launch_tiled(const cuda_gemv_args& a, cudaStream_t stream, bool pdl) {
  const int rt = tiles(a.rows), ct = tiles(a.cols);
  const unsigned grid = static_cast<unsigned>(tile_grid(a) * a.splits);
  return cuda_launch_kernel(a.trans_w ? loom_gemm_tile<true> : loom_gemm_tile<false>, grid, kTileThreads, stream, pdl, a, rt, ct);
}

// Whether a (not tiled) runs loom_gemv_split: swap, or the plain form with few CTAs in loom_gemv_nt(_vec)'s
// shape, unless the 16-byte form is off (LOOM_CUDA_GEMV_VEC=off: the staged kernels for the plain form).
bool split_kernel(const cuda_gemv_args& a) {
  if (!a.trans_w) return false;
  if (a.swap) return true;
  return a.vec && static_cast<long long>((a.cols + kNtBlockCols - 1) / kNtBlockCols) * a.batch < kSplitBelowCtas;
}

int col_blocks(const cuda_gemv_args& a) {
  const int per = split_kernel(a) ? kSwBlockCols : a.trans_w ? kNtBlockCols : kNnBlockCols;
  return (a.cols + per - 1) / per;
}

template <typename T, int M>
cudaError_t launch_m(const cuda_gemv_args& a, cudaStream_t stream, bool pdl) {
  const int cb = col_blocks(a);
  const unsigned grid = static_cast<unsigned>(static_cast<long long>(cb) * a.batch);
  if (split_kernel(a)) return cuda_launch_kernel(loom_gemv_split<T, M>, grid, kSwGroups * kSwSplit * 32, stream, pdl, a, cb);
  if constexpr (M <= kVecMaxRows)
    if (a.trans_w && a.vec) return cuda_launch_kernel(loom_gemv_nt_vec<T, M>, grid, kNtWarps * 32, stream, pdl, a, cb);
  if (a.trans_w) return cuda_launch_kernel(loom_gemv_nt<T, M>, grid, kNtWarps * 32, stream, pdl, a, cb);
  return cuda_launch_kernel(loom_gemv_nn<T, M>, grid, kNnWarps * 32, stream, pdl, a, cb);
}

template <typename T>
cudaError_t launch_t(const cuda_gemv_args& a, cudaStream_t stream, bool pdl) {
  if (a.rows <= 1) return launch_m<T, 1>(a, stream, pdl);
  if (a.rows <= 2) return launch_m<T, 2>(a, stream, pdl);
  if (a.rows <= 4) return launch_m<T, 4>(a, stream, pdl);
  if (a.rows <= 8) return launch_m<T, 8>(a, stream, pdl);
  return launch_m<T, kGemvMaxRows>(a, stream, pdl);
}

} // namespace

bool cuda_gemv_fits(const cuda_gemv_args& a) {
  if (a.rows < 1 || a.rows > (a.tiled ? kTileMaxRows : kGemvMaxRows) || a.cols < 1 || a.k < 1 || a.batch < 1) return false;
  if (a.dtype < 0 || a.dtype > (a.tiled ? 0 : 2) || (a.tiled && a.swap)) return false;
  const int plan_cols = a.swap ? a.rows : a.cols;
  if (a.ldx < (a.swap ? a.rows : a.k) || a.ldc < plan_cols || a.ldw < (a.trans_w ? a.k : a.cols)) return false;
  if (a.arr ? a.total < a.batch : (a.sw < 0 || a.sx < 0 || a.sc < 0)) return false;
  if (a.epilogue) {
    if (a.bias_mode < 0 || a.bias_mode > 3 || a.act < 0) return false;
    if (a.bias_mode != 0 && !a.arr && (a.bias == 0 || a.sbias < 0)) return false;
    if (a.bias_mode == 3 && a.ld_bias < plan_cols) return false;
    if (a.residual && !a.arr && (a.res == 0 || a.sres < 0)) return false;
  }
  if (a.splits != 1 &&
      (!a.tiled || a.splits < 1 || a.splits > kMaxSplits || a.splits > (a.k + kTile - 1) / kTile || a.ws == 0 || a.sem == 0))
    return false;
  return (a.tiled ? tile_grid(a) * a.splits : static_cast<long long>(col_blocks(a)) * a.batch) <= INT_MAX;
}

long long cuda_tiled_blocks(const cuda_gemv_args& a) { return tile_grid(a); }

int cuda_tiled_k_steps(const cuda_gemv_args& a) { return (a.k + kTile - 1) / kTile; }

size_t cuda_tiled_split_bytes(const cuda_gemv_args& a) {
  return a.splits > 1 ? static_cast<size_t>(tile_grid(a)) * a.splits * (kTile * kTile) * sizeof(float) : 0;
}

cudaError_t cuda_launch_gemv(const cuda_gemv_args& a, cudaStream_t stream, bool pdl) {
  if (!cuda_gemv_fits(a)) return cudaErrorInvalidValue;
  if (a.tiled) return launch_tiled(a, stream, pdl);
  switch (a.dtype) {
    case 0: return launch_t<float>(a, stream, pdl);
    case 1: return launch_t<__nv_bfloat16>(a, stream, pdl);
    case 2: return launch_t<__half>(a, stream, pdl);
    default: return cudaErrorInvalidValue;
  }
}

} // namespace loom
