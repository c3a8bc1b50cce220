// The CPU backend's function table: host arenas, copies, and dispatch of launches to the kernels in
// backend_cpu_*.cc.
#include "backend_cpu.h"

#include <cstdlib>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#endif

#include "backend_ext.h"

namespace loom {

void cpu_arena_free::operator()(uint8_t* p) const {
#if defined(__unix__) || defined(__APPLE__)
  if (mapped > 0) {
    munmap(p, mapped);
    return;
  }
#endif
  std::free(p);
}

float cpu_half_to_float(uint16_t h) {
  uint32_t s = (h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  float f;
  if (e == 0) {
    f = std::ldexp(static_cast<float>(m), -24);
    return s ? -f : f;
  }
  uint32_t bits = e == 31 ? (s | 0x7f800000u | (m << 13)) : (s | ((e + 112) << 23) | (m << 13));
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t cpu_float_to_half(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  uint32_t sign = (u >> 16) & 0x8000, exp = (u >> 23) & 0xff, mant = u & 0x7fffff;
  if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00 | (mant ? 0x200 : 0));
  int32_t e = static_cast<int32_t>(exp) - 127 + 15;
  if (e >= 31) return static_cast<uint16_t>(sign | 0x7c00);
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000;
    uint32_t shift = static_cast<uint32_t>(14 - e), half = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) half++;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = (static_cast<uint32_t>(e) << 10) | (mant >> 13), rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
  return static_cast<uint16_t>(sign | half);
}

float cpu_bf16_to_float(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t cpu_float_to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffff)) return static_cast<uint16_t>((u >> 16) | 0x40);
  return static_cast<uint16_t>(((u + 0x7fff + ((u >> 16) & 1)) >> 16) & 0xffff);
}

