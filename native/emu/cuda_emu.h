// Loom's generated CUDA kernels (kernels.cu) compiled for the host: the CUDA vocabulary those kernels use,
// in plain C++17, and a launcher that runs a grid. runtime/emu-kernels.ts compiles a plan's kernels.cu with
// `-include cuda_emu.h` into a shared library; the native "cuda-emu" backend (native/src/backend_emu.cc)
// loads it and runs each kernel launch through loom_emu_launch, the GEMMs through the CPU backend. It checks
// the generated kernels' index math and results on any machine; it says nothing of their speed.
//
// Execution model. Blocks are spread over host threads; the threads of one block are fibers (ucontext) on
// one host thread, switched only where a CUDA thread would wait for others: __syncthreads (every live thread
// of the block) and __shfl_xor_sync (every live lane of the warp). __shared__ variables are per host thread,
// so per block. A barrier no live thread can pass (a __syncthreads that only some threads reach) is reported,
// not hung on. Only what the templates under codegen/templates use is here.
#pragma once

#include <ucontext.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static thread_local

// ---- math as CUDA spells it: float overloads, integer min / max ----
using std::ceil;
using std::cos;
using std::erf;
using std::exp;
using std::fabs;
using std::floor;
using std::fmax;
using std::fmin;
using std::fmod;
using std::isinf;
using std::isnan;
using std::log;
using std::log1p;
using std::pow;
using std::rint;
using std::sin;
using std::sqrt;
using std::tanh;
using std::trunc;
template <typename T>
inline T min(T a, T b) {
  return b < a ? b : a;
}
template <typename T>
inline T max(T a, T b) {
  return a < b ? b : a;
}
inline double __longlong_as_double(long long v) {
  double d;
  std::memcpy(&d, &v, sizeof d);
  return d;
}

// ---- __half and __nv_bfloat16: storage types, converted with round to nearest even ----
struct __half {
  uint16_t bits = 0;
  __half() = default;
  __half(float f); // NOLINT: CUDA's converts implicitly too
  __half(double d) : __half(static_cast<float>(d)) {}
  __half(int v) : __half(static_cast<float>(v)) {}
  __half(long long v) : __half(static_cast<float>(v)) {}
  operator float() const;
};
struct __nv_bfloat16 {
  uint16_t bits = 0;
  __nv_bfloat16() = default;
  __nv_bfloat16(float f); // NOLINT
  __nv_bfloat16(double d) : __nv_bfloat16(static_cast<float>(d)) {}
  __nv_bfloat16(int v) : __nv_bfloat16(static_cast<float>(v)) {}
  __nv_bfloat16(long long v) : __nv_bfloat16(static_cast<float>(v)) {}
  operator float() const;
};
inline float __half2float(__half h) {
  const uint32_t s = (h.bits & 0x8000u) << 16, e = (h.bits >> 10) & 0x1f, m = h.bits & 0x3ff;
  if (e == 0) {
    const float f = std::ldexp(static_cast<float>(m), -24);
    return s ? -f : f;
  }
  const uint32_t u = e == 31 ? (s | 0x7f800000u | (m << 13)) : (s | ((e + 112) << 23) | (m << 13));
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline __half __float2half_rn(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  const uint32_t sign = (u >> 16) & 0x8000, ex = (u >> 23) & 0xff;
  uint32_t mant = u & 0x7fffff;
  __half h;
  if (ex == 0xff) {
    h.bits = static_cast<uint16_t>(sign | 0x7c00 | (mant ? 0x200 : 0));
    return h;
  }
  const int32_t e = static_cast<int32_t>(ex) - 127 + 15;
  if (e >= 31) {
    h.bits = static_cast<uint16_t>(sign | 0x7c00);
  } else if (e <= 0) {
    if (e < -10) {
      h.bits = static_cast<uint16_t>(sign);
      return h;
    }
    mant |= 0x800000;
    const uint32_t shift = static_cast<uint32_t>(14 - e), mid = 1u << (shift - 1), rem = mant & ((1u << shift) - 1);
    uint32_t v = mant >> shift;
    if (rem > mid || (rem == mid && (v & 1))) v++;
    h.bits = static_cast<uint16_t>(sign | v);
  } else {
    uint32_t v = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
    const uint32_t rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (v & 1))) v++;
    h.bits = static_cast<uint16_t>(sign | v);
  }
  return h;
}
inline __half __double2half(double d) { return __float2half_rn(static_cast<float>(d)); }
inline float __bfloat162float(__nv_bfloat16 b) {
  const uint32_t u = static_cast<uint32_t>(b.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline __nv_bfloat16 __float2bfloat16_rn(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  __nv_bfloat16 b;
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffff)) b.bits = static_cast<uint16_t>((u >> 16) | 0x40);
  else b.bits = static_cast<uint16_t>(((u + 0x7fff + ((u >> 16) & 1)) >> 16) & 0xffff);
  return b;
}
inline __nv_bfloat16 __double2bfloat16(double d) { return __float2bfloat16_rn(static_cast<float>(d)); }
inline __half::__half(float f) : bits(__float2half_rn(f).bits) {}
inline __half::operator float() const { return __half2float(*this); }
inline __nv_bfloat16::__nv_bfloat16(float f) : bits(__float2bfloat16_rn(f).bits) {}
inline __nv_bfloat16::operator float() const { return __bfloat162float(*this); }

