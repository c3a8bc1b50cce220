// Internals of the CPU backend, shared by its files (backend_cpu*.cc). Arenas are host buffers; every
// launch fans out over a thread pool by (tenant entry or segment) x (block of its work).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "backend.h"
#include "plan.h"
#include "thread_pool.h"

namespace loom {

// Frees an arena: munmap for a mapped one (mapped bytes > 0), else std::free.
struct cpu_arena_free {
  size_t mapped = 0;
  void operator()(uint8_t* p) const;
};

struct cpu_arena {
  std::unique_ptr<uint8_t[], cpu_arena_free> data;
  int64_t size = 0;
};

struct cpu_ctx {
  explicit cpu_ctx(int threads) : pool(threads) {}
  cpu_arena arenas[arena_id_count]; // indexed by arena_id
  thread_pool pool;
  // TEST ONLY (backend_fault_ext): launches left before the one that fails; -1: disarmed.
  int32_t fault_countdown = -1;
  // GEMM rows run, summed over every entry of every GEMM launch (a tick's row bucket shrinks it): handleInfo gemmRows.
  uint64_t gemm_rows = 0;

  uint8_t* at(ref r) { return arenas[static_cast<int>(r.arena)].data.get() + r.offset; }
  int64_t arena_size(arena_id a) const { return arenas[static_cast<int>(a)].size; }
};

backend backend_cpu_create(int threads); // backend_cpu_entry.create; threads > 0

inline bool tenant_active(const tenant_mask& m, int32_t t) { return t >= 0 && static_cast<size_t>(t) < m.size() && m[t]; }

// gemm and gemm_grouped; rows: the tick's row bucket (backend.h), 0 for every row.
void cpu_gemm(cpu_ctx& ctx, const launch& l, const tenant_mask& active, int64_t rows);
void cpu_eltwise(cpu_ctx& ctx, const launch& l, const tenant_mask& active);
void cpu_reduce(cpu_ctx& ctx, const launch& l, const tenant_mask& active);
void cpu_softmax(cpu_ctx& ctx, const launch& l, const tenant_mask& active);
void cpu_layernorm(cpu_ctx& ctx, const launch& l, const tenant_mask& active);
void cpu_groupnorm(cpu_ctx& ctx, const launch& l, const tenant_mask& active);
void cpu_pool(cpu_ctx& ctx, const launch& l, const tenant_mask& active);
void cpu_depthwise(cpu_ctx& ctx, const launch& l, const tenant_mask& active);
void cpu_squeeze_excite(cpu_ctx& ctx, const launch& l, const tenant_mask& active);
void cpu_conv(cpu_ctx& ctx, const launch& l, const tenant_mask& active);
void cpu_im2col(cpu_ctx& ctx, const launch& l, const tenant_mask& active);
void cpu_col2im(cpu_ctx& ctx, const launch& l, const tenant_mask& active);
void cpu_copy(cpu_ctx& ctx, const launch& l, const tenant_mask& active);
void cpu_fill(cpu_ctx& ctx, const launch& l, const tenant_mask& active);
void cpu_gather(cpu_ctx& ctx, const launch& l, const tenant_mask& active);
void cpu_gather_table(cpu_ctx& ctx, const launch& l, const tenant_mask& active);

// ---- element conversion (numbers as double, like the TS reference) ----
float cpu_half_to_float(uint16_t h);
uint16_t cpu_float_to_half(float f);
float cpu_bf16_to_float(uint16_t h);
uint16_t cpu_float_to_bf16(float f);

inline double cpu_load(const uint8_t* p, dtype d) {
  switch (d) {
    case dtype::f32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case dtype::f64: {
      double v;
      std::memcpy(&v, p, 8);
      return v;
    }
    case dtype::f16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return cpu_half_to_float(v);
    }
    case dtype::bf16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return cpu_bf16_to_float(v);
    }
    case dtype::i64: {
      int64_t v;
      std::memcpy(&v, p, 8);
      return static_cast<double>(v);
    }
    case dtype::i32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case dtype::i8: return static_cast<int8_t>(*p);
    case dtype::u8:
    case dtype::boolean: return *p;
  }
  return 0;
}

// Integers truncate toward zero and wrap like a C cast through int64; non-finite values become 0
// (ir/tensor.ts fromNumbers does the same).
inline int64_t cpu_to_int(double v) { return std::isfinite(v) ? static_cast<int64_t>(std::trunc(v)) : 0; }

inline void cpu_store(uint8_t* p, dtype d, double v) {
  switch (d) {
    case dtype::f32: {
      float f = static_cast<float>(v);
      std::memcpy(p, &f, 4);
      return;
    }
    case dtype::f64: std::memcpy(p, &v, 8); return;
    case dtype::f16: {
      uint16_t h = cpu_float_to_half(static_cast<float>(v));
      std::memcpy(p, &h, 2);
      return;
    }
    case dtype::bf16: {
      uint16_t h = cpu_float_to_bf16(static_cast<float>(v));
      std::memcpy(p, &h, 2);
      return;
    }
    case dtype::i64: {
      int64_t x = cpu_to_int(v);
      std::memcpy(p, &x, 8);
      return;
    }
    case dtype::i32: {
      int32_t x = static_cast<int32_t>(cpu_to_int(v));
      std::memcpy(p, &x, 4);
      return;
    }
    case dtype::i8: *p = static_cast<uint8_t>(static_cast<int8_t>(cpu_to_int(v))); return;
    case dtype::u8: *p = static_cast<uint8_t>(cpu_to_int(v)); return;
    case dtype::boolean: *p = (v != 0 && !std::isnan(v)) ? 1 : 0; return;
  }
}

// Reads `count` elements at element stride `stride` starting at `p` into dst (one dtype switch per call).
void cpu_load_run(const uint8_t* p, dtype d, int64_t stride, int64_t count, double* dst);
void cpu_load_run_f(const uint8_t* p, dtype d, int64_t stride, int64_t count, float* dst);
void cpu_store_run(uint8_t* p, dtype d, int64_t count, const double* src);
void cpu_store_run_f(uint8_t* p, dtype d, int64_t count, const float* src);

template <typename T>
inline T cpu_activation(const activation& a, T x) {
  switch (a.kind) {
    case activation_kind::none: return x;
    case activation_kind::relu: return x > T(0) ? x : T(0);
    case activation_kind::sigmoid: return T(1) / (T(1) + std::exp(-x));
    case activation_kind::tanh: return std::tanh(x);
    case activation_kind::gelu_erf: return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440)));
    case activation_kind::gelu_tanh: return T(0.5) * x * (T(1) + std::tanh(T(0.79788456080286535588) * (x + T(0.044715) * x * x * x)));
    case activation_kind::leaky_relu: return x >= T(0) ? x : T(a.alpha) * x;
    case activation_kind::clip: return std::min(T(a.max), std::max(T(a.min), x));
    case activation_kind::hard_sigmoid: return std::max(T(0), std::min(T(1), T(a.alpha) * x + T(a.beta)));
    case activation_kind::hard_swish: return x * std::max(T(0), std::min(T(1), x / T(6) + T(0.5)));
  }
  return x;
}

// Work split: segments are cut into blocks of about this many elements so small and large tenants balance.
constexpr int64_t cpu_block_elems = 16384;

} // namespace loom