namespace {

template <typename S, typename T>
void load_typed(const uint8_t* p, int64_t stride, int64_t count, T* dst) {
  if (stride == 1) {
    for (int64_t i = 0; i < count; i++) {
      S v;
      std::memcpy(&v, p + i * sizeof(S), sizeof(S));
      dst[i] = static_cast<T>(v);
    }
  } else {
    for (int64_t i = 0; i < count; i++) {
      S v;
      std::memcpy(&v, p + i * stride * static_cast<int64_t>(sizeof(S)), sizeof(S));
      dst[i] = static_cast<T>(v);
    }
  }
}

template <typename T>
void load_run(const uint8_t* p, dtype d, int64_t stride, int64_t count, T* dst) {
  switch (d) {
    case dtype::f32: load_typed<float>(p, stride, count, dst); return;
    case dtype::f64: load_typed<double>(p, stride, count, dst); return;
    case dtype::i64: load_typed<int64_t>(p, stride, count, dst); return;
    case dtype::i32: load_typed<int32_t>(p, stride, count, dst); return;
    case dtype::i8: load_typed<int8_t>(p, stride, count, dst); return;
    case dtype::u8:
    case dtype::boolean: load_typed<uint8_t>(p, stride, count, dst); return;
    case dtype::f16:
    case dtype::bf16:
      for (int64_t i = 0; i < count; i++) dst[i] = static_cast<T>(cpu_load(p + i * stride * 2, d));
      return;
  }
}

template <typename T>
void store_run(uint8_t* p, dtype d, int64_t count, const T* src) {
  if (d == dtype::f32) {
    for (int64_t i = 0; i < count; i++) {
      float f = static_cast<float>(src[i]);
      std::memcpy(p + i * 4, &f, 4);
    }
    return;
  }
  size_t es = dtype_size(d);
  for (int64_t i = 0; i < count; i++) cpu_store(p + i * es, d, static_cast<double>(src[i]));
}

// Arenas of at least this many bytes are mapped pages (zero by the kernel, touched on first use: a plan's
// gigabytes of weights are written once, by the read of weights.bin, not zero-filled first); smaller ones come
// from aligned_alloc. No MADV_HUGEPAGE: with the kernel's usual defrag=madvise the faults then compact memory
// and reading 5.4 GB of weights took twice as long (2-core machine, 2026-12-06).
constexpr size_t kMappedArenaBytes = size_t{1} << 20;

std::unique_ptr<uint8_t[], cpu_arena_free> ctx_new_buffer(int64_t bytes) {
  size_t n = static_cast<size_t>((bytes + 63) / 64 * 64);
  if (n == 0) n = 64;
#if defined(__unix__) || defined(__APPLE__)
  if (n >= kMappedArenaBytes) {
    void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw loom_error("out of host memory mapping an arena of " + std::to_string(bytes) + " bytes");
    return std::unique_ptr<uint8_t[], cpu_arena_free>(static_cast<uint8_t*>(p), cpu_arena_free{n});
  }
#endif
  void* p = std::aligned_alloc(64, n);
  if (!p) throw loom_error("out of host memory allocating an arena of " + std::to_string(bytes) + " bytes");
  std::memset(p, 0, n);
  return std::unique_ptr<uint8_t[], cpu_arena_free>(static_cast<uint8_t*>(p), cpu_arena_free{0});
}

cpu_ctx& C(void* ctx) { return *static_cast<cpu_ctx*>(ctx); }

void cpu_destroy(void* ctx) { delete static_cast<cpu_ctx*>(ctx); }

void cpu_allocate(void* ctx, const arena_sizes& sizes) {
  const int64_t s[3] = {sizes.weights, sizes.act, sizes.io};
  for (int i = 0; i < 3; i++) {
    C(ctx).arenas[i].data = ctx_new_buffer(s[i]);
    C(ctx).arenas[i].size = s[i];
  }
}

void cpu_upload_weights(void* ctx, const uint8_t* data, size_t bytes) {
  if (bytes) std::memcpy(C(ctx).arenas[0].data.get(), data, bytes);
}

void cpu_copy_in(void* ctx, ref dst, const uint8_t* src, size_t bytes) {
  if (bytes) std::memcpy(C(ctx).at(dst), src, bytes);
}

void cpu_copy_out(void* ctx, ref src, uint8_t* dst, size_t bytes) {
  if (bytes) std::memcpy(dst, C(ctx).at(src), bytes);
}

// TEST ONLY: an armed fault (backend_fault_ext) fails its launch here, before the kernel runs, as a kernel
// that failed would: the executor names the launch and the tick fails; the next tick runs normally.
void cpu_fault_check(cpu_ctx& c) {
  if (c.fault_countdown < 0) return;
  if (c.fault_countdown-- > 0) return;
  throw loom_error("injected fault (test only: testInjectFault / LOOM_TEST_FAULT_TICKS): the kernel failed");
}

void cpu_gemm_launch(void* ctx, const launch& l, const tenant_mask& active, int64_t rows) {
  cpu_fault_check(C(ctx));
  cpu_gemm(C(ctx), l, active, rows);
}

void cpu_kernel_launch(void* ctx, const launch& l, const tenant_mask& active) {
  cpu_ctx& c = C(ctx);
  cpu_fault_check(c);
  switch (l.op.kind) {
    case kernel_kind::eltwise: cpu_eltwise(c, l, active); return;
    case kernel_kind::reduce: cpu_reduce(c, l, active); return;
    case kernel_kind::softmax: cpu_softmax(c, l, active); return;
    case kernel_kind::layernorm: cpu_layernorm(c, l, active); return;
    case kernel_kind::groupnorm: cpu_groupnorm(c, l, active); return;
    case kernel_kind::pool: cpu_pool(c, l, active); return;
    case kernel_kind::depthwise: cpu_depthwise(c, l, active); return;
    case kernel_kind::im2col: cpu_im2col(c, l, active); return;
    case kernel_kind::col2im: cpu_col2im(c, l, active); return;
    case kernel_kind::copy: cpu_copy(c, l, active); return;
    case kernel_kind::fill: cpu_fill(c, l, active); return;
    case kernel_kind::gather: cpu_gather(c, l, active); return;
    case kernel_kind::gather_table: cpu_gather_table(c, l, active); return;
    case kernel_kind::squeeze_excite: cpu_squeeze_excite(c, l, active); return;
    case kernel_kind::conv: cpu_conv(c, l, active); return;
  }
}

void cpu_synchronize(void*) {}

int cpu_threads(void* ctx) { return C(ctx).pool.size(); }

void cpu_fault_arm(void* ctx, int32_t at_launch) { C(ctx).fault_countdown = at_launch < 0 ? -1 : at_launch; }

const backend_fault_ext cpu_fault_ext = {cpu_fault_arm};

void cpu_stats(void* ctx, backend_stats& out) { out.numbers.emplace_back("gemmRows", static_cast<double>(C(ctx).gemm_rows)); }

const backend_stats_ext cpu_stats_ext = {cpu_stats};

uint8_t* cpu_host_arena(void* ctx, arena_id arena) { return C(ctx).arenas[static_cast<int>(arena)].data.get(); }

const backend_host_arena_ext cpu_host_arena_ext = {cpu_host_arena};

// Stats, host arenas and the test-only fault hook: the executor runs the tick launch by launch and there is
// nothing to replay or profile.
const void* cpu_get_extension(const char* name) {
  // TEST ONLY: LOOM_TEST_NO_HOST_ARENA=1 hides the extension, so weights come in as a backend without host
  // arenas (CUDA) takes them: chunks read into the executor's staging windows, then copy_in (CI covers that path)
  if (backend_extension_is<backend_host_arena_ext>(name)) {
    const char* off = std::getenv("LOOM_TEST_NO_HOST_ARENA");
    return off && std::string(off) == "1" ? nullptr : &cpu_host_arena_ext;
  }
  if (backend_extension_is<backend_fault_ext>(name)) return &cpu_fault_ext;
  if (backend_extension_is<backend_stats_ext>(name)) return &cpu_stats_ext;
  return nullptr;
}

const backend_ops cpu_ops = {
    LOOM_BACKEND_ABI, "cpu",        cpu_destroy,       cpu_allocate,    cpu_upload_weights,
    cpu_copy_in,      cpu_copy_out, cpu_gemm_launch,   cpu_gemm_launch, cpu_kernel_launch,
    cpu_synchronize,  cpu_threads,  cpu_get_extension, nullptr,         nullptr,
};

bool cpu_available() { return true; }

backend cpu_create(const backend_config& cfg) { return backend_cpu_create(cfg.threads); }

// Every launch kind and every KernelOp (cpu_kernel_launch dispatches each). No default: a KernelOp added to
// the contract (plan_enums.gen.h) without a CPU kernel warns here (-Wswitch) and is refused at load.
bool cpu_supports(launch_kind kind, kernel_kind op) {
  switch (kind) {
    case launch_kind::gemm:
    case launch_kind::gemm_grouped: return true;
    case launch_kind::kernel: break;
  }
  switch (op) {
    case kernel_kind::eltwise:
    case kernel_kind::reduce:
    case kernel_kind::softmax:
    case kernel_kind::layernorm:
    case kernel_kind::groupnorm:
    case kernel_kind::pool:
    case kernel_kind::depthwise:
    case kernel_kind::im2col:
    case kernel_kind::col2im:
    case kernel_kind::copy:
    case kernel_kind::fill:
    case kernel_kind::gather:
    case kernel_kind::gather_table:
    case kernel_kind::squeeze_excite:
    case kernel_kind::conv: return true;
  }
  return false;
}

} // namespace

void cpu_load_run(const uint8_t* p, dtype d, int64_t stride, int64_t count, double* dst) { load_run(p, d, stride, count, dst); }
void cpu_load_run_f(const uint8_t* p, dtype d, int64_t stride, int64_t count, float* dst) { load_run(p, d, stride, count, dst); }
void cpu_store_run(uint8_t* p, dtype d, int64_t count, const double* src) { store_run(p, d, count, src); }
void cpu_store_run_f(uint8_t* p, dtype d, int64_t count, const float* src) { store_run(p, d, count, src); }

backend backend_cpu_create(int threads) { return backend{&cpu_ops, new cpu_ctx(threads)}; }

const backend_entry backend_cpu_entry = {"cpu", LOOM_BACKEND_ABI, cpu_available, cpu_create, cpu_supports, cpu_get_extension};

} // namespace loom