// ---- the thread's coordinates and the block's fibers ----
struct loom_emu_dim3 {
  unsigned x = 1, y = 1, z = 1;
};
static thread_local loom_emu_dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace loom_emu {

enum class wait { none, block, warp, done };

struct fiber {
  ucontext_t ctx;
  wait state = wait::none;
  unsigned shfl_parity = 0;
};

struct block {
  ucontext_t scheduler;
  std::vector<fiber> fibers;
  std::vector<char> stacks;
  unsigned current = 0;
  uint64_t exchange[2][1024]; // __shfl_xor_sync's values, double-buffered by call parity
  std::exception_ptr error;
};

constexpr size_t kStackBytes = 64 * 1024;
static thread_local block* current_block = nullptr;

inline void yield(wait why) {
  block& b = *current_block;
  fiber& f = b.fibers[b.current];
  f.state = why;
  swapcontext(&f.ctx, &b.scheduler);
}

} // namespace loom_emu

inline void __syncthreads() { loom_emu::yield(loom_emu::wait::block); }

template <typename T>
inline T __shfl_xor_sync(unsigned /*mask*/, T v, int lane_mask) {
  static_assert(sizeof(T) <= sizeof(uint64_t), "__shfl_xor_sync: a value of at most 8 bytes");
  loom_emu::block& b = *loom_emu::current_block;
  const unsigned me = b.current, parity = b.fibers[me].shfl_parity;
  std::memcpy(&b.exchange[parity][me], &v, sizeof(T));
  b.fibers[me].shfl_parity ^= 1;
  loom_emu::yield(loom_emu::wait::warp);
  const unsigned from = (me & ~31u) | ((me & 31u) ^ static_cast<unsigned>(lane_mask & 31));
  T out;
  std::memcpy(&out, &b.exchange[parity][from < b.fibers.size() ? from : me], sizeof(T));
  return out;
}

// The signature of every generated kernel (codegen/templates/kernels.cu.hbs).
struct LoomSegment;
struct LoomView;
typedef void (*loom_emu_kernel)(const LoomSegment*, int, const LoomView*, long long);

