// One C tile of a row-major f32 GEMM (packed panels + register-blocked micro-kernel), compiled once per
// instruction set (backend_cpu_gemm_generic.cc, backend_cpu_gemm_avx2.cc); backend_cpu_gemm.cc picks one.
#pragma once

#include <cstdint>

namespace loom {

struct gemm_tile {
  const float* a;
  int64_t lda;
  bool trans_a; // op(A) is m x k
  const float* b;
  int64_t ldb;
  bool trans_b; // op(B) is k x n
  float* c;
  int64_t ldc;
  int64_t m0, mc, n0, nc, k; // the tile: rows [m0, m0+mc), cols [n0, n0+nc), full k
  float* a_pack;
  float* b_pack; // scratch of gemm_pack_floats each (the caller's, per thread)
};

// C tile = op(A) · op(B) (overwrites; no epilogue). mc <= gemm_tile_mc, nc <= gemm_tile_nc.
void backend_cpu_gemm_tile_generic(const gemm_tile& t);
void backend_cpu_gemm_tile_avx2(const gemm_tile& t);
// The same for mc <= gemm_skinny_m without packing (transposed A needs k <= gemm_pack_floats / gemm_skinny_m).
void backend_cpu_gemm_skinny_generic(const gemm_tile& t);
void backend_cpu_gemm_skinny_avx2(const gemm_tile& t);

constexpr int64_t gemm_tile_mc = 96;
constexpr int64_t gemm_tile_nc = 256;
constexpr int64_t gemm_tile_kc = 256;
constexpr int64_t gemm_skinny_m = 8;
constexpr int64_t gemm_skinny_nc = 1024;                                 // tile width of skinny GEMMs with B = [k, n]: 4 KiB of each B row
constexpr int64_t gemm_pack_floats = (gemm_tile_nc + 16) * gemm_tile_kc; // >= padded mc or nc times kc

} // namespace loom