namespace loom_emu {

struct launch_args {
  loom_emu_kernel kernel;
  const LoomSegment* segs;
  int n_segs;
  const LoomView* views;
  long long total_work;
};
static thread_local const launch_args* current_args = nullptr;

inline void fiber_main() {
  const launch_args& a = *current_args;
  block& b = *current_block;
  try {
    a.kernel(a.segs, a.n_segs, a.views, a.total_work);
  } catch (...) {
    if (!b.error) b.error = std::current_exception();
  }
  b.fibers[b.current].state = wait::done;
  // returning resumes uc_link: the scheduler
}

// Releases every barrier all of whose live participants have arrived; false when none could be released
// (every live fiber waits at a barrier that some live fiber never reaches).
inline bool release(block& b) {
  bool any = false, waiting = false;
  const unsigned n = static_cast<unsigned>(b.fibers.size());
  bool all_block = true;
  for (const fiber& f : b.fibers)
    if (f.state != wait::done && f.state != wait::block) all_block = false;
  for (unsigned w = 0; w < n; w += 32) {
    bool all_warp = true, some = false;
    for (unsigned i = w; i < n && i < w + 32; i++) {
      if (b.fibers[i].state == wait::warp) some = true;
      else if (b.fibers[i].state != wait::done) all_warp = false;
    }
    if (some && all_warp) {
      for (unsigned i = w; i < n && i < w + 32; i++)
        if (b.fibers[i].state == wait::warp) b.fibers[i].state = wait::none;
      any = true;
    }
  }
  for (const fiber& f : b.fibers)
    if (f.state == wait::block || f.state == wait::warp) waiting = true;
  if (!any && all_block && waiting) {
    for (fiber& f : b.fibers)
      if (f.state == wait::block) f.state = wait::none;
    any = true;
  }
  return any || !waiting;
}

inline void run_block(block& b, const launch_args& a, unsigned block_index) {
  const unsigned n = blockDim.x;
  blockIdx.x = block_index;
  current_block = &b;
  current_args = &a;
  for (unsigned i = 0; i < n; i++) {
    fiber& f = b.fibers[i];
    f.state = wait::none;
    f.shfl_parity = 0;
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = b.stacks.data() + i * kStackBytes;
    f.ctx.uc_stack.ss_size = kStackBytes;
    f.ctx.uc_link = &b.scheduler;
    makecontext(&f.ctx, fiber_main, 0);
  }
  for (;;) {
    bool ran = false;
    for (unsigned i = 0; i < n; i++) {
      if (b.fibers[i].state != wait::none) continue;
      b.current = i;
      threadIdx.x = i;
      swapcontext(&b.scheduler, &b.fibers[i].ctx);
      ran = true;
    }
    if (b.error) std::rethrow_exception(b.error);
    bool done = true;
    for (const fiber& f : b.fibers)
      if (f.state != wait::done) done = false;
    if (done) return;
    if (!release(b) && !ran)
      throw std::runtime_error("block " + std::to_string(block_index) +
                               ": threads wait at a __syncthreads or __shfl_xor_sync that other live threads never reach");
  }
}

} // namespace loom_emu

// Runs kernel<<<grid, block>>>(segs, nSegs, views, totalWork) to completion on up to `threads` host threads.
// Returns null, or the first error's message (owned by the library until the next call on this thread).
extern "C" const char* loom_emu_launch(loom_emu_kernel kernel, unsigned grid, unsigned block_threads, const LoomSegment* segs, int n_segs,
                                       const LoomView* views, long long total_work, int threads) {
  static thread_local std::string message;
  if (block_threads == 0 || block_threads > 1024 || grid == 0) {
    message = "grid " + std::to_string(grid) + " x block " + std::to_string(block_threads) + ": not a launch CUDA would run";
    return message.c_str();
  }
  const loom_emu::launch_args args{kernel, segs, n_segs, views, total_work};
  std::atomic<unsigned> next{0};
  std::mutex failed;
  std::string error;
  auto worker = [&] {
    gridDim.x = grid;
    blockDim.x = block_threads;
    loom_emu::block b;
    b.fibers.resize(block_threads);
    b.stacks.resize(static_cast<size_t>(block_threads) * loom_emu::kStackBytes);
    for (unsigned i; (i = next.fetch_add(1)) < grid;) {
      try {
        loom_emu::run_block(b, args, i);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(failed);
        if (error.empty()) error = e.what();
        next.store(grid);
      }
    }
    loom_emu::current_block = nullptr;
  };
  const unsigned n = static_cast<unsigned>(threads > 1 ? threads : 1) < grid ? static_cast<unsigned>(threads > 1 ? threads : 1) : grid;
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < n; t++) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (error.empty()) return nullptr;
  message = error;
  return message.c_str();
}
